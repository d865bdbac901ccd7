"""The pod's steps on real files: claiming the version directory, staging data, resuming a retried run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import pytest

from seqmodel import contract, run
from seqmodel.errors import UserError
from seqmodel import pod
from seqmodel.contract import TERMINATION_LOG_ENV
from seqmodel.outputs.run_dir import prepare_output_dir
from seqmodel.outputs.versions import OWNER_FILE

ROOT = Path(__file__).resolve().parents[2]
SOURCE = 'claim "genomes" subPath "hg38"'


@pytest.fixture
def volumes(tmp_path: Path) -> dict[str, Path]:
    """A data volume holding two data types, an empty scratch volume, and a not yet created output dir."""
    data = tmp_path / "data-volume"
    (data / "data" / "genome" / "chr").mkdir(parents=True)
    (data / "data" / "genome" / "chr" / "chr1.fa").write_text(">chr1\nACGT\n")
    (data / "data" / "labels").mkdir()
    (data / "data" / "labels" / "peaks.bed").write_text("chr1\t0\t4\n")
    return {"data": data, "scratch": tmp_path / "scratch", "output": tmp_path / "runs" / "m" / "version_0"}


def stage(volumes: dict[str, Path], owner: str = "run-a", *extra: str) -> int:
    return pod.main(["stage", f"--data={volumes['data']}", f"--scratch={volumes['scratch']}",
                     f"--output={volumes['output']}", f"--owner={owner}", *extra])


def test_stage_claims_the_output_dir_and_copies_the_given_types(volumes: dict[str, Path],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert stage(volumes, "run-a", "--type=genome") == 0
    assert (volumes["output"] / OWNER_FILE).read_text().strip() == "run-a"
    assert (volumes["scratch"] / "data" / "genome" / "chr" / "chr1.fa").read_text() == ">chr1\nACGT\n"
    assert not (volumes["scratch"] / "data" / "labels").exists()
    assert "staged data/genome: 11 bytes" in capsys.readouterr().out


def test_stage_copies_every_type_when_none_is_given(volumes: dict[str, Path]) -> None:
    assert stage(volumes) == 0
    assert sorted(p.name for p in (volumes["scratch"] / "data").iterdir()) == ["genome", "labels"]
    assert (volumes["scratch"] / "data" / "labels" / "peaks.bed").read_text() == "chr1\t0\t4\n"


def test_without_a_data_volume_stage_only_claims_the_output_dir(volumes: dict[str, Path]) -> None:
    """A job without spec.data (data in the image, or absolute paths) still gets its version claimed."""
    assert pod.main(["stage", f"--scratch={volumes['scratch']}", f"--output={volumes['output']}",
                     "--owner=run-a"]) == 0
    assert (volumes["output"] / OWNER_FILE).read_text().strip() == "run-a"
    assert not (volumes["scratch"] / "data").exists()


def test_a_retry_of_the_same_run_stages_again(volumes: dict[str, Path]) -> None:
    assert stage(volumes, "run-a") == 0
    (volumes["output"] / "hparams.yaml").write_text("written by the first attempt\n")
    assert stage(volumes, "run-a") == 0
    assert (volumes["output"] / OWNER_FILE).read_text().strip() == "run-a"


def test_a_version_owned_by_another_run_is_taken(volumes: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert stage(volumes, "run-a") == 0
    capsys.readouterr()
    assert stage(volumes, "run-b") == contract.EXIT_VERSION_TAKEN == 3
    err = capsys.readouterr().err
    assert err == f"error: output dir {volumes['output']} already holds another run's files (owner run-a); " \
                  f"this version is taken\n"
    assert (volumes["output"] / OWNER_FILE).read_text().strip() == "run-a"


def test_files_without_an_owner_marker_make_the_version_taken(volumes: dict[str, Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    volumes["output"].mkdir(parents=True)
    (volumes["output"] / "hparams.yaml").write_text("someone else's\n")
    assert stage(volumes, "run-a") == 3
    assert "(no owner marker); this version is taken" in capsys.readouterr().err
    assert not (volumes["output"] / OWNER_FILE).exists()
    assert not (volumes["scratch"] / "data").exists()  # nothing staged for a run that cannot write


def test_a_missing_data_type_names_its_path_in_the_volume(volumes: dict[str, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert stage(volumes, "run-a", "--type=genome", "--type=reads", f"--source={SOURCE}") == contract.EXIT_USER_ERROR == 2
    assert capsys.readouterr().err == f"error: data path data/reads not found in {SOURCE}\n"


def test_without_a_source_the_error_names_the_full_path(volumes: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert stage(volumes, "run-a", "--type=reads") == 2
    assert capsys.readouterr().err == f"error: data path {volumes['data'] / 'data' / 'reads'} not found\n"


def test_stage_fails_in_a_subprocess_with_a_termination_summary(volumes: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    empty = tmp_path / "empty-volume"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "seqmodel.pod", "stage", "--data", str(empty), "--scratch", str(volumes["scratch"]),
         "--output", str(volumes["output"]), "--owner", "run-a", "--source", SOURCE],
        cwd=ROOT, env={**os.environ, TERMINATION_LOG_ENV: str(log)}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"error: data path data not found in {SOURCE}\n"
    summary = json.loads(log.read_text())
    assert summary == {"status": "failed", "step": "stage", "error": f"data path data not found in {SOURCE}",
                       "version": summary["version"], "metrics": {}, "outputs": {}}
    assert summary["version"] == pod.VERSION


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The arguments seqmodel.run.main is called with, instead of training."""
    calls: list[list[str]] = []

    def fake_main(argv: Sequence[str]) -> int:
        calls.append(list(argv))
        return 0

    monkeypatch.setattr(run, "main", fake_main)
    return calls


def test_run_resumes_from_its_own_checkpoints(tmp_path: Path, captured: list[list[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "version_0"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "best.ckpt").write_bytes(b"")
    (out / "checkpoints" / "last.ckpt").write_bytes(b"")
    os.utime(out / "checkpoints" / "best.ckpt", (1, 1))
    args = [f"--default_root_dir={out}", "--load_encoder_from_checkpoint=/ckpt/encoder.ckpt", "--max_steps=10",
            "--load_checkpoint_path=/ckpt/model.ckpt", "--resume_from_checkpoint=/ckpt/other.ckpt"]
    assert pod.main(["run", *args]) == 0
    assert captured == [[f"--default_root_dir={out}", "--max_steps=10", "--resume_from_checkpoint=last"]]
    assert capsys.readouterr().err == f"resuming from {out / 'checkpoints' / 'last.ckpt'}\n"


def test_run_sets_aside_an_attempt_that_died_before_its_first_checkpoint(tmp_path: Path,
                                                                        captured: list[list[str]]) -> None:
    out = tmp_path / "version_0"
    out.mkdir()
    (out / OWNER_FILE).write_text("run-a\n")
    args = [f"--default_root_dir={out}", "--load_encoder_from_checkpoint=/ckpt/encoder.ckpt"]
    for attempt in ("first", "second"):
        (out / "hparams.yaml").write_text(f"{attempt}\n")
        (out / "csv").mkdir()
        assert pod.main(["run", *args]) == 0
    assert captured == [args, args]
    assert (out / ".attempts" / "0" / "hparams.yaml").read_text() == "first\n"
    assert (out / ".attempts" / "1" / "hparams.yaml").read_text() == "second\n"
    assert (out / ".attempts" / "1" / "csv").is_dir()
    assert sorted(p.name for p in out.iterdir()) == [".attempts", OWNER_FILE]
    prepare_output_dir(out, resuming=False)  # what the run then does: the directory counts as empty


def test_other_ranks_leave_the_directory_to_rank_zero(tmp_path: Path, captured: list[list[str]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning reruns the command for rank 1 after rank 0 wrote hparams.yaml: that is not an old attempt."""
    monkeypatch.setenv("LOCAL_RANK", "1")
    out = tmp_path / "version_0"
    out.mkdir()
    (out / "hparams.yaml").write_text("this attempt\n")
    assert pod.main(["run", f"--default_root_dir={out}"]) == 0
    assert captured == [[f"--default_root_dir={out}"]]
    assert sorted(p.name for p in out.iterdir()) == ["hparams.yaml"]


def test_run_starts_a_fresh_directory_as_given(tmp_path: Path, captured: list[list[str]]) -> None:
    out = tmp_path / "version_0"
    args = [f"--default_root_dir={out}", "--load_checkpoint_path=/ckpt/model.ckpt", "--mode=test"]
    assert pod.main(["run", *args]) == 0
    assert captured == [args]
    assert not out.exists()


def test_run_needs_the_output_dir(captured: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    assert pod.main(["run", "--max_steps=10"]) == 2
    assert captured == []
    assert "run needs --default_root_dir=DIR" in capsys.readouterr().err


def test_run_returns_what_seqmodel_run_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "main", lambda argv: 2)
    assert pod.main(["run", f"--default_root_dir={tmp_path / 'out'}"]) == 2


def test_prepare_output_dir_ignores_dot_entries_but_not_files(tmp_path: Path) -> None:
    out = tmp_path / "version_0"
    (out / ".attempts" / "0").mkdir(parents=True)
    (out / OWNER_FILE).write_text("run-a\n")
    prepare_output_dir(out, resuming=False)
    (out / "hparams.yaml").write_text("x\n")
    with pytest.raises(UserError, match="is not empty"):
        prepare_output_dir(out, resuming=False)
