"""End to end on the sample data, through the real command line (slow: trains for real on CPU).

Pretraining beats the base-frequency baseline, fine-tuning from its encoder finds the planted motifs
(per-label AUROC >= 0.9), test mode writes predictions, and every user error is one line and exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "genome"
LABELLED = [f"--train_intervals={DATA / 'train.labels.bed'}", f"--valid_intervals={DATA / 'valid.labels.bed'}",
            f"--test_intervals={DATA / 'test.labels.bed'}"]
MODEL = ["--d_model=64", "--n_layers=2", "--n_heads=4", "--d_ff=128", "--dropout=0.0", "--seq_len=200",
         "--batch_size=32", "--accelerator=cpu", "--log_every_n_steps=20"]

pytestmark = pytest.mark.slow


def seqmodel_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python seqmodel/run.py ...` from the repo root, as a user (and the pod) runs it."""
    return subprocess.run([sys.executable, "seqmodel/run.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def metrics(out: Path) -> dict[str, float]:
    return json.loads((out / "metrics.json").read_text())["metrics"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("SEQMODEL_CACHE_DIR", str(tmp_path_factory.mktemp("genome-cache")))
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def pretrained(workdir: Path) -> Path:
    out = workdir / "pretrain"
    result = seqmodel_run(*MODEL, "--lr=2e-3", "--warmup_steps=50", "--max_steps=300", "--val_check_interval=100",
                          "--limit_val_batches=10", f"--default_root_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def finetuned(workdir: Path, pretrained: Path) -> Path:
    out = workdir / "finetune"
    result = seqmodel_run("--task=finetune", *LABELLED, *MODEL, "--lr=2e-3", "--warmup_steps=20", "--max_steps=200",
                          "--val_check_interval=100",
                          f"--load_encoder_from_checkpoint={pretrained / 'checkpoints' / 'last.ckpt'}",
                          f"--default_root_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_pretraining_beats_the_base_frequency_baseline(pretrained: Path) -> None:
    found = metrics(pretrained)
    assert found["val/masked_acc"] > found["val/baseline_acc"] + 0.03, found


def test_finetuning_from_the_encoder_finds_the_planted_motifs(finetuned: Path) -> None:
    found = metrics(finetuned)
    per_label = {k: v for k, v in found.items() if k.startswith("val/auroc_")}
    assert len(per_label) == 5 and min(per_label.values()) >= 0.9, found


def test_test_mode_writes_predictions(workdir: Path, pretrained: Path, finetuned: Path) -> None:
    out = workdir / "finetune-test"
    log = workdir / "termination-log"
    result = seqmodel_run("--mode=test", *LABELLED, "--accelerator=cpu", f"--default_root_dir={out}",
                          f"--load_checkpoint_path={finetuned / 'checkpoints' / 'best.ckpt'}",
                          env={"SEQMODEL_TERMINATION_LOG": str(log)})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (out / "predictions.tsv").read_text().splitlines()
    bins = [line for line in (DATA / "test.labels.bed").read_text().splitlines() if not line.startswith("#")]
    assert len(rows) == 1 + len(bins)
    summary = json.loads(log.read_text())
    assert summary["status"] == "succeeded" and min(
        v for k, v in summary["metrics"].items() if k.startswith("test/auroc_")) >= 0.9

    out = workdir / "pretrain-test"
    result = seqmodel_run("--mode=test", "--accelerator=cpu", "--limit_test_batches=3", f"--default_root_dir={out}",
                          f"--load_checkpoint_path={pretrained / 'checkpoints' / 'best.ckpt'}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert rows[0].split("\t")[3:6] == ["n_masked", "masked_loss", "masked_acc"] and len(rows) == 1 + 3 * 32


def user_errors(tmp: Path, pretrained: Path) -> dict[str, tuple[list[str], str]]:
    bad_bed = tmp / "bad.bed"
    bad_bed.write_text("chr1\t500\t100\n")
    bad_fasta = tmp / "bad.fa"
    bad_fasta.write_text(">chr1\nACGT\n>chr1\nACGT\n")
    other_major = tmp / "other.ckpt"
    ckpt = torch.load(pretrained / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt["seqmodel"]["version"] = "2.0.0"
    torch.save(ckpt, other_major)
    return {
        "unknown hparam": (["--lrr=0.1"], "unknown hparam 'lrr'; did you mean 'lr'?"),
        "wrong type": (["--batch_size=many"], "hparam 'batch_size' expects int"),
        "missing file": ([f"--seq_file={tmp / 'none.fa'}"], "none.fa"),
        "bad BED": ([f"--train_intervals={bad_bed}"], "bad.bed:1"),
        "bad FASTA": ([f"--seq_file={bad_fasta}"], "chr1"),
        "not empty": ([f"--default_root_dir={pretrained}"], "--resume_from_checkpoint=last"),
        "other major": ([f"--load_checkpoint_path={other_major}", "--mode=test"], "seqmodel 2.0.0"),
    }


@pytest.mark.parametrize("case", ["unknown hparam", "wrong type", "missing file", "bad BED", "bad FASTA",
                                  "not empty", "other major"])
def test_user_errors_are_one_line_and_exit_2(case: str, workdir: Path, pretrained: Path, tmp_path: Path) -> None:
    args, expected = user_errors(tmp_path, pretrained)[case]
    log = tmp_path / "termination-log"
    defaults = [f"--default_root_dir={tmp_path / 'out'}", "--accelerator=cpu", "--max_steps=1"]
    result = seqmodel_run(*defaults, *args, env={"SEQMODEL_TERMINATION_LOG": str(log)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert json.loads(log.read_text())["status"] == "failed"
