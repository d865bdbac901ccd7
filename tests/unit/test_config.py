"""Config files: presets and `defaults:` merged in the documented order, errors naming file and key, cycles,
and re-running a run from its saved hparams.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TINY
from seqmodel import VERSION, run
from seqmodel.config.files import load, preset_names
from seqmodel.config.resolve import resolve
from seqmodel.errors import UserError
from seqmodel.hparam import registry

FAST = ["--max_steps=3", "--log_every_n_steps=1", "--val_check_interval=3", "--accelerator=cpu"]


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0][len("error: "):]


def test_presets_ship_with_the_package() -> None:
    assert {"model/small", "model/base", "task/ptmask", "task/finetune"} <= set(preset_names())
    for name in preset_names():  # every preset is valid on its own
        registry().parse_dict(load(name)[-1].values, where=f"{name}: ")


def test_defaults_in_order_then_own_keys_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    small = load("model/small")[-1].values
    write(tmp_path / "configs" / "wide.yaml", {"d_model": 96, "n_layers": 3, "lr": 0.5})
    write(tmp_path / "configs" / "my.yaml", {
        "defaults": ["model/small", "wide.yaml", "task/finetune"],  # wide.yaml: relative to my.yaml
        "n_layers": 5, "lr": 0.25, "seq_len": 64,
    })
    res = resolve(["--config", "configs/my.yaml", "--lr=0.125"])
    hp = res.hparams
    assert hp["d_ff"] == small["d_ff"] == 128  # only the first default sets it
    assert hp["d_model"] == 96 != small["d_model"]  # a later default wins over an earlier one
    assert hp["n_layers"] == 5  # the file's own keys win over its defaults
    assert hp["lr"] == 0.125  # flags win over everything
    assert hp["seq_len"] == 64 and hp["task"] == "finetune"
    assert hp["train_intervals"] == "genome/train.labels.bed"  # the preset's path, under data_root
    assert hp["batch_size"] == registry()["batch_size"].default  # nothing set it
    assert {"d_ff", "d_model", "n_layers", "lr", "task"} <= res.explicit and "batch_size" not in res.explicit
    # several --config: later files win, flags still last
    write(tmp_path / "configs" / "later.yaml", {"seq_len": 32, "lr": 0.0625})
    hp = resolve(["--config=configs/my.yaml", "--config", "configs/later.yaml", "--n_layers", "7"]).hparams
    assert (hp["seq_len"], hp["lr"], hp["n_layers"], hp["d_model"]) == (32, 0.0625, 7, 96)


def test_a_config_can_be_a_preset_and_values_are_typed(tmp_path: Path) -> None:
    hp = resolve(["--config", "model/base"]).hparams
    assert (hp["d_model"], hp["n_heads"]) == (256, 8)
    write(tmp_path / "t.yaml", "lr: 1e-3\nmax_steps: 1e3\nreverse_complement: 'no'\ncache_dir: null\n")
    hp = resolve(["--config", str(tmp_path / "t.yaml")]).hparams  # YAML reads 1e-3 as a string
    assert hp["lr"] == 1e-3 and hp["max_steps"] == 1000 and hp["reverse_complement"] is False


@pytest.mark.parametrize("content, message", [
    ({"lrr": 0.1}, "{f}: unknown hparam 'lrr'; did you mean 'lr'?"),
    ({"lr": "fast"}, "{f}: hparam 'lr' expects float, got 'fast'"),
    ({"task": "classify"}, "{f}: hparam 'task' must be one of: ptmask, finetune, or a class as package.module:Class; got 'classify'"),
    ("- lr\n", "{f}: a config file holds a mapping of hparams, not a list"),
    ("lr: [1\n", "{f}: not valid YAML at line 2: expected ',' or ']', but got '<stream end>'"),
    ({"defaults": [3]}, "{f}: 'defaults' must be a config file or preset name, or a list of them"),
])
def test_bad_config_files_are_one_line_errors_naming_file_and_key(
        content: Any, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "configs" / "my.yaml", content)
    assert user_error(["--config", "configs/my.yaml"], capsys) == message.format(f="configs/my.yaml")


def test_an_unknown_key_in_a_default_names_that_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "configs" / "base" / "common.yaml", {"d_model": 32, "n_layyers": 2})
    write(tmp_path / "configs" / "my.yaml", {"defaults": "base/common.yaml", "lr": 0.1})
    assert user_error(["--config", "configs/my.yaml"], capsys) == \
        "configs/base/common.yaml: unknown hparam 'n_layyers'; did you mean 'n_layers'?"


def test_missing_files_and_presets_name_who_lists_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert user_error(["--config", "configs/none.yaml"], capsys) == "config file configs/none.yaml: no such file"
    write(tmp_path / "configs" / "my.yaml", {"defaults": ["absent.yaml"]})
    assert user_error(["--config", "configs/my.yaml"], capsys) == \
        "configs/my.yaml: defaults: config file configs/absent.yaml: no such file"
    write(tmp_path / "configs" / "my.yaml", {"defaults": ["model/smal"]})
    assert user_error(["--config", "configs/my.yaml"], capsys).startswith(
        "configs/my.yaml: defaults: unknown preset 'model/smal' (presets: model/base, model/small,")
    assert user_error(["--config"], capsys) == "argument --config: expected one argument"


def test_a_cycle_in_defaults_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c" / "a.yaml", {"defaults": ["model/small", "b.yaml"], "lr": 0.1})
    write(tmp_path / "c" / "b.yaml", {"defaults": ["sub/c.yaml"]})
    write(tmp_path / "c" / "sub" / "c.yaml", {"defaults": ["../a.yaml"]})
    assert user_error(["--config", "c/a.yaml"], capsys) == \
        "cycle in defaults: c/a.yaml -> c/b.yaml -> c/sub/c.yaml -> c/a.yaml"
    write(tmp_path / "self.yaml", {"defaults": "self.yaml"})
    with pytest.raises(UserError, match=r"^cycle in defaults: self.yaml -> self.yaml$"):
        resolve(["--config", "self.yaml"])
    # the same file twice, but not inside itself, is no cycle
    write(tmp_path / "d" / "x.yaml", {"seq_len": 7})
    write(tmp_path / "d" / "y.yaml", {"defaults": ["x.yaml"], "seq_len": 8})
    write(tmp_path / "d" / "top.yaml", {"defaults": ["x.yaml", "y.yaml", "x.yaml"]})
    assert resolve(["--config", "d/top.yaml"]).hparams["seq_len"] == 7


def test_saved_hparams_rerun_to_the_same_canonical_name(tmp_path: Path, fake_data: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The resolved config is what hparams.yaml holds: running it again gives the same name and hparams."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "configs" / "my.yaml", {"defaults": ["model/small"], **TINY, "lr": 3e-3})
    first, second = tmp_path / "out" / "first", tmp_path / "out" / "second"
    assert run.main(["--config", "configs/my.yaml", "--n_layers=1", "--mask_prop=0.2", *FAST,
                     f"--default_root_dir={first}"]) == 0
    saved = yaml.safe_load((first / "hparams.yaml").read_text())
    assert saved["version"] == VERSION and saved["hparams"]["n_layers"] == 1 and saved["hparams"]["lr"] == 3e-3
    assert "mask=0.2" in saved["name"] and "lr=0.003" in saved["name"]
    assert run.main(["--config", str(first / "hparams.yaml"), f"--default_root_dir={second}"]) == 0
    again = yaml.safe_load((second / "hparams.yaml").read_text())
    assert again["name"] == saved["name"]
    assert {**again["hparams"], "default_root_dir": None} == {**saved["hparams"], "default_root_dir": None}
    assert json.loads((second / "metrics.json").read_text())["global_step"] == 3
    # and flags still win over the saved config, which changes the name
    res = resolve(["--config", str(first / "hparams.yaml"), "--mask_prop=0.3"])
    assert res.registry.canonical_name(res.hparams) == saved["name"].replace("mask=0.2", "mask=0.3")


def test_saved_configs_of_older_versions_are_migrated(tmp_path: Path) -> None:
    """A 1.2 run read dataset paths from the working directory: its hparams.yaml re-runs with data_root '.'."""
    old = write(tmp_path / "hparams.yaml", {"version": "1.2.0", "name": "nl=2", "hparams": {
        "seq_file": "data/genome/genome.fa.gz", "n_layers": 2}})
    hp = resolve(["--config", str(old)]).hparams
    assert hp["data_root"] == "." and hp["seq_file"] == "data/genome/genome.fa.gz" and hp["n_layers"] == 2
    write(old, {"version": "1.0.0", "name": "x", "hparams": {"pos_encoding": "learned"}})
    hp = resolve(["--config", str(old)]).hparams
    assert hp["positional_encoding"] == "learned" and hp["conv_kernel"] == 0


def test_a_saved_config_of_1_4_keeps_its_defaults_and_says_so_in_its_name(tmp_path: Path) -> None:
    """1.5 changed pretraining defaults: a 1.4 run re-runs with 1.4's, and its name (relative to today's
    defaults) names them, so it is not taken for a run of today's defaults."""
    old = write(tmp_path / "hparams.yaml", {"version": "1.4.0", "name": "nl=2", "named": ["n_layers"],
                                            "hparams": {"n_layers": 2, "positional_encoding": "rope"}})
    res = resolve(["--config", str(old)])
    assert (res.hparams["dropout"], res.hparams["lr"], res.hparams["batch_size"]) == (0.1, 1e-3, 32)
    assert (res.hparams["mask_prop"], res.hparams["positional_encoding"]) == (0.12, "rope")
    assert res.name == "bs=32,do=0.1,keep=0.015,lr=0.001,mask=0.12,nl=2,rand=0.015"
    assert resolve([]).hparams["dropout"] == 0.0 and resolve([]).name == "default"
    major, minor, _ = VERSION.split(".")
    write(old, {"version": f"{major}.{int(minor) + 1}.0", "name": "x", "hparams": {}})
    with pytest.raises(UserError, match=rf"^{old}: config is from newer seqmodel {major}\.{int(minor) + 1}\.0; upgrade"):
        resolve(["--config", str(old)])
    write(old, {"version": VERSION, "name": "x", "hparams": {}, "notes": "hi"})
    with pytest.raises(UserError, match=r"unknown key 'notes' in a saved run config"):
        resolve(["--config", str(old)])


def test_help_lists_the_config_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--config FILE hparams from a YAML file or a preset" in text
