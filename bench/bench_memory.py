"""Memory over a long training run: the trainer's resident size step by step, and what glibc holds free.

A run's memory should level off after the first steps. Until this benchmark, the masked-token head was
given the gathered hidden states of the selected positions, an [N, D] block whose N (how many positions
the masking drew) changes every step. Blocks of a new size each step, a megabyte or more, fragment
glibc's heap: the freed holes do not fit the next step's blocks, so the heap grows and keeps them. The
head now sees every position ([B, L, D], one shape) and only the small [N, V] logits are gathered. Both
paths are run here, each in a fresh process (a heap remembers its history), on the same model and data.
"""

from __future__ import annotations

import ctypes
import json
import statistics
import subprocess
import sys
from typing import Any, Optional

import torch

from bench.bench_train import LOOP, bare_tokens_per_s, batches, task_loss
from bench.report import write_section
from seqmodel.dataset.seq import Alphabet
from seqmodel.hparam import registry
from seqmodel.task.masking import mask_tokens
from seqmodel.task.ptmask import PtMaskTask

CONFIG = {**LOOP, "batch_size": 8}  # the default model and seq_len
WARMUP, STEPS, EVERY = 20, 220, 10


def gathered_loss(task: PtMaskTask, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The old path: the head on the gathered [N, D] hidden states of the selected positions."""
    masked = mask_tokens(batch["tokens"], task.masking, task.base_indices)
    hidden = task.encoder(masked.inputs)
    return task.loss(task.head(hidden[masked.selected]), masked.targets[masked.selected]).mean()


PATHS = {"gathered": ("head on the gathered [N, D] (before)", gathered_loss),
         "every": ("head on every position (now)", task_loss)}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def heap_free_mb() -> Optional[float]:
    """Bytes glibc holds free in its heaps (mallinfo2's fordblks), or None off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc.mallinfo2.restype = MallInfo2
    return libc.mallinfo2().fordblks / 2**20


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def child(path: str) -> dict[str, Any]:
    """One training run on `path`, in this process: RSS every EVERY steps, then the heap's free bytes."""
    hp = registry().parse_dict(CONFIG)
    alphabet = Alphabet.dna()
    torch.manual_seed(0)
    task = PtMaskTask(hp, alphabet)
    samples: dict[int, float] = {}

    def sample(step: int) -> None:
        if (step + 1) % EVERY == 0:
            samples[step + 1] = rss_mb()

    tokens_per_s = bare_tokens_per_s(task, batches(alphabet, hp, STEPS), hp, warmup=WARMUP,
                                     loss_of=PATHS[path][1], after_step=sample)
    return {"samples": samples, "heap_free_mb": heap_free_mb(), "tokens_per_s": tokens_per_s}


def main() -> None:
    rows = []
    for path, (label, _) in PATHS.items():
        out = subprocess.run([sys.executable, "-m", "bench.bench_memory", path], check=True, capture_output=True,
                             text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        samples = {int(step): mb for step, mb in result["samples"].items()}
        late = [step for step in samples if step > WARMUP]
        growth = slope(late, [samples[step] for step in late])
        free = result["heap_free_mb"]
        rows.append(f"| {label} | {samples[min(late)]:,.0f} MB | {samples[STEPS]:,.0f} MB | {growth:.2f} MB | "
                    f"{'n/a' if free is None else f'{free:,.0f} MB'} | {result['tokens_per_s']:,.0f} |")
    hp = registry().parse_dict(CONFIG)
    body = f"""
ptmask, the default model (d_model {hp['d_model']}, {hp['n_layers']} layers, d_ff {hp['d_ff']}), seq_len {hp['seq_len']},
batch {hp['batch_size']}, float32, CPU, the bench's bare PyTorch loop over {STEPS} steps of random bases, each path in
a fresh process. Growth: least-squares slope of the resident size over steps {WARMUP + EVERY}-{STEPS}. Held free:
glibc's free bytes inside its heaps at the end (`mallinfo2`), memory the process keeps but does not use.

| path | RSS at step {WARMUP + EVERY} | RSS at step {STEPS} | growth per step | held free at the end | tokens/s |
|---|---|---|---|---|---|
""" + "\n".join(rows) + "\n"
    write_section("memory", "Memory over a long run: the masked-token head and glibc's heap",
                  ".venv/bin/python -m bench memory", body)
    print(body)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] in PATHS:  # one path, in a fresh process (main runs them so)
        print(json.dumps(child(sys.argv[1])))
    else:
        main()
