"""Real multi-process DDP on CPU (gloo), launched the way a pod launches it: the command reruns itself
for rank 1. Slow-ish (two Python processes import torch), bounded by the subprocess timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from seqmodel.dataset.datamodule import ShardSampler
from seqmodel.dataset.windows import split_id
from seqmodel.contract import TERMINATION_LOG_ENV

ROOT = Path(__file__).resolve().parents[2]
STEPS, BATCH, EPOCH = 4, 8, 64  # 2 ranks x 4 steps x 8 samples = one whole epoch of 64
TINY = ["--d_model=16", "--n_layers=1", "--n_heads=2", "--d_ff=32", "--seq_len=64", f"--batch_size={BATCH}",
        f"--epoch_samples={EPOCH}", f"--max_steps={STEPS}", "--val_check_interval=2", "--limit_val_batches=2",
        "--log_every_n_steps=1", "--accelerator=cpu", "--devices=2"]

pytestmark = pytest.mark.slow


def test_two_cpu_ranks_train_disjoint_windows_and_write_outputs_once(tmp_path: Path) -> None:
    out, log = tmp_path / "ddp", tmp_path / "termination-log"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "SEQMODEL_CACHE_DIR": str(tmp_path / "cache"),
           TERMINATION_LOG_ENV: str(log)}
    result = subprocess.run([sys.executable, "-m", "ddp_probe", *TINY, f"--default_root_dir={out}"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Starting with 2 processes" in result.stderr + result.stdout

    seen = {}
    for rank in (0, 1):
        rows = (out / f"train_index.rank{rank}.txt").read_text().split("\n")[:-1]
        assert len(rows) == STEPS and all(len(row.split()) == BATCH for row in rows)
        seen[rank] = [int(i) for row in rows for i in row.split()]
        # what the rank trained on is what its shard of the epoch says, in order
        _, expected = split_id(ShardSampler(EPOCH, rank=rank, world_size=2).indices())
        assert seen[rank] == expected.tolist()
    assert not set(seen[0]) & set(seen[1]) and set(seen[0]) | set(seen[1]) == set(range(EPOCH))
    # one seed for identical initial weights, but each rank masks with its own random stream
    assert (out / "rng.rank0.txt").read_text() != (out / "rng.rank1.txt").read_text()

    assert json.loads((out / "metrics.json").read_text())["global_step"] == STEPS
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == STEPS
    assert yaml.safe_load((out / "hparams.yaml").read_text())["hparams"]["devices"] == "2"
    assert sorted(p.name for p in (out / "csv").iterdir()) == ["version_0"]
    assert json.loads(log.read_text())["status"] == "succeeded"


def test_two_cpu_ranks_write_one_prediction_file_without_duplicates(tmp_path: Path) -> None:
    env = {**os.environ, "SEQMODEL_CACHE_DIR": str(tmp_path / "cache")}
    train = [arg for arg in TINY if arg != "--devices=2"] + ["--max_steps=1", f"--default_root_dir={tmp_path / 't'}"]
    subprocess.run([sys.executable, "-m", "seqmodel.run", *train], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    out = tmp_path / "test"
    test = ["--mode=test", "--accelerator=cpu", "--devices=2", "--limit_test_batches=5", f"--default_root_dir={out}",
            f"--load_checkpoint_path={tmp_path / 't' / 'checkpoints' / 'last.ckpt'}"]
    result = subprocess.run([sys.executable, "-m", "seqmodel.run", *test], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.glob("predictions*")) == ["predictions.tsv"]
    rows = [line.split("\t")[:3] for line in (out / "predictions.tsv").read_text().splitlines()[1:]]
    starts = [(chrom, int(start)) for chrom, start, _ in rows]
    # 2 ranks x 5 batches x 8 windows: the first 80 windows of the test split, once each, in order
    assert len(rows) == 2 * 5 * BATCH and starts == sorted(set(starts))
