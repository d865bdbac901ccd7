"""Inference speed (issue 17), with the default model at the default seq_len (1000), on the sample genome.

Per pod: the windows/s of `predict=embeddings` and the variants/s of `predict=variant_effect` (both
strands and one): the model's own work on real batches under `torch.inference_mode`, against the
training forward pass (masking, encoder, head, loss; autograd on, no backward) on the same batches, in
the same process, the four taking turns in each repeat (so that a busy machine slows them alike), each
the median over the repeats.

Shards: the wall time of `python -m seqmodel.run --mode=test --predict=embeddings` over the test windows
as one process, against four processes side by side, each with `--shards=4 --shard=i` (the pods of an
Indexed Job, here on one machine), startup included.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from bench.report import write_section
from seqmodel.dataset.datamodule import SeqDataModule
from seqmodel.outputs import checkpoint
from seqmodel.hparam import registry
from seqmodel.task.embed import Embedder
from seqmodel.task.ptmask import PtMaskTask
from seqmodel.task.variant_effect import VariantScorer

ROOT = Path(__file__).resolve().parent.parent
BATCH, BATCHES, REPEATS, SHARDS = 16, 4, 5, 4
RUN = [sys.executable, "-m", "seqmodel.run", "--accelerator=cpu", f"--data_root={ROOT / 'data'}"]


Batch = dict[str, torch.Tensor]
Step = Callable[[Batch], object]
Work = tuple[Step, list[Batch]]  # a step and its batches


def per_second(works: dict[str, Work]) -> dict[str, float]:
    """Rows per second of each step over its batches: the median of REPEATS rounds in which every step
    takes its turn, after one round to warm up."""
    rates: dict[str, list[float]] = {name: [] for name in works}
    for repeat in range(REPEATS + 1):
        for name, (step, batches) in works.items():
            start = time.perf_counter()
            for batch in batches:
                step(batch)
            if repeat:
                rates[name].append(sum(len(b["index"]) for b in batches) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def train_forward(task: PtMaskTask) -> Step:
    """The training forward pass, autograd on: what a training step does before its backward."""
    def step(batch: Batch) -> object:
        task.train()
        with torch.enable_grad():
            return task._selected(batch).loss()
    return step


def inferred(step: Callable[[Batch, int], object], task: PtMaskTask) -> Step:
    """A prediction step as test mode runs it: the model in eval mode, under inference_mode."""
    def run(batch: Batch) -> object:
        task.eval()
        with torch.inference_mode():
            return step(batch, 0)
    return run


def shard_wall(ckpt: Path, out: Path, shards: int) -> float:
    """Seconds until every shard of an embeddings run over the test windows has finished."""
    start = time.perf_counter()
    procs = [subprocess.Popen([*RUN, "--mode=test", "--predict=embeddings", f"--load_checkpoint_path={ckpt}",
                               f"--batch_size={BATCH}", f"--shards={shards}", f"--shard={i}",
                               f"--default_root_dir={out / f'{shards}-{i}'}"], stdout=subprocess.DEVNULL)
             for i in range(shards)]
    if any(proc.wait() for proc in procs):
        raise RuntimeError(f"an embeddings shard of {shards} failed")
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ckpt = out / "pretrain" / "checkpoints" / "last.ckpt"  # the default model, one step trained
        subprocess.run([*RUN, "--max_steps=1", "--limit_val_batches=0", f"--default_root_dir={out / 'pretrain'}"],
                       check=True, stdout=subprocess.DEVNULL)
        loaded = checkpoint.read(ckpt)
        hp = registry().parse_dict({**checkpoint.hparams_of(loaded), "batch_size": BATCH})
        dm = SeqDataModule({**hp, "data_root": str(ROOT / "data")})
        dm.setup("test")
        task = PtMaskTask(hp, dm.alphabet)
        task.load_state_dict(loaded["state_dict"])
        windows = [b for _, b in zip(range(BATCHES), dm.test_dataloader())]
        variants = [b for _, b in zip(range(BATCHES), dm.variant_dataloader(dm.variants()))]
        embedder = Embedder(task.encoder, dm.alphabet.none_idx)
        scorers = {both: VariantScorer(task.encoder, task.head, dm.alphabet.mask_idx, dm.alphabet.complement_table,
                                       both) for both in (False, True)}
        rates = per_second({"training": (train_forward(task), windows),
                            "embeddings": (inferred(embedder.predict_step, task), windows),
                            "one": (inferred(scorers[False].predict_step, task), variants),
                            "both": (inferred(scorers[True].predict_step, task), variants)})
        training, embeddings, one, both = (rates[k] for k in ("training", "embeddings", "one", "both"))
        n_windows = len(dm.windows("test"))
        single, sharded = shard_wall(ckpt, out, 1), shard_wall(ckpt, out, SHARDS)
    model = ", ".join(f"{k} {hp[k]}" for k in ("d_model", "n_layers", "n_heads", "d_ff", "seq_len"))
    body = f"""
The default model ({model}, {hp['positional_encoding']} positions), on CPU, batches of {BATCH}, median of
{REPEATS} rounds (the four taking turns) over {BATCHES} batches of the sample genome's test windows and variants:

| work, one process | rows/s | against the training forward pass |
|---|---|---|
| training forward pass (masking, encoder, head, loss; autograd on) | {training:.1f} windows/s | 1.00x |
| `predict=embeddings` | {embeddings:.1f} windows/s | {embeddings / training:.2f}x |
| `predict=variant_effect` | {one:.1f} variants/s | {one / training:.2f}x |
| `predict=variant_effect --rc_average=true` (both strands) | {both:.1f} variants/s | {both / training:.2f}x |

A variant costs one window's forward pass (two with both strands): its score needs the model's view of
it with the variant masked, so windows cannot be shared between variants.

`--predict=embeddings` over all {n_windows} test windows, whole runs (startup, genome cache, model load
included): one process {single:.1f} s; {SHARDS} shards side by side {sharded:.1f} s, a speed-up of
**{single / sharded:.2f}x**. This machine's 2 cores bound it: one process already uses both (torch's
threads), and every shard pays the whole startup (Python, torch, the genome, the model) on the same
cores, so here shards cannot gain. On real nodes each shard's pod has its own GPU and cores, so the
speed-up grows with the shards until their startup and data staging dominate: close to {SHARDS}x for a
run whose prediction takes much longer than a pod's startup.
"""
    write_section("inference", "Inference: embeddings and variant effects per pod, and shards",
                  ".venv/bin/python -m bench inference", body)
    print(body)


if __name__ == "__main__":
    main()
