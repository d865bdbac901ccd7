"""`python -m ddp_probe <seqmodel.run arguments>`: seqmodel.run with one observer added, which appends
the sample indices of every training batch to `<default_root_dir>/train_index.rank<r>.txt` and a
sample of the rank's random stream to `rng.rank<r>.txt`, so a test can see what each DDP rank did. Lightning reruns this module for the other ranks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch

from seqmodel import run
from seqmodel.training import fit as pipeline

_build_trainer = pipeline.build_trainer


class RecordTrainingIndices(pl.Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        with open(self.out / f"train_index.rank{trainer.global_rank}.txt", "a") as handle:
            handle.write(" ".join(map(str, batch["index"].tolist())) + "\n")
        if batch_idx == 0:  # the rank's random stream as training starts (masks, dropout)
            stream = torch.Generator().set_state(torch.random.get_rng_state())  # a copy: leave the run's own
            (self.out / f"rng.rank{trainer.global_rank}.txt").write_text(str(torch.rand(4, generator=stream).tolist()))


def build_trainer(hparams: dict[str, Any], out: Path, callbacks: Sequence[pl.Callback]) -> pl.Trainer:
    return _build_trainer(hparams, out, [*callbacks, RecordTrainingIndices(out)])


if __name__ == "__main__":
    pipeline.build_trainer = build_trainer
    sys.exit(run.main())
