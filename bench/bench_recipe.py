"""The pretraining defaults, chosen by measurement: short runs on the real genome, the same tokens each.

Each variant pretrains the default model on bench/genome_data.py's training chromosomes for the same
number of tokens, through `python -m seqmodel.run`, and is tested on the held-out chromosome with one
corruption for all (bench_genome.EVAL_MASKING), so that a variant that trains with more masking is not
scored on a harder task. Every variant gives all the hparams the variants change as flags, starting from
1.4's defaults, so the table does not move when the defaults do; the last variant is today's defaults.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench import genome_data
from bench.bench_genome import CACHE, EVAL_MASKING, data_args, seqmodel_run
from bench.report import write_section
from seqmodel.outputs.migrations import DEFAULTS_OF_1_4

TOKENS = 300 * 16 * 1000  # 300 steps of batch 16 at the default seq_len; ~7 minutes here each
NO_DROPOUT = {**DEFAULTS_OF_1_4, "dropout": 0.0}
SMALLER_BATCH = {**NO_DROPOUT, "batch_size": 16, "lr": 2e-3}
MASK_30 = {"mask_prop": 0.24, "random_prop": 0.03, "keep_prop": 0.03}
VARIANTS = {
    "1.4.0 defaults: batch 32, lr 1e-3, dropout 0.1, sinusoidal, 15% selected": DEFAULTS_OF_1_4,
    "dropout 0": NO_DROPOUT,
    "dropout 0, batch 16, lr 2e-3": SMALLER_BATCH,
    "the same, 30% of positions selected (24% mask, 3% random, 3% kept)": {**SMALLER_BATCH, **MASK_30},
    "the same as the third, RoPE": {**SMALLER_BATCH, "positional_encoding": "rope"},
    "RoPE and 30% selected (the 1.5.0 defaults)": {**SMALLER_BATCH, **MASK_30, "positional_encoding": "rope"},
}
RUN = ["--accelerator=cpu", "--warmup_steps=100", "--limit_val_batches=0", "--log_every_n_steps=50"]
TEST = [*EVAL_MASKING, "--limit_test_batches=0.25"]


def flags(values: dict[str, object]) -> list[str]:
    return [f"--{name}={value}" for name, value in values.items()]


def main() -> None:
    data = data_args(genome_data.build(CACHE).paths)
    logs = CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows, baseline = [], 0.0
    for index, (label, values) in enumerate(VARIANTS.items()):
        steps = TOKENS // (int(values["batch_size"]) * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            seqmodel_run([*data, *RUN, *flags(values), f"--max_steps={steps}", f"--default_root_dir={tmp}/train"],
                         logs / f"recipe-{index}-train.log")
            seqmodel_run(["--mode=test", *data, "--accelerator=cpu", *TEST,
                          f"--load_checkpoint_path={tmp}/train/checkpoints/last.ckpt",
                          f"--default_root_dir={tmp}/test"], logs / f"recipe-{index}-test.log")
            metrics = json.loads(Path(f"{tmp}/test/metrics.json").read_text())["metrics"]
        baseline = metrics["test/baseline_acc"]
        rows.append((label, steps, values["batch_size"], metrics["test/masked_acc"], metrics["test/masked_loss"]))
    best = max(rows, key=lambda row: row[3])
    table = "\n".join(f"| {label} | {steps} x {batch} | {acc:.4f} | {loss:.4f} |"
                      for label, steps, batch, acc, loss in rows)
    body = f"""
The real-genome benchmark's data (dm3 upstream regions; train chr2 and chr3, test chrX). Each variant:
the default model and seq_len, {TOKENS / 1e6:.1f} M training tokens, `{' '.join(RUN)}` and the flags its row
names; tested on the first quarter of chrX's windows with `{' '.join(EVAL_MASKING)}`, on the masked positions
alone. The base-frequency baseline of those positions: {baseline:.4f}. Variants are compared at equal tokens
(their times, on a shared machine, are in `bench train` and `bench attention` instead).

| variant | steps x batch | held-out masked accuracy | masked loss (nats) |
|---|---|---|---|
{table}

Best held-out accuracy: {best[0]}.
"""
    write_section("recipe", "Choosing the pretraining defaults on the real genome",
                  ".venv/bin/python -m bench recipe", body)
    print(body)


if __name__ == "__main__":
    main()
