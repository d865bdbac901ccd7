"""The workspace: data_root resolution (relative, absolute, $SEQMODEL_DATA_ROOT, symlinks), src/ on the
path, and `python -m seqmodel.init` creating the layout without ever overwriting."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqmodel.config.resolve import resolve
from seqmodel.dataset.datamodule import SeqDataModule
from seqmodel.dataset.seq import DataError
from seqmodel.hparam import registry
from seqmodel.workspace.paths import DATA_ROOT_ENV, add_src_to_path, data_path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "genome"
LABELS = "#chrom\tstart\tend\tx\ty\nc1\t0\t10\t1\t0\nc1\t10\t20\t0\t1\n"


@pytest.fixture(autouse=True)
def genome_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQMODEL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "genome-cache"))


@pytest.fixture
def genome_dir(tmp_path: Path) -> Path:
    """A tiny genome and labelled intervals in <tmp>/store/genome/."""
    store = tmp_path / "store" / "genome"
    store.mkdir(parents=True)
    (store / "genome.fa").write_text(">c1\n" + "ACGT" * 10 + "\n")
    for split in ("train", "valid", "test"):
        (store / f"{split}.labels.bed").write_text(LABELS)
    return store


def labelled(hparams: dict) -> SeqDataModule:
    hp = {"task": "finetune", "seq_file": "genome/genome.fa", "train_intervals": "genome/train.labels.bed",
          "valid_intervals": "genome/valid.labels.bed", "test_intervals": "genome/test.labels.bed",
          "seq_len": 8, "batch_size": 2, **hparams}
    dm = SeqDataModule(registry().parse_dict(hp))
    dm.setup("fit")  # reads the FASTA and both interval files
    return dm


def test_dataset_paths_resolve_against_data_root(genome_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(DataError, match=r"^train_intervals: data/genome/train.labels.bed: no such file \(relative dataset paths "
                                        r"resolve against data_root 'data': .*/work/data\)$"):
        labelled({})
    (work / "data").symlink_to(genome_dir.parent, target_is_directory=True)  # a symlinked data root
    assert labelled({}).label_names == ["x", "y"]  # the default data_root, relative to the working directory
    assert len(labelled({}).datasets["train"]) == 2
    assert labelled({"data_root": str(genome_dir.parent)}).label_names == ["x", "y"]  # absolute data_root
    (work / "elsewhere").mkdir()
    monkeypatch.chdir(work / "elsewhere")
    assert labelled({"data_root": "../data"}).label_names == ["x", "y"]  # relative to the working directory
    # absolute dataset paths ignore the data root
    absolute = {"data_root": "/nonexistent", "seq_file": str(genome_dir / "genome.fa"),
                **{f"{s}_intervals": str(genome_dir / f"{s}.labels.bed") for s in ("train", "valid", "test")}}
    assert labelled(absolute).label_names == ["x", "y"]


def test_a_cwd_relative_path_gets_a_hint(genome_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(genome_dir.parent.parent)  # <tmp>: holds store/genome/
    with pytest.raises(DataError, match=r"^train_intervals: store/store/genome/train.labels.bed: no such file .*"
                                        r"; did you mean 'genome/train.labels.bed'\?$"):
        SeqDataModule(registry().parse_dict({"task": "finetune", "data_root": "store",
                                             "train_intervals": "store/genome/train.labels.bed"})).label_names


def test_data_path_rules(tmp_path: Path) -> None:
    assert data_path("data", "genome/a.fa") == Path("data/genome/a.fa")
    assert data_path("/srv/data", "genome/a.fa") == Path("/srv/data/genome/a.fa")
    assert data_path("data", "/abs/a.fa") == Path("/abs/a.fa")
    assert data_path("data", "~/a.fa") == Path.home() / "a.fa"


def test_env_var_overrides_the_default_but_not_configs_or_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert resolve([]).hparams["data_root"] == "data" == registry()["data_root"].default
    monkeypatch.setenv(DATA_ROOT_ENV, "/srv/genomes")
    assert resolve([]).hparams["data_root"] == "/srv/genomes"
    assert resolve(["--data_root=mine"]).hparams["data_root"] == "mine"
    (tmp_path / "c.yaml").write_text("data_root: from-config\n")
    assert resolve(["--config", str(tmp_path / "c.yaml")]).hparams["data_root"] == "from-config"
    assert registry()["data_root"].default == "data"  # the registry (and the operator's CRD) is unchanged


def test_src_goes_first_on_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert add_src_to_path(tmp_path) is None
    (tmp_path / "src").mkdir()
    assert add_src_to_path(tmp_path) == tmp_path / "src" and sys.path[0] == str((tmp_path / "src").resolve())
    add_src_to_path(tmp_path)
    assert sys.path.count(str((tmp_path / "src").resolve())) == 1


def init(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "seqmodel.init", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def snapshot(root: Path) -> dict[str, bytes | str]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else "dir")
            for p in sorted(root.rglob("*")) if "__pycache__" not in p.parts}


def _content(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def test_init_creates_the_layout_with_the_sample_data_and_never_overwrites(tmp_path: Path) -> None:
    made = init("ws", "--sample-data", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    ws = tmp_path / "ws"
    assert all((ws / d).is_dir() for d in ("data", "configs", "src", "out"))
    assert sorted(p.name for p in (ws / "data" / "genome").iterdir()) == sorted(p.name for p in SAMPLE.iterdir())
    for path in SAMPLE.iterdir():  # the package's sample genome: the same as the repository's
        assert _content(ws / "data" / "genome" / path.name) == _content(path), path.name
    config = yaml.safe_load((ws / "configs" / "example.yaml").read_text())
    assert config["defaults"] == ["model/small", "task/ptmask"] and config["encoder"].startswith("my_components.")
    assert (ws / "src" / "my_components" / "encoders.py").is_file()
    assert "python -m seqmodel.run --config configs/example.yaml" in made.stdout and "cd ws" in made.stdout

    before = snapshot(ws)
    (ws / "configs" / "example.yaml").write_text("lr: 0.5\n")  # the user's edit
    again = init("ws", cwd=tmp_path)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and again.stderr.startswith("error: ws/")
    assert "seqmodel.init never overwrites files, nothing was written" in again.stderr
    assert snapshot(ws) == {**before, "configs/example.yaml": b"lr: 0.5\n"}
    # one existing file is enough to refuse, and nothing else is written
    fresh = tmp_path / "fresh"
    (fresh / "src" / "my_components").mkdir(parents=True)
    (fresh / "src" / "my_components" / "encoders.py").write_text("# mine\n")
    refused = init("fresh", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == "error: fresh/src/my_components/encoders.py exists; seqmodel.init never overwrites " \
                             "files, nothing was written\n"
    assert snapshot(fresh) == {"src": "dir", "src/my_components": "dir", "src/my_components/encoders.py": b"# mine\n"}


def test_a_workspace_with_linked_data_trains_its_example_config(tmp_path: Path) -> None:
    """src/ is importable, presets resolve, and dataset paths resolve against the symlinked data/."""
    assert init("ws", f"--data={ROOT / 'data'}", cwd=tmp_path).returncode == 0
    ws = tmp_path / "ws"
    assert (ws / "data").is_symlink() and os.readlink(ws / "data") == str(ROOT / "data")
    assert init("ws", "--data", str(ROOT / "data"), cwd=tmp_path).returncode == 2  # data/ exists now
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", DATA_ROOT_ENV)}
    env["SEQMODEL_CACHE_DIR"] = str(tmp_path / "cache")
    trained = subprocess.run(
        [sys.executable, "-m", "seqmodel.run", "--config", "configs/example.yaml", "--max_steps=2", "--seq_len=64",
         "--batch_size=8", "--val_check_interval=2", "--limit_val_batches=2", "--accelerator=cpu", "--conv_layers=1"],
        cwd=ws, capture_output=True, text=True, timeout=300, env=env)
    assert trained.returncode == 0, trained.stderr[-2000:]
    saved = yaml.safe_load((ws / "out" / "example" / "hparams.yaml").read_text())
    assert "conv_layers=1" in saved["name"].split(",") and saved["hparams"]["data_root"] == "data"
    assert saved["hparams"]["train_intervals"] == "genome/train.bed"
