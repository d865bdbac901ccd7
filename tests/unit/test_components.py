"""Custom components named by qualified path: the example encoder trains on the sample data, its hparams
show in --help and in canonical names, checkpoints rebuild it; custom heads, losses, tasks and datasets;
clashes and bad components are one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from conftest import LABELS, TINY
from seqmodel import contract, run
from seqmodel.components import registry_for
from seqmodel.hparam import HparamError, registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_encoder"
DILATED = "my_encoders.conv:DilatedConvEncoder"
QUICK = ["--accelerator=cpu", "--log_every_n_steps=1", "--limit_val_batches=2", "--limit_test_batches=2"]
FAST = ["--max_steps=3", "--val_check_interval=3", *QUICK]

EXTRAS = '''
"""Components for the tests (package `extras`, put in a `src/` directory)."""
import torch
import torch.nn.functional as F
from torch import nn

from seqmodel.hparam import Hparam, HparamGroup
from seqmodel.model.base import EncoderBase, SequenceHead, TokenHead
from seqmodel.task.loss import LossBase
from seqmodel.task.ptmask import PtMaskTask


class AttentionPoolHead(SequenceHead):
    HPARAMS = HparamGroup("attention pool", [
        Hparam("pool_temperature", 1.0, float, "softmax temperature of the pooling", "pt", minimum=0.01)])

    def __init__(self, hparams, d_model, n_outputs):
        super().__init__()
        self.temperature = hparams["pool_temperature"]
        self.score = nn.Linear(d_model, 1)
        self.out = nn.Linear(d_model, n_outputs)

    def forward(self, hidden):  # [B, L, D] -> [B, n_outputs]
        weights = torch.softmax(self.score(hidden) / self.temperature, dim=1)  # [B, L, 1]
        return self.out((weights * hidden).sum(dim=1))


class SmoothedBCE(LossBase):
    HPARAMS = HparamGroup("smoothed bce", [
        Hparam("label_smoothing", 0.0, float, "move targets this far towards 0.5", "ls", minimum=0.0, maximum=0.5)])

    def __init__(self, hparams):
        super().__init__()
        self.eps = hparams["label_smoothing"]

    def forward(self, logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets * (1 - 2 * self.eps) + self.eps, reduction="none")


class ScaledPtMask(PtMaskTask):
    HPARAMS = HparamGroup("scaled", [Hparam("loss_scale", 1.0, float, "multiplies the training loss", "lsc")])

    def training_step(self, batch, batch_idx):
        return self.hparams["loss_scale"] * super().training_step(batch, batch_idx)


class TokenOnlyHead(TokenHead):
    def __init__(self, hparams, d_model, n_outputs):
        super().__init__()
        self.out = nn.Linear(d_model, n_outputs)

    def forward(self, hidden):
        return self.out(hidden)


class ClashEncoder(EncoderBase):
    HPARAMS = HparamGroup("clash", [Hparam("lr", 0.1, float, "a second learning rate", "elr")])


class ShortClashEncoder(EncoderBase):
    HPARAMS = HparamGroup("short clash", [Hparam("enc_rate", 0.1, float, "a rate", "lr")])


class WidthEncoder(EncoderBase):
    HPARAMS = HparamGroup("width", [Hparam("width", 3, int, "a width", "w1")])


class WidthHead(SequenceHead):
    HPARAMS = HparamGroup("width", [Hparam("width", 3, int, "another width", "w2")])


class NotAnEncoder(nn.Module):
    pass


class BadHparams(EncoderBase):
    HPARAMS = {"depth": 3}
'''

DATA = '''
"""A custom dataset for the tests: the fake windows of conftest, with their count as its own hparam."""
from conftest import FakeDataModule, FakeWindows
from seqmodel.hparam import Hparam, HparamGroup


class SizedFake(FakeDataModule):
    HPARAMS = HparamGroup("sized", [Hparam("fake_train_windows", 128, int, "training windows", "ftw", minimum=8)])

    def __init__(self, hparams, labelled=True):
        super().__init__(hparams, labelled)
        self.data["train"] = FakeWindows(self.alphabet, hparams["fake_train_windows"], hparams["seq_len"], 1)
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with `src/extras/` (the test components) and `src/my_encoders` (the example)."""
    root = tmp_path_factory.mktemp("ws")
    package = root / "src" / "extras"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "comp.py").write_text(textwrap.dedent(EXTRAS))
    (package / "data.py").write_text(textwrap.dedent(DATA))
    (root / "src" / "my_encoders").symlink_to(EXAMPLE / "my_encoders")
    return root


@pytest.fixture
def on_path(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(workspace / "src"))
    return workspace


@pytest.fixture(autouse=True)
def genome_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQMODEL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "genome-cache"))


def seqmodel_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SEQMODEL_DATA_ROOT")}
    return subprocess.run([sys.executable, "-m", "seqmodel.run", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_custom_encoder_trains_on_the_sample_data_and_checkpoints_rebuild_it(on_path: Path, tmp_path: Path) -> None:
    data = [f"--data_root={ROOT / 'data'}", "--seq_len=64", "--batch_size=8", "--d_model=16"]
    out = tmp_path / "dilated"
    assert run.main([f"--encoder={DILATED}", "--dilated_layers=2", "--dilated_kernel=5", *data, *FAST,
                     f"--default_root_dir={out}"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 3 and metrics["metrics"]["val/masked_acc"] >= 0
    saved = yaml.safe_load((out / "hparams.yaml").read_text())
    # its own hparams enter the canonical name by full name beside the built-in ones (as the operator, which
    # cannot import the component, names them: seqmodel.contract), and are saved with the names that name it
    assert saved["name"] == "bs=8,dilated_kernel=5,dilated_layers=2,dm=16,enc=my_encoders.conv%3ADilatedConvEncoder,len=64"
    assert {"dilated_layers", "dilated_kernel", "encoder", "d_model"} <= set(saved["named"])
    assert saved["hparams"]["dilated_layers"] == 2 and saved["hparams"]["dilation_base"] == 2
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["encoder"] == DILATED and ckpt["hyper_parameters"]["dilated_kernel"] == 5
    assert ckpt["state_dict"]["encoder.blocks.1.conv.weight"].shape == (16, 16, 5)
    assert not any(key.startswith("encoder.blocks.2.") for key in ckpt["state_dict"])

    # testing the checkpoint rebuilds the same encoder without naming it
    tested = tmp_path / "tested"
    assert run.main(["--mode=test", f"--load_checkpoint_path={out / 'checkpoints' / 'last.ckpt'}",
                     f"--data_root={ROOT / 'data'}", *QUICK, f"--default_root_dir={tested}"]) == 0
    assert yaml.safe_load((tested / "hparams.yaml").read_text())["name"] == saved["name"]
    assert (tested / "predictions.tsv").read_text().count("\n") == 1 + 2 * 8
    # resuming too, and a custom hparam given on the command line wins over the checkpoint's
    assert run.main(["--resume_from_checkpoint=last", "--max_steps=4", f"--data_root={ROOT / 'data'}", *QUICK,
                     f"--default_root_dir={out}"]) == 0
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 4
    assert run.main(["--mode=test", f"--load_checkpoint_path={out / 'checkpoints' / 'last.ckpt'}",
                     "--dilated_kernel=3", f"--data_root={ROOT / 'data'}", *QUICK,
                     f"--default_root_dir={tmp_path / 'mismatch'}"]) == 2  # its weights are 5 wide
    # fine-tuning from its encoder takes the encoder and the encoder's own hparams, not the task's
    ft = tmp_path / "ft"
    assert run.main(["--config", "task/finetune", f"--load_encoder_from_checkpoint={out / 'checkpoints' / 'last.ckpt'}",
                     "--max_steps=1", "--val_check_interval=1", "--batch_size=4", "--seq_len=64",
                     f"--data_root={ROOT / 'data'}", *QUICK, f"--default_root_dir={ft}"]) == 0
    tuned = torch.load(ft / "checkpoints" / "last.ckpt", weights_only=True)
    assert (tuned["hyper_parameters"]["encoder"], tuned["hyper_parameters"]["dilated_kernel"]) == (DILATED, 5)
    assert tuned["hyper_parameters"]["task"] == "finetune" and tuned["state_dict"]["head.out.weight"].shape == (5, 32)


def test_custom_encoder_hparams_show_in_help_when_chosen(workspace: Path) -> None:
    chosen = seqmodel_run([f"--encoder={DILATED}", "--help"], cwd=workspace)  # ./src is importable
    assert chosen.returncode == 0 and chosen.stderr == ""
    text = " ".join(chosen.stdout.split())
    assert f"encoder {DILATED}: --dilated_layers INT dilated convolution blocks (default: 4)" in text
    assert "--dilation_base INT block i dilates by dilation_base ** i (default: 2)" in text
    assert "--lr FLOAT" in text  # beside the built-in ones
    from_config = seqmodel_run(["--config", str(EXAMPLE / "pretrain.yaml"), "-h"], cwd=workspace)
    assert "--dilated_kernel" in from_config.stdout
    plain = seqmodel_run(["--help"], cwd=workspace)
    assert plain.returncode == 0 and "--lr FLOAT" in plain.stdout and "dilated" not in plain.stdout


@pytest.mark.parametrize("args, message", [
    (["--encoder=no_such_pkg.enc:MyEncoder"],
     "error: hparam 'encoder': cannot import 'no_such_pkg.enc': No module named 'no_such_pkg'"),
    (["--encoder=extras.comp:NotAnEncoder"],
     "error: hparam 'encoder': extras.comp:NotAnEncoder is class extras.comp.NotAnEncoder, "
     "not a subclass of seqmodel.model.base.EncoderBase"),
    (["--encoder=extras.comp:ClashEncoder"],
     "error: hparam 'lr' is declared by both 'task' and 'encoder extras.comp:ClashEncoder'"),
])
def test_bad_components_are_one_line_errors(args: list[str], message: str, workspace: Path) -> None:
    assert one_error(seqmodel_run(args, cwd=workspace)) == message


def user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_more_component_errors_name_the_slot(on_path: Path, tmp_path: Path, fake_data: Any,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert user_error(["--encoder=extras.comp:Missing"], capsys) == \
        "error: hparam 'encoder': module 'extras.comp' has no attribute 'Missing'"
    assert user_error(["--encoder=extras.comp:WidthEncoder", "--head=extras.comp:WidthHead"], capsys) == \
        "error: hparam 'width' is declared by both 'encoder extras.comp:WidthEncoder' and 'head extras.comp:WidthHead'"
    assert user_error(["--encoder=extras.comp:ShortClashEncoder"], capsys) == \
        "error: short name 'lr' is used by both 'task.lr' and 'encoder extras.comp:ShortClashEncoder.enc_rate'"
    assert user_error(["--encoder=extras.comp:BadHparams"], capsys) == \
        "error: hparam 'encoder': extras.comp:BadHparams.HPARAMS must be a seqmodel.hparam.HparamGroup, got dict"
    assert user_error(["--encoder=extras.comp"], capsys) == \
        "error: hparam 'encoder' must be one of: transformer, or a class as package.module:Class; got 'extras.comp'"
    assert user_error([f"--encoder={DILATED}", "--dilated_layers=0"], capsys) == \
        "error: argument --dilated_layers: hparam 'dilated_layers' must be >= 1; got '0'"
    assert user_error(["--dilated_layers=2"], capsys).startswith("error: unknown hparam 'dilated_layers'")  # not chosen
    (tmp_path / "my.yaml").write_text(f"encoder: {DILATED}\ndilated_layer: 2\n")
    assert user_error(["--config", str(tmp_path / "my.yaml")], capsys) == \
        f"error: {tmp_path / 'my.yaml'}: unknown hparam 'dilated_layer'; did you mean 'dilated_layers'?"
    (tmp_path / "bad.yaml").write_text("encoder: extras/comp:X\n")
    assert user_error(["--config", str(tmp_path / "bad.yaml")], capsys).startswith(
        f"error: {tmp_path / 'bad.yaml'}: hparam 'encoder' must be one of: transformer, or a class")
    assert user_error(["--task=finetune", "--head=extras.comp:TokenOnlyHead", *FAST,
                       f"--default_root_dir={tmp_path / 'kind'}"], capsys) == \
        "error: hparam 'head': task finetune needs a seqmodel.model.base.SequenceHead; extras.comp:TokenOnlyHead is not one"


def test_custom_head_loss_dataset_and_task(on_path: Path, tmp_path: Path, fake_data: Any) -> None:
    tiny = [f"--{k}={v}" for k, v in TINY.items()]
    out = tmp_path / "ft"
    components = ["--dataset=extras.data:SizedFake", "--fake_train_windows=32", "--head=extras.comp:AttentionPoolHead",
                  "--pool_temperature=2", "--loss=extras.comp:SmoothedBCE", "--label_smoothing=0.1"]
    assert run.main(["--task=finetune", *components, *tiny, "--max_epochs=1", "--val_check_interval=1.0", *QUICK,
                     f"--default_root_dir={out}"]) == 0
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 32 // TINY["batch_size"]  # its epoch
    saved = yaml.safe_load((out / "hparams.yaml").read_text())
    # the name is long enough to end in a digest: what names the run is recorded beside it
    assert saved["name"] == contract.canonical_name({n: saved["hparams"][n] for n in saved["named"]})
    assert saved["name"].startswith("bs=8,data=extras.data%3ASizedFake,dm=16,fake_train_windows=32,")
    assert {"dataset", "fake_train_windows", "head", "pool_temperature", "loss", "label_smoothing"} <= set(saved["named"])
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["state_dict"]["head.score.weight"].shape == (1, TINY["d_model"])
    assert ckpt["hyper_parameters"]["label_smoothing"] == 0.1
    # the checkpoint rebuilds head, loss and dataset: testing it names none of them
    tested = tmp_path / "ft-test"
    assert run.main(["--mode=test", f"--load_checkpoint_path={out / 'checkpoints' / 'last.ckpt'}", *QUICK,
                     f"--default_root_dir={tested}"]) == 0
    assert (tested / "predictions.tsv").read_text().splitlines()[0].split("\t") == ["chrom", "start", "end", *LABELS]
    assert yaml.safe_load((tested / "hparams.yaml").read_text())["name"] == saved["name"]

    scaled = tmp_path / "scaled"
    assert run.main(["--task=extras.comp:ScaledPtMask", "--loss_scale=0", *tiny, *FAST,
                     f"--default_root_dir={scaled}"]) == 0
    state = torch.load(scaled / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    # its training loss was scaled to 0: no gradient, so the final LayerNorm (no weight decay) is as initialised
    assert torch.equal(state["encoder.ln_out.weight"], torch.ones(TINY["d_model"]))
    # a custom float set to 0 is named as the operator, seeing the 0 that was written, names it
    assert "loss_scale=0" in yaml.safe_load((scaled / "hparams.yaml").read_text())["name"].split(",")


def test_registry_for_adds_the_chosen_components_groups(on_path: Path) -> None:
    reg = registry_for({"encoder": DILATED, "lr": 1.0})
    assert [g.owner for g in reg.groups][-1] == f"encoder {DILATED}"
    assert set(reg.names()) - set(registry().names()) == {"dilated_layers", "dilated_kernel", "dilation_base"}
    assert reg.canonical_name({"encoder": DILATED, "dilation_base": 3}) == "db=3,enc=my_encoders.conv%3ADilatedConvEncoder"
    assert "dilated_layers" not in registry()  # the built-in registry (the operator's CRD) is unchanged
    with pytest.raises(HparamError, match="cannot import 'absent_pkg'"):
        registry_for({"head": "absent_pkg:Head"})


def test_the_example_config_resolves_with_its_encoder(on_path: Path) -> None:
    from seqmodel.config.resolve import resolve

    res = resolve(["--config", str(EXAMPLE / "pretrain.yaml")])
    assert res.hparams["encoder"] == DILATED and res.hparams["dilated_layers"] == 5 and res.hparams["d_model"] == 64
    assert "dilated_layers=5" in res.name.split(",")  # set by the config file: named by its full name
