"""Fine-tuning on the real genome with real labels, against a k-mer logistic regression (bench genome).

The task (genome_data.tss_halves): which half of a 2 kb upstream region lies next to its gene's
transcription start, the core promoter side. The labels come from the RefSeq annotation in the regions'
headers, and the split is bench genome's: train on chromosomes 2 and 3, choose on 4, test on X. The
baseline is the usual one for sequence classification: a logistic regression on the k-mer spectrum of
both strands, its k and L2 strength chosen on the validation chromosome. The model is fine-tuned twice
through `python -m seqmodel.run`, from scratch and from bench genome's pretrained encoder, so the
table shows what the pretraining is worth.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bench import genome_data
from bench.kmer import auroc, encode, kmer_spectrum, logistic_regression
from bench.report import write_section

K_MAX = (3, 4, 5, 6)
L2 = (1e-3, 1e-2, 1e-1, 1.0)
STEPS = 300
RECIPE = ["--task=finetune", "--accelerator=cpu", "--warmup_steps=30", "--rc_average=true",
          "--val_check_interval=100", "--log_every_n_steps=50"]

Halves = list[tuple[genome_data.Contig, int, int, int]]
Runner = Callable[[list[str], Path], float]


def split_halves(halves: Halves) -> dict[str, Halves]:
    return {split: [h for h in halves if h[0].chrom in chroms] for split, chroms in genome_data.SPLITS.items()}


def kmer_baseline(halves: dict[str, Halves]) -> tuple[float, str]:
    """Held-out AUROC of the logistic regression whose (k, L2) did best on the validation split."""
    labels = {split: np.array([label for *_, label in rows]) for split, rows in halves.items()}
    best: tuple[float, int, float] = (-1.0, 0, 0.0)
    features = {}
    for k_max in K_MAX:
        features[k_max] = {split: np.stack([kmer_spectrum(encode(c.seq[start:end]), k_max)
                                            for c, start, end, _ in rows]) for split, rows in halves.items()}
        for l2 in L2:
            predict = logistic_regression(features[k_max]["train"], labels["train"], l2)
            best = max(best, (auroc(predict(features[k_max]["valid"]), labels["valid"]), k_max, l2))
    _, k_max, l2 = best
    predict = logistic_regression(features[k_max]["train"], labels["train"], l2)
    return auroc(predict(features[k_max]["test"]), labels["test"]), f"k = 1..{k_max}, L2 {l2:g}"


def section(built: genome_data.GenomeData, pretrained: Path, run: Runner, logs: Path, tmp: Path) -> str:
    """Fits the baseline and both fine-tunings, writes the BENCHMARKS.md section and returns it."""
    halves = split_halves(built.halves)
    start = time.perf_counter()
    kmer_auroc, chosen = kmer_baseline(halves)
    rows = [(f"k-mer logistic regression ({chosen}, chosen on {', '.join(genome_data.SPLITS['valid'])})",
             f"{time.perf_counter() - start:.0f} s in all", kmer_auroc)]
    paths = built.paths
    data = [f"--seq_file={paths['genome']}", *(f"--{split}_intervals={paths[f'finetune_{split}']}"
                                               for split in genome_data.SPLITS)]
    for name, label, init in (("scratch", "seqmodel from scratch", []),
                              ("pretrained", "seqmodel from the pretrained encoder",
                               [f"--load_encoder_from_checkpoint={pretrained}"])):
        out = tmp / f"finetune-{name}"
        train_s = run([*data, *RECIPE, *init, f"--max_steps={STEPS}", f"--default_root_dir={out}/train"],
                      logs / f"finetune-{name}.log")
        run(["--mode=test", *data, "--accelerator=cpu", f"--load_checkpoint_path={out}/train/checkpoints/last.ckpt",
             f"--default_root_dir={out}/test"], logs / f"finetune-{name}-test.log")
        metrics = json.loads((out / "test" / "metrics.json").read_text())["metrics"]
        rows.append((label, f"{STEPS} steps, {train_s / 60:.1f} min", metrics["test/auroc"]))
    counts = {split: len(rows) for split, rows in halves.items()}
    table = "\n".join(f"| {label} | {cost} | {value:.4f} |" for label, cost, value in rows)
    body = f"""
Task: which half of a 2 kb upstream region lies next to its gene's transcription start (label
`{genome_data.LABEL}`; the labels are the RefSeq annotation in the regions' headers). Each region alone in its
contig gives two 1 kb intervals, one of each label: {counts['train']:,} to train
({', '.join(genome_data.SPLITS['train'])}), {counts['valid']:,} to choose ({', '.join(genome_data.SPLITS['valid'])}),
{counts['test']:,} to test ({', '.join(genome_data.SPLITS['test'])}, held out whole). seqmodel: `{' '.join(RECIPE)}`,
tested from its last checkpoint with both strands averaged; "pretrained" starts from the encoder trained above.

| model | cost | held-out AUROC |
|---|---|---|
{table}
"""
    write_section("genome-finetune", "Fine-tuning on a real genome with real labels, against k-mer regression",
                  ".venv/bin/python -m bench genome", body)
    return body
