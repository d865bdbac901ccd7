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
from typing import Any, Callable

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

LOOP = {"accelerator": "cpu", "devices": "1", "limit_val_batches": 0.0, "log_every_n_steps": 50}
CONFIG = {"d_model": 128, "n_layers": 2, "n_heads": 4, "d_ff": 512, "seq_len": 256, "batch_size": 16,
          "dropout": 0.1, **LOOP}
WARMUP, STEPS, REPEATS = 5, 15, 5  # this machine is shared: more, shorter, alternating repeats
LossFn = Callable[[PtMaskTask, dict[str, torch.Tensor]], torch.Tensor]


class StepTimer(pl.Callback):
    """Wall time of the steps after the warm-up ones, inside Lightning's own loop."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.end = time.perf_counter()


def batches(alphabet: Alphabet, hp: dict[str, Any], count: int = WARMUP + STEPS) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    bases = torch.tensor(alphabet.base_indices, dtype=torch.uint8)
    shape = (hp["batch_size"], hp["seq_len"])
    return [{"tokens": bases[torch.randint(len(bases), shape, generator=gen)], "index": torch.arange(shape[0])}
            for _ in range(count)]


def lightning_tokens_per_s(task: PtMaskTask, data: list[dict[str, torch.Tensor]], hp: dict[str, Any],
                           warmup: int = WARMUP) -> float:
    """Tokens/s of run.py's Lightning loop over `data`, timing the batches after the first `warmup`."""
    timer = StepTimer(warmup)
    with tempfile.TemporaryDirectory() as out:
        trainer = build_trainer({**hp, "max_steps": len(data)}, Path(out), [timer])
        trainer.fit(task, train_dataloaders=DataLoader(data, batch_size=None))
    return (len(data) - warmup) * hp["batch_size"] * hp["seq_len"] / (timer.end - timer.start)


def task_loss(task: PtMaskTask, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return task._selected(batch).loss()


def bare_tokens_per_s(task: PtMaskTask, data: list[dict[str, torch.Tensor]], hp: dict[str, Any],
                      warmup: int = WARMUP, loss_of: LossFn = task_loss,
                      after_step: Callable[[int], None] = lambda step: None) -> float:
    """Tokens/s of a bare PyTorch loop over `data`, timing the batches after the first `warmup`."""
    optimizer, scheduler = build_optimizer(task, hp)
    task.train()
    for step, batch in enumerate(data):
        if step == warmup:
            start = time.perf_counter()
        loss = loss_of(task, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), hp["gradient_clip_val"])
        optimizer.step()
        scheduler.step()
        after_step(step)
    return (len(data) - warmup) * hp["batch_size"] * hp["seq_len"] / (time.perf_counter() - start)


# What users train: the default model at the default seq_len, and a larger one (batch kept small: 2 cores).
SIZES = {
    "default model": {"seq_len": 1000, "batch_size": 8},
    "d_model 256, 6 layers": {"seq_len": 1000, "batch_size": 4, "d_model": 256, "n_layers": 6, "n_heads": 8,
                              "d_ff": 1024},
}
SIZE_WARMUP, SIZE_STEPS, SIZE_REPEATS = 2, 4, 3


def matmul_flops_per_s(n: int = 1024, repeats: int = 7) -> float:
    """This machine's float32 matrix-multiply FLOP/s (median of timed n x n products): the ceiling a
    training loop made of matmuls could reach here, the CPU's stand-in for a GPU's peak."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up: thread pool and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times)


def sizes(alphabet: Alphabet) -> str:
    """The sizes table: tokens/s of both loops, and the achieved share of the matmul ceiling."""
    peak = matmul_flops_per_s()
    rows = []
    for label, changes in SIZES.items():
        hp = registry().parse_dict({**LOOP, **changes})  # the registry's defaults otherwise
        torch.manual_seed(0)
        template = PtMaskTask(hp, alphabet)
        data = batches(alphabet, hp, SIZE_WARMUP + SIZE_STEPS)
        lightning, bare = [], []
        for _ in range(SIZE_REPEATS):
            bare.append(bare_tokens_per_s(copy.deepcopy(template), data, hp, warmup=SIZE_WARMUP))
            lightning.append(lightning_tokens_per_s(copy.deepcopy(template), data, hp, warmup=SIZE_WARMUP))
        lit, raw = statistics.median(lightning), statistics.median(bare)
        flops = train_flops_per_token(hp, alphabet.n_tokens, hp["mask_prop"] + hp["random_prop"] + hp["keep_prop"])
        rows.append(f"| {label} (d {hp['d_model']}, {hp['n_layers']} layers, ff {hp['d_ff']}) | {hp['seq_len']} | "
                    f"{hp['batch_size']} | {lit:,.0f} | {raw:,.0f} | {lit / raw:.2f} | {lit * flops / 1e9:.1f} | "
                    f"{lit * flops / peak:.0%} |")
    return f"""
ptmask, {hp['precision']}, CPU, {SIZE_STEPS} timed steps after {SIZE_WARMUP} warm-up, median of {SIZE_REPEATS};
the registry's defaults otherwise (dropout {hp['dropout']}, attention_dropout {hp['attention_dropout']}, {hp['positional_encoding']},
{hp['mask_prop'] + hp['random_prop'] + hp['keep_prop']:.0%} of positions selected). Matmul ceiling: float32 1024 x 1024 products on this
machine, {peak / 1e9:.1f} GFLOP/s (median of 7). Achieved: Lightning tokens/s x analytic training FLOPs/token.

| model | seq_len | batch | Lightning tokens/s | bare tokens/s | ratio | achieved GFLOP/s | of the matmul ceiling (goal 50%) |
|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"


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
    table = sizes(alphabet)
    write_section("train-sizes", "Training at the sizes users train, against this CPU's matmul ceiling",
                  ".venv/bin/python -m bench train", table)
    print(table)


if __name__ == "__main__":
    main()
