"""Training loop throughput: run.py's Lightning loop against a bare PyTorch loop, same process.

Both train the same ptmask model (same initial weights) on the same in-memory uint8 batches with the
same AdamW + warmup, gradient clipping and masking; data loading is benchmarked separately. Tokens/s
are timed after warm-up steps, medians over alternating repeats.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from bench.report import write_section
from seqmodel.dataset.seq import Alphabet
from seqmodel.hparam import registry
from seqmodel.model.flops import train_flops_per_token
from seqmodel.task.optim import build_optimizer
from seqmodel.task.ptmask import PtMaskTask
from seqmodel.training.trainer import build_trainer

CONFIG = {"d_model": 128, "n_layers": 2, "n_heads": 4, "d_ff": 512, "seq_len": 256, "batch_size": 16,
          "dropout": 0.1, "accelerator": "cpu", "devices": "1", "limit_val_batches": 0.0,
          "log_every_n_steps": 50}
WARMUP, STEPS, REPEATS = 5, 15, 5  # this machine is shared: more, shorter, alternating repeats


class StepTimer(pl.Callback):
    """Wall time of the steps after the warm-up ones, inside Lightning's own loop."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == WARMUP:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.end = time.perf_counter()


def batches(alphabet: Alphabet, hp: dict[str, Any], count: int = WARMUP + STEPS) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    bases = torch.tensor(alphabet.base_indices, dtype=torch.uint8)
    shape = (hp["batch_size"], hp["seq_len"])
    return [{"tokens": bases[torch.randint(len(bases), shape, generator=gen)], "index": torch.arange(shape[0])}
            for _ in range(count)]


def lightning_tokens_per_s(task: PtMaskTask, data: list[dict[str, torch.Tensor]], hp: dict[str, Any]) -> float:
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer({**hp, "max_steps": WARMUP + STEPS}, Path(out), [timer])
        trainer.fit(task, train_dataloaders=DataLoader(data, batch_size=None))
    return STEPS * hp["batch_size"] * hp["seq_len"] / (timer.end - timer.start)


def bare_tokens_per_s(task: PtMaskTask, data: list[dict[str, torch.Tensor]], hp: dict[str, Any],
                      warmup: int = WARMUP) -> float:
    """Tokens/s of a bare PyTorch loop over `data`, timing the batches after the first `warmup`."""
    optimizer, scheduler = build_optimizer(task, hp)
    task.train()
    for step, batch in enumerate(data):
        if step == warmup:
            start = time.perf_counter()
        losses = task._selected(batch["tokens"]).losses
        loss = losses.sum() / max(losses.numel(), 1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), hp["gradient_clip_val"])
        optimizer.step()
        scheduler.step()
    return (len(data) - warmup) * hp["batch_size"] * hp["seq_len"] / (time.perf_counter() - start)


def main() -> None:
    hp = registry().parse_dict(CONFIG)
    alphabet = Alphabet.dna()
    torch.manual_seed(0)
    template = PtMaskTask(hp, alphabet)
    data = batches(alphabet, hp)
    lightning, bare = [], []
    for _ in range(REPEATS):
        bare.append(bare_tokens_per_s(copy.deepcopy(template), data, hp))
        lightning.append(lightning_tokens_per_s(copy.deepcopy(template), data, hp))
    lit, raw = statistics.median(lightning), statistics.median(bare)
    ratio = lit / raw
    selected = hp["mask_prop"] + hp["random_prop"] + hp["keep_prop"]
    flops = train_flops_per_token(hp, alphabet.n_tokens, selected)
    model = ", ".join(f"{k}={hp[k]}" for k in ("d_model", "n_layers", "n_heads", "d_ff", "conv_kernel", "seq_len",
                                                "batch_size"))
    body = f"""
ptmask, {model}, {hp['precision']}, CPU, {STEPS} timed steps after {WARMUP} warm-up, median of {REPEATS}.

| loop | tokens/s |
|---|---|
| run.py's Lightning loop (loggers, atomic checkpoint IO, clipping) | {lit:,.0f} |
| bare PyTorch loop (same model, batches, optimizer) | {raw:,.0f} |
| **ratio** (target >= 0.90) | **{ratio:.3f}** {'(met)' if ratio >= 0.90 else '(NOT met)'} |

Analytic training FLOPs/token: {flops / 1e6:.2f} MFLOP (`seqmodel.model.flops.train_flops_per_token`,
checked against torch's FLOP counter in tests). MFU on a GPU: `seqmodel.model.flops.mfu(tokens/s,
FLOPs/token, peak FLOP/s)`; here that is {lit * flops / 1e9:.2f} GFLOP/s achieved on CPU.
"""
    write_section("train", "Training loop: Lightning vs bare PyTorch", ".venv/bin/python -m bench train", body)
    print(body)


if __name__ == "__main__":
    main()
