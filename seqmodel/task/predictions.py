"""Write test-mode predictions: one row per window with its interval and the task's values."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any, Optional

import pytorch_lightning as pl

from seqmodel.atomic import atomic_open


class PredictionWriter(pl.Callback):
    """Streams the rows that `test_step` returns into a TSV (chrom, start, end, then the task's
    `prediction_columns`); the file appears complete at the end of testing, or not at all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._context: Any = None
        self._handle: Optional[IO] = None
        self._windows: list[tuple[str, int, int]] = []

    def output_path(self, trainer: pl.Trainer) -> Path:
        """One file per process under DDP (predictions.rank<r>.tsv), since each tests its own shard."""
        if trainer.world_size == 1:
            return self.path
        return self.path.with_name(f"{self.path.stem}.rank{trainer.global_rank}{self.path.suffix}")

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._windows = trainer.datamodule.windows("test")
        self._context = atomic_open(self.output_path(trainer))
        self._handle = self._context.__enter__()
        self._handle.write("\t".join(["chrom", "start", "end", *pl_module.prediction_columns]) + "\n")

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        for index, values in zip(outputs["index"].tolist(), outputs["values"].float().tolist()):
            chrom, start, end = self._windows[index]
            self._handle.write("\t".join([chrom, str(start), str(end), *(f"{v:.6g}" for v in values)]) + "\n")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._context.__exit__(None, None, None)
        self._handle = self._context = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self._context is not None:  # drop the partial file
            self._context.__exit__(type(exception), exception, exception.__traceback__)
            self._handle = self._context = None
