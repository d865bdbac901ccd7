"""Checkpoints: atomic writes, a version stamp, and loading across versions.

Every checkpoint carries `seqmodel: {version, label_names, named}` (VERSION is major.minor.build; `named`
lists the hparams that name the run, seqmodel.contract) and the run's full hparams (Lightning's
`hyper_parameters`). Loading reads the stamp first:
- same major, same or older minor: loaded, after the migrations from its minor up to ours ran in order
  (each one renames hparams or moves keys exactly as that minor release changed them);
- another major, or a newer minor than this code: refused with one line naming both versions.
The build number never matters for loading (`seqmodel.outputs.migrations`, which saved run configs share). Hence
the rule for releases: a change to hparams or to what checkpoints hold bumps the minor and adds a
migration below (hparam changes in `seqmodel.outputs.migrations`); a change that cannot be migrated bumps the
major.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from seqmodel import VERSION
from seqmodel.outputs import migrations
from seqmodel.outputs.atomic import atomic_open
from seqmodel.errors import UserError
from seqmodel.outputs.run_dir import newest_checkpoint

STAMP_KEY = "seqmodel"


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable, or from a version this code cannot load."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic writes (temp + fsync + rename) and version-checked reads,
    so resuming (`--resume_from_checkpoint`) goes through the same migrations as weight loading."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        with atomic_open(Path(path), "wb") as handle:
            torch.save(checkpoint, handle)

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = None, weights_only: Optional[bool] = None) -> dict[str, Any]:
        return read(Path(path), map_location=map_location)


def stamp(ckpt: dict[str, Any], label_names: Optional[list[str]] = None, named: Sequence[str] = ()) -> None:
    """Mark a checkpoint with the code version that wrote it, for fine-tuning the label order its head
    predicts (so loading it against other labels fails instead of mislabelling columns), and the hparams
    that name its run (so a run that loads the whole model is named like it on every backend)."""
    ckpt[STAMP_KEY] = {"version": VERSION, "label_names": label_names, "named": sorted(named)}


def named_of(ckpt: dict[str, Any]) -> Optional[list[str]]:
    """The hparams that named the checkpoint's run; None when it is from before 1.4, which did not say."""
    return ckpt[STAMP_KEY]["named"]


def label_names_of(ckpt: dict[str, Any]) -> Optional[list[str]]:
    """The labels a fine-tuned head predicts; None when unknown (ptmask, or migrated from 1.0)."""
    return ckpt[STAMP_KEY]["label_names"]


def _hparams(ckpt: dict[str, Any]) -> dict[str, Any]:
    return ckpt.setdefault("hyper_parameters", {})


def _from_1_0(ckpt: dict[str, Any]) -> None:
    """1.0 -> 1.1: the stamp moved from `seqmodel_version` into `seqmodel` (beside the label names, which
    1.0 did not record); the hparams changed as `seqmodel.outputs.migrations` says."""
    ckpt[STAMP_KEY] = {"version": ckpt.pop("seqmodel_version"), "label_names": None}
    migrations.HPARAM_MIGRATIONS[0](_hparams(ckpt))


def _from_1_1(ckpt: dict[str, Any]) -> None:
    """1.1 -> 1.2: nothing moves. 1.2 checkpoints also hold the training loader's place in its epoch, which
    1.1 code cannot load; a 1.1 checkpoint has none, so resuming it starts its epoch over, as 1.1 did."""
    migrations.HPARAM_MIGRATIONS[1](_hparams(ckpt))


def _from_1_2(ckpt: dict[str, Any]) -> None:
    """1.2 -> 1.3: hparams gain `data_root` (`.`: 1.2 read dataset paths from the working directory) and the
    component slots, whose defaults are the built-ins 1.2 had. 1.3 checkpoints may name custom components,
    which 1.2 code would silently replace by the built-ins: it refuses them as a newer minor."""
    migrations.HPARAM_MIGRATIONS[2](_hparams(ckpt))


def _from_1_3(ckpt: dict[str, Any]) -> None:
    """1.3 -> 1.4: the stamp lists the hparams that named the run; 1.3 did not record them (None: named
    by its changed built-in hparams, seqmodel.contract.saved_named)."""
    ckpt[STAMP_KEY]["named"] = None
    migrations.HPARAM_MIGRATIONS[3](_hparams(ckpt))


def _from_1_4(ckpt: dict[str, Any]) -> None:
    """1.4 -> 1.5: pretraining defaults changed; the hparams keep 1.4's and the run's name says so."""
    migrations.HPARAM_MIGRATIONS[4](_hparams(ckpt))
    named = ckpt[STAMP_KEY]["named"]
    ckpt[STAMP_KEY]["named"] = None if named is None else migrations.NAMED_MIGRATIONS[4](named)


# Migration from minor m to m + 1, keyed by m, for the current major.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {
    0: _from_1_0, 1: _from_1_1, 2: _from_1_2, 3: _from_1_3, 4: _from_1_4,
}


def stamped_version(ckpt: Any) -> Optional[str]:
    """The version a checkpoint was written by, wherever that version kept it (1.0: `seqmodel_version`)."""
    if not isinstance(ckpt, dict):
        return None
    mark = ckpt.get(STAMP_KEY)
    version = mark.get("version") if isinstance(mark, dict) else ckpt.get("seqmodel_version")
    return version if isinstance(version, str) else None


def migrate(ckpt: dict[str, Any], source: str) -> dict[str, Any]:
    """Bring a checkpoint of an older minor version up to this one, in place; refuse other majors."""
    version = stamped_version(ckpt)
    if version is None:
        raise CheckpointError(f"{source}: not a seqmodel checkpoint (no version stamp)")
    minor = migrations.check(version, source, "checkpoint", CheckpointError)
    for step in range(minor, migrations.major_minor(VERSION)[1]):
        MIGRATIONS[step](ckpt)
    ckpt[STAMP_KEY]["version"] = VERSION
    return ckpt


def read(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load, version-check and migrate a checkpoint file."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    return migrate(ckpt, str(path))


def hparams_of(ckpt: dict[str, Any]) -> dict[str, Any]:
    return dict(ckpt.get("hyper_parameters") or {})


def encoder_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The encoder's weights out of a task checkpoint (keys without the `encoder.` prefix)."""
    prefix = "encoder."
    return {key[len(prefix):]: value for key, value in ckpt["state_dict"].items() if key.startswith(prefix)}


def resolve_resume(value: str, out_dir: Path) -> Path:
    """`last` means the newest checkpoint in the run's output directory; anything else is a path."""
    if value != "last":
        return Path(value)
    found = newest_checkpoint(out_dir)
    if found is None:
        raise CheckpointError(f"--resume_from_checkpoint=last: no checkpoint in {out_dir / 'checkpoints'}")
    return found
