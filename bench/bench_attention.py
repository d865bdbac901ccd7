"""What the attention path costs at the lengths users train, same process, alternating repeats: attention
dropout (the 1.3 recipe against 1.4's `attention_dropout=0`) and rotary positions (1.5's RoPE against
the sinusoidal positions added to the embeddings before it).

With dropout on the attention weights, `scaled_dot_product_attention` on CPU leaves its fused kernel for
the unfused one, which materialises the [B, H, L, L] score, mask and probability tensors every layer and
step: large allocations the allocator returns to the kernel (munmap) and takes back. The share of the
loop's CPU time spent in the kernel (system time) shows that churn. RoPE adds elementwise work on every
layer's queries and keys instead, which the table prices against the whole training step.
"""

from __future__ import annotations

import copy
import resource
import statistics
from typing import Any

import torch

from bench.bench_train import bare_tokens_per_s, batches
from bench.report import write_section
from seqmodel.dataset.seq import Alphabet
from seqmodel.hparam import registry
from seqmodel.task.ptmask import PtMaskTask

WARMUP, STEPS, REPEATS = 2, 4, 3
LENGTHS = (512, 1000)  # 1000 is the default seq_len
BASE = {"batch_size": 8, "accelerator": "cpu"}  # the default model: d_model 128, 4 layers, 4 heads, d_ff 512
# Each recipe gives everything it compares, so the table does not move when the defaults do.
RECIPES = {"1.3 recipe: attention_dropout = dropout = 0.1, sinusoidal":
           {"dropout": 0.1, "attention_dropout": 0.1, "positional_encoding": "sinusoidal"},
           "1.4 defaults: attention_dropout 0, dropout 0.1, sinusoidal":
           {"dropout": 0.1, "attention_dropout": 0.0, "positional_encoding": "sinusoidal"},
           "no dropout at all, sinusoidal":
           {"dropout": 0.0, "attention_dropout": 0.0, "positional_encoding": "sinusoidal"},
           "1.5 defaults: no dropout, rope": {"dropout": 0.0, "attention_dropout": 0.0, "positional_encoding": "rope"}}


def timed(template: PtMaskTask, data: list[dict[str, torch.Tensor]], hp: dict[str, Any]) -> tuple[float, float]:
    """(tokens/s, share of the CPU time spent in the kernel) of one bare training loop."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    rate = bare_tokens_per_s(copy.deepcopy(template), data, hp, warmup=WARMUP)
    after = resource.getrusage(resource.RUSAGE_SELF)
    system, user = after.ru_stime - before.ru_stime, after.ru_utime - before.ru_utime
    return rate, system / max(system + user, 1e-9)


def main() -> None:
    alphabet = Alphabet.dna()
    rows = []
    for length in LENGTHS:
        hps = {name: registry().parse_dict({**BASE, **recipe, "seq_len": length}) for name, recipe in RECIPES.items()}
        templates = {}
        for name, hp in hps.items():  # the same seed: the same initial weights
            torch.manual_seed(0)
            templates[name] = PtMaskTask(hp, alphabet)
        data = batches(alphabet, next(iter(hps.values())), WARMUP + STEPS)
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in hps}
        for _ in range(REPEATS):
            for name, hp in hps.items():
                runs[name].append(timed(templates[name], data, hp))
        base = statistics.median(rate for rate, _ in runs[next(iter(hps))])
        for name, measured in runs.items():
            rate = statistics.median(r for r, _ in measured)
            kernel = statistics.median(k for _, k in measured)
            rows.append(f"| {length} | {name} | {rate:,.0f} | {rate / base:.2f}x | {kernel:.0%} |")
    hp = registry().parse_dict(BASE)
    selected = hp["mask_prop"] + hp["random_prop"] + hp["keep_prop"]
    body = f"""
ptmask, the default model (d_model 128, 4 layers, 4 heads, d_ff 512, conv_kernel 9), batch 8, float32, CPU,
bare PyTorch loop (the Lightning loop is within a few % of it: the train section), {STEPS} timed steps after
{WARMUP} warm-up, median of {REPEATS} alternating repeats, every row selecting the default share of positions
({selected:.0%}). "kernel": the loop's system CPU time over its total.

| seq_len | recipe | tokens/s | vs 1.3 | kernel |
|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write_section("attention", "Attention dropout, rotary positions and the fused kernel",
                  ".venv/bin/python -m bench attention", body)
    print(body)


if __name__ == "__main__":
    main()
