"""`python -m bench gpu`: pretraining throughput and MFU on one CUDA GPU, for two model sizes, in a few
minutes: bf16 autocast, the fused attention kernel (attention_dropout 0), `torch.compile` of the encoder.

Needs a CUDA device; anywhere else it prints that and writes nothing. The device's peak comes from its
datasheet (dense bf16 tensor-core FLOP/s, `PEAK_BF16`), or from $SEQMODEL_PEAK_FLOPS for a device not
listed. On a GPU machine: `make setup && .venv/bin/python -m bench gpu` (BENCHMARKS.md gets the table).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Optional

import torch

from bench.report import write_section
from seqmodel.dataset.seq import Alphabet
from seqmodel.hparam import registry
from seqmodel.model.flops import mfu, train_flops_per_token
from seqmodel.task.optim import build_optimizer
from seqmodel.task.ptmask import PtMaskTask

# Dense bf16 FLOP/s by a part of the device name; more specific names first (an "H100 PCIe" is an H100).
PEAK_BF16 = (
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12),
    ("L40S", 362e12), ("L4", 121e12), ("A10", 125e12), ("RTX 4090", 165e12),
)
PEAK_ENV = "SEQMODEL_PEAK_FLOPS"
SIZES = {
    "d_model 512, 8 layers": {"d_model": 512, "n_layers": 8, "n_heads": 8, "d_ff": 2048, "batch_size": 32},
    "d_model 1024, 12 layers": {"d_model": 1024, "n_layers": 12, "n_heads": 16, "d_ff": 4096, "batch_size": 16},
}
COMMON = {"seq_len": 1000, "attention_dropout": 0.0, "precision": "bf16-mixed", "compile": True}
WARMUP, STEPS, REPEATS = 10, 20, 3  # warm-up includes torch.compile's first graphs


def peak_flops(device_name: str, env: Optional[dict[str, str]] = None) -> Optional[float]:
    """The device's dense bf16 peak: $SEQMODEL_PEAK_FLOPS when set, else the datasheet figure of the first
    name in PEAK_BF16 that the device name contains; None when neither says."""
    env = os.environ if env is None else env
    if env.get(PEAK_ENV):
        return float(env[PEAK_ENV])
    return next((peak for part, peak in PEAK_BF16 if part in device_name), None)


def tokens_per_s(hp: dict[str, Any], alphabet: Alphabet, device: torch.device) -> float:
    """Median tokens/s of a compiled bf16 training loop over random tokens (the data path is benchmarked
    apart), timed with the device synchronised."""
    torch.manual_seed(0)
    task = PtMaskTask(hp, alphabet).to(device)
    task.configure_model()  # torch.compile, as `compile=true` does in a run
    optimizer, scheduler = build_optimizer(task, hp)
    bases = torch.tensor(alphabet.base_indices, dtype=torch.uint8, device=device)
    shape = (hp["batch_size"], hp["seq_len"])
    rates = []
    for _ in range(REPEATS):
        for step in range(WARMUP + STEPS):
            if step == WARMUP:
                torch.cuda.synchronize(device)
                start = time.perf_counter()
            tokens = bases[torch.randint(len(bases), shape, device=device)]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = task._selected({"tokens": tokens}).loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        torch.cuda.synchronize(device)
        rates.append(STEPS * shape[0] * shape[1] / (time.perf_counter() - start))
    return statistics.median(rates)


def report(device_name: str, peak: Optional[float], rows: list[tuple[str, dict[str, Any], float, float]]) -> str:
    """The table: per size, tokens/s, achieved TFLOP/s and MFU (when the peak is known)."""
    lines = [f"| {label} | {hp['seq_len']} | {hp['batch_size']} | {rate:,.0f} | {rate * flops / 1e12:.1f} | "
             f"{f'{mfu(rate, flops, peak):.0%}' if peak else 'unknown peak'} |"
             for label, hp, rate, flops in rows]
    peak_text = f"{peak / 1e12:.0f} TFLOP/s dense bf16" if peak else f"not known: set ${PEAK_ENV}"
    return f"""
{device_name}, peak {peak_text}. ptmask, bf16 autocast, torch.compile, fused attention; {STEPS} timed steps
after {WARMUP} warm-up, median of {REPEATS}. MFU: tokens/s x analytic training FLOPs/token / peak.

| model | seq_len | batch | tokens/s | achieved TFLOP/s | MFU |
|---|---|---|---|---|---|
""" + "\n".join(lines) + "\n"


def main() -> None:
    if not torch.cuda.is_available():
        print("bench gpu: no CUDA device here; run it on a GPU machine (nothing written)")
        return
    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    alphabet = Alphabet.dna()
    rows = []
    for label, size in SIZES.items():
        hp = registry().parse_dict({**COMMON, **size})
        selected = hp["mask_prop"] + hp["random_prop"] + hp["keep_prop"]
        rows.append((label, hp, tokens_per_s(hp, alphabet, device),
                     train_flops_per_token(hp, alphabet.n_tokens, selected)))
    body = report(name, peak_flops(name), rows)
    write_section("gpu", "Training on one GPU: tokens/s and MFU", ".venv/bin/python -m bench gpu", body)
    print(body)


if __name__ == "__main__":
    main()
