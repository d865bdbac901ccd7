"""Data loading: samples/s of seqmodel's dataset + collate against pyfaidx random access of the same
windows (+ encoding, strand flip and batching), in one process on one core.

    .venv/bin/python -m bench data

Both sides read the sample genome (data/genome), at seq_len 1000, batch 32, reverse-complement
augmentation on. Ours runs through a real DataLoader (num_workers=0: sampler, `__getitems__`, collate);
the baseline fetches each window with pyfaidx from the decompressed FASTA (indexed beforehand),
encodes it with the same vectorised alphabet, flips the same samples and stacks the batch.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.report import median_time, write_section

ROOT = Path(__file__).resolve().parent.parent
GENOME = ROOT / "data" / "genome"
COMMAND = ".venv/bin/python -m bench data"
SEQ_LEN = 1000
BATCH = 32
SAMPLES = 16_000  # per timed run
REPEATS = 5
TARGET_RATIO = 3.0
TARGET_RATE = 20_000


def _loaders(tmp: Path, task: str):
    from seqmodel.dataset.datamodule import SeqDataModule

    hp = {"seq_file": str(GENOME / "genome.fa.gz"), "seq_len": SEQ_LEN, "batch_size": BATCH,
          "reverse_complement": True, "cache_dir": str(tmp / "cache"), "seed": 0, "task": task}
    if task == "ptmask":
        hp.update(train_intervals=str(GENOME / "train.bed"), epoch_samples=SAMPLES)
    else:
        hp.update(train_intervals=str(GENOME / "train.labels.bed"), valid_intervals=str(GENOME / "valid.labels.bed"),
                  test_intervals=str(GENOME / "test.labels.bed"))
    dm = SeqDataModule(hp)
    dm.setup("fit")
    return dm, dm.train_dataloader()


def _windows_of(dm, loader) -> tuple[list[tuple[str, int, bool]], list]:
    """The (chrom, start, flip) of every sample the loader yields in epoch 0, in order, and labels."""
    from seqmodel.dataset.windows import reverse_flags, split_id

    ds = dm.datasets["train"]
    ids = np.array(list(iter(loader.sampler)), dtype=np.int64)
    chrom, start, rows = ds._locate(ids, split_id(ids)[1])  # where the dataset itself reads them
    labels = None if ds.labels is None else ds.labels[rows]
    flips = reverse_flags(ds.seed, ids)
    names = ds.genome.names
    return [(names[c], s, f) for c, s, f in zip(chrom.tolist(), start.tolist(), flips.tolist())], labels


def _pyfaidx_epoch(fasta, alphabet, windows, labels) -> int:
    n = 0
    for b in range(0, len(windows), BATCH):
        rows = []
        for chrom, start, flip in windows[b : b + BATCH]:
            tokens = alphabet.encode(fasta[chrom][start : start + SEQ_LEN].seq)
            rows.append(alphabet.reverse_complement(tokens) if flip else tokens)
        batch = {"tokens": torch.from_numpy(np.stack(rows)),
                 "index": torch.arange(b, b + len(rows))}
        if labels is not None:
            batch["labels"] = torch.from_numpy(labels[b : b + len(rows)])
        n += len(rows)
    return n


def _check_same(loader, fasta, alphabet, windows) -> None:
    first = next(iter(loader))["tokens"].numpy()
    for row, (chrom, start, flip) in zip(first, windows):
        tokens = alphabet.encode(fasta[chrom][start : start + SEQ_LEN].seq)
        expected = alphabet.reverse_complement(tokens) if flip else tokens
        if not np.array_equal(row, expected):
            raise AssertionError(f"dataset and pyfaidx disagree at {chrom}:{start}")


def measure(task: str, tmp: Path, fasta) -> dict:
    dm, loader = _loaders(tmp, task)
    windows, labels = _windows_of(dm, loader)
    _check_same(loader, fasta, dm.alphabet, windows)
    rounds = -(-SAMPLES // len(windows))  # short epochs are timed several times over
    n = rounds * len(windows)

    def ours() -> None:
        for _ in range(rounds):
            for _ in loader:
                pass

    def faidx() -> None:
        for _ in range(rounds):
            _pyfaidx_epoch(fasta, dm.alphabet, windows, labels)

    ours()  # warm the page cache and the sliding-window view
    t_ours = median_time(ours, REPEATS)
    t_faidx = median_time(faidx, REPEATS)
    return {"task": task, "n": n, "ours": n / t_ours, "faidx": n / t_faidx}


def main() -> None:
    import pyfaidx

    torch.set_num_threads(1)  # per core
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        plain = tmp / "genome.fa"
        with gzip.open(GENOME / "genome.fa.gz", "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        fasta = pyfaidx.Fasta(str(plain), sequence_always_upper=True)  # builds the .fai now
        results = [measure("ptmask", tmp, fasta), measure("finetune", tmp, fasta)]
        fasta.close()

    rows = []
    ok = True
    for r in results:
        ratio = r["ours"] / r["faidx"]
        passed = ratio >= TARGET_RATIO and r["ours"] >= TARGET_RATE
        ok &= passed
        what = ("pretraining: random windows in train.bed" if r["task"] == "ptmask"
                else "fine-tuning: windows centred on train.labels.bed")
        rows.append(f"| {what} | {r['n']} | {r['ours']:,.0f} | {r['faidx']:,.0f} | {ratio:.1f}x | "
                    f"{'yes' if passed else 'NO'} |")
    body = "\n".join([
        f"Samples/s on one core (torch threads 1, DataLoader num_workers=0), seq_len {SEQ_LEN}, batch {BATCH}, "
        f"reverse-complement augmentation on; median of {REPEATS} timed runs of >= {SAMPLES:,} samples. Ours: sampler + "
        "`__getitems__` (one fancy index into the memory-mapped uint8 genome cache) + collate to torch. "
        "Baseline: pyfaidx fetch of the same windows from the decompressed sample FASTA, "
        "vectorised encoding, the same strand flips, stacked into the same batch. Both produce identical "
        "tokens (checked). Targets: >= 3x pyfaidx and >= 20,000 samples/s per core.",
        "",
        "| data | samples per run | seqmodel samples/s | pyfaidx samples/s | ratio | meets targets |",
        "|---|---|---|---|---|---|",
        *rows,
    ])
    write_section("data", "Data loading: dataset + collate vs pyfaidx", COMMAND, body)
    print(body)
    if not ok:
        print("bench data: below target", flush=True)
