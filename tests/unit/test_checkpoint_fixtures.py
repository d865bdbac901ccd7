"""Committed checkpoints of real older versions (1.0.0 to 1.4.0) and of the current one load through all three
flags on the sample data; another major is refused with one line. See tests/fixtures/make_fixtures.sh."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from seqmodel import VERSION, contract, run
from seqmodel.outputs import checkpoint
from seqmodel.hparam import registry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = FIXTURES.parents[1]
VERSIONS = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", VERSION]
DATA = ROOT / "data" / "genome"
SAMPLE = [f"--seq_file={DATA / 'genome.fa.gz'}", f"--train_intervals={DATA / 'train.bed'}",
          f"--valid_intervals={DATA / 'valid.bed'}", f"--test_intervals={DATA / 'test.bed'}"]
LABELLED = [f"--seq_file={DATA / 'genome.fa.gz'}", f"--train_intervals={DATA / 'train.labels.bed'}",
            f"--valid_intervals={DATA / 'valid.labels.bed'}", f"--test_intervals={DATA / 'test.labels.bed'}"]
QUICK = ["--accelerator=cpu", "--limit_val_batches=2", "--limit_test_batches=2", "--val_check_interval=2"]  # 2 batches


@pytest.fixture(autouse=True)
def genome_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQMODEL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "genome-cache"))


def fixture(version: str, task: str) -> Path:
    return FIXTURES / f"v{version}" / f"{task}.ckpt"


def test_there_is_a_real_older_version() -> None:
    assert VERSIONS[0] != VERSIONS[1]
    assert checkpoint.stamped_version(torch.load(fixture("1.0.0", "ptmask"), weights_only=True)) == "1.0.0"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("task", ["ptmask", "finetune"])
def test_migrated_hparams_are_valid_now(version: str, task: str) -> None:
    ckpt = checkpoint.read(fixture(version, task))
    hparams = registry().parse_dict({k: v for k, v in checkpoint.hparams_of(ckpt).items()})
    assert checkpoint.stamped_version(ckpt) == VERSION and hparams["task"] == task
    assert hparams["conv_kernel"] == (0 if version == "1.0.0" else 9)
    # before 1.3, dataset paths were relative to the working directory: data_root "."
    assert hparams["data_root"] == ("data" if version in ("1.3.0", "1.4.0", VERSION) else ".")
    # before 1.4, dropout applied to the attention weights too: those runs keep it there
    assert hparams["attention_dropout"] == (0.0 if version in ("1.4.0", VERSION) else 0.1)
    # 1.5 changed the pretraining defaults: older runs keep theirs
    old = version != VERSION
    assert (hparams["dropout"], hparams["lr"]) == ((0.1, 1e-3) if old else (0.0, 2e-3))
    assert (hparams["positional_encoding"], hparams["mask_prop"]) == (("sinusoidal", 0.12) if old else ("rope", 0.24))
    assert (hparams["encoder"], hparams["head"], hparams["loss"], hparams["dataset"]) == ("transformer", "auto", "auto", "genome")


@pytest.mark.parametrize("version", ["1.3.0", "1.4.0", VERSION])
def test_a_model_is_named_by_the_defaults_it_was_trained_with(version: str) -> None:
    """Names are changes from today's defaults: an older model's defaults that 1.5 changed name it."""
    ckpt = checkpoint.read(fixture(version, "ptmask"))
    name = contract.canonical_name(contract.saved_named(checkpoint.hparams_of(ckpt), checkpoint.named_of(ckpt)))
    ours = "bs=8,dm=16,ff=32,len=64,nh=2,nl=1"  # what make_fixtures.sh set
    old = "bs=8,dm=16,do=0.1,ff=32,keep=0.015,len=64,lr=0.001,mask=0.12,nh=2,nl=1,pe=sinusoidal,rand=0.015"
    # 1.3 recorded no names: its built-ins that differ from today's defaults name it, attention dropout too
    assert name == {"1.3.0": "ado=0.1," + old, "1.4.0": old, VERSION: ours}[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_load_checkpoint_path_tests_both_tasks(version: str, tmp_path: Path) -> None:
    out = tmp_path / "pt-test"
    assert run.main(["--mode=test", f"--load_checkpoint_path={fixture(version, 'ptmask')}",
                     f"--default_root_dir={out}", *SAMPLE, *QUICK]) == 0
    assert (out / "predictions.tsv").read_text().count("\n") == 1 + 2 * 8
    out = tmp_path / "ft-test"
    assert run.main(["--mode=test", f"--load_checkpoint_path={fixture(version, 'finetune')}",
                     f"--default_root_dir={out}", *LABELLED, *QUICK]) == 0
    header = (out / "predictions.tsv").read_text().splitlines()[0].split("\t")
    assert header == ["chrom", "start", "end", "motif1", "motif2", "motif3", "motif4", "motif5"]


def new_data(tmp_path: Path, labelled: bool) -> Path:
    """A data root a fine-tuned model meets after training: the genome and intervals to predict, nothing else."""
    root = tmp_path / "elsewhere"
    root.mkdir()
    shutil.copy(DATA / "genome.fa.gz", root / "genome.fa.gz")
    rows = (DATA / "test.labels.bed").read_text().splitlines()[:21]
    plain = ["\t".join(row.split("\t")[:3]) for row in rows[1:]]  # a BED file: no header, no labels
    (root / "new.bed").write_text("\n".join(rows if labelled else plain) + "\n")
    return root


@pytest.mark.parametrize("labelled", [True, False], ids=["labelled", "unlabelled"])
def test_a_fine_tuned_model_predicts_from_its_checkpoint_the_genome_and_the_intervals_alone(
        labelled: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, out = new_data(tmp_path, labelled), tmp_path / "predicted"
    # no train_intervals or valid_intervals: the label names are the checkpoint's
    assert run.main(["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'finetune')}", f"--data_root={root}",
                     "--seq_file=genome.fa.gz", "--test_intervals=new.bed", f"--default_root_dir={out}",
                     "--accelerator=cpu"]) == 0, capsys.readouterr().err
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["chrom", "start", "end", "motif1", "motif2", "motif3", "motif4", "motif5"]
    assert len(rows) == 1 + 20
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert ("test/auroc" in metrics) == labelled  # without labels: predictions, nothing to score


def test_intervals_labelled_otherwise_than_the_model_are_refused_naming_the_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = new_data(tmp_path, labelled=True)
    rows = (root / "new.bed").read_text().splitlines()
    (root / "new.bed").write_text("\n".join([rows[0].replace("motif5", "CTCF"), *rows[1:]]) + "\n")
    assert run.main(["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'finetune')}", f"--data_root={root}",
                     "--seq_file=genome.fa.gz", "--test_intervals=new.bed", f"--default_root_dir={tmp_path / 'o'}",
                     "--accelerator=cpu"]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"error: {root / 'new.bed'}: label columns [") and \
        "'CTCF'] differ from those of the checkpoint ['motif1'" in err


@pytest.mark.parametrize("version", VERSIONS)
def test_load_encoder_from_checkpoint_starts_finetuning(version: str, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    source = fixture(version, "ptmask")
    assert run.main(["--task=finetune", f"--load_encoder_from_checkpoint={source}", "--max_steps=1",
                     "--batch_size=4", "--seq_len=64", f"--default_root_dir={out}", *LABELLED, *QUICK]) == 0
    ours = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ours["hyper_parameters"]["d_model"] == 16  # the encoder's shape came with it
    assert checkpoint.label_names_of(ours) == ["motif1", "motif2", "motif3", "motif4", "motif5"]


@pytest.mark.parametrize("version", VERSIONS)
def test_resume_from_checkpoint_continues_the_run(version: str, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    (out / "checkpoints").mkdir(parents=True)
    shutil.copy(fixture(version, "ptmask"), out / "checkpoints" / "last.ckpt")
    assert run.main(["--resume_from_checkpoint=last", "--max_steps=6", "--batch_size=8", "--seq_len=64",
                     f"--default_root_dir={out}", *SAMPLE, *QUICK]) == 0
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 6
    resumed = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint.stamped_version(resumed) == VERSION


def test_other_major_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = torch.load(fixture(VERSION, "ptmask"), weights_only=True)
    ckpt[checkpoint.STAMP_KEY]["version"] = "2.0.0"
    other = tmp_path / "v2.ckpt"
    torch.save(ckpt, other)
    assert run.main(["--mode=test", f"--load_checkpoint_path={other}", f"--default_root_dir={tmp_path / 'o'}",
                     *SAMPLE, *QUICK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {other}: checkpoint is from seqmodel 2.0.0 (major 2); this is seqmodel {VERSION} "
                   f"(major 1), which cannot load it: use seqmodel 2.x"]
