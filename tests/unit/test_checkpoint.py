"""Checkpoint files: atomic writes, version stamps, migration of older minors, refusal of other majors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from seqmodel import VERSION
from seqmodel.outputs import checkpoint
from seqmodel.outputs.checkpoint import AtomicCheckpointIO, CheckpointError


def saved(path: Path, version: str = VERSION, **extra: object) -> Path:
    mark = {"version": version, "label_names": None}
    AtomicCheckpointIO().save_checkpoint({checkpoint.STAMP_KEY: mark, "state_dict": {}, **extra}, path)
    return path


def test_save_leaves_only_the_complete_file(tmp_path: Path) -> None:
    path = saved(tmp_path / "ck" / "last.ckpt", state_dict={"w": torch.ones(3)})
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    assert torch.equal(checkpoint.read(path)["state_dict"]["w"], torch.ones(3))


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved(tmp_path / "last.ckpt", marker="old")

    def crash(obj: object, handle: object) -> None:
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint({"marker": "new"}, path)
    monkeypatch.undo()
    assert checkpoint.read(path)["marker"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_stamp_marks_the_current_version_and_labels() -> None:
    ckpt: dict = {}
    checkpoint.stamp(ckpt, ["a", "b"])
    assert checkpoint.stamped_version(ckpt) == VERSION
    assert checkpoint.label_names_of(ckpt) == ["a", "b"]


def test_other_major_is_refused_in_one_line(tmp_path: Path) -> None:
    major = int(VERSION.split(".")[0])
    path = saved(tmp_path / "old.ckpt", version=f"{major + 1}.0.0")
    with pytest.raises(CheckpointError) as err:
        checkpoint.read(path)
    message = str(err.value)
    assert "\n" not in message
    assert f"seqmodel {major + 1}.0.0" in message and f"use seqmodel {major + 1}.x" in message


def test_newer_minor_asks_for_an_upgrade(tmp_path: Path) -> None:
    major, minor, _ = VERSION.split(".")
    path = saved(tmp_path / "new.ckpt", version=f"{major}.{int(minor) + 1}.0")
    with pytest.raises(CheckpointError, match="upgrade seqmodel"):
        checkpoint.read(path)


def test_build_number_does_not_matter(tmp_path: Path) -> None:
    major, minor, build = VERSION.split(".")
    assert checkpoint.read(saved(tmp_path / "b.ckpt", version=f"{major}.{minor}.{int(build) + 7}"))


@pytest.mark.parametrize(
    "content, message",
    [(None, "checkpoint not found"), (b"not a checkpoint", "not a readable checkpoint"),
     ({"state_dict": {}}, "not a seqmodel checkpoint")],
)
def test_unusable_files_are_user_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "x.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.read(path)


def test_resume_last_is_the_newest_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        checkpoint.resolve_resume("last", tmp_path)
    older = saved(tmp_path / "checkpoints" / "best.ckpt")
    newer = saved(tmp_path / "checkpoints" / "last.ckpt")
    os.utime(older, (1, 1))
    assert checkpoint.resolve_resume("last", tmp_path) == newer
    assert checkpoint.resolve_resume(str(older), tmp_path) == older


def test_encoder_state_strips_the_prefix() -> None:
    ckpt = {"state_dict": {"encoder.embed.weight": torch.ones(1), "head.out.weight": torch.zeros(1)}}
    assert list(checkpoint.encoder_state(ckpt)) == ["embed.weight"]
