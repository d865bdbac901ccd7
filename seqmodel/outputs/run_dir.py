"""What a run leaves behind: its output directory, hparams.yaml, metrics.json and the exit summary."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from seqmodel import VERSION
from seqmodel.contract import TERMINATION_LOG_ENV
from seqmodel.outputs.atomic import atomic_open
from seqmodel.errors import UserError

# Kubernetes keeps at most 4096 bytes of a termination message; stay under it with room to spare.
SUMMARY_MAX_BYTES = 4000
ERROR_MAX_CHARS = 500


def launcher_rank(name: str) -> int:
    """A rank its launcher put in the environment (0 when unset), known before any trainer exists:
    Lightning starts a node's ranks > 0 by rerunning the command with LOCAL_RANK and NODE_RANK set,
    torchrun sets RANK and LOCAL_RANK."""
    return int(os.environ.get(name) or 0)


def is_global_zero() -> bool:
    """Whether this process owns the run's directory: it checks and prepares it, then writes
    hparams.yaml and metrics.json; the other ranks start after it and only add their own files."""
    if "RANK" in os.environ:
        return launcher_rank("RANK") == 0
    return launcher_rank("NODE_RANK") == 0 and launcher_rank("LOCAL_RANK") == 0


def visible_entries(out: Path) -> list[Path]:
    """What a directory holds besides dot entries (the owner marker, set-aside attempts, temp files)."""
    return sorted(p for p in out.iterdir() if not p.name.startswith("."))


def prepare_output_dir(out: Path, resuming: bool) -> None:
    """Create the run's directory; refuse one that already holds files unless the run resumes there.

    Dot entries do not count: a Kubernetes run's directory holds its owner marker (outputs.versions) and the
    earlier attempts set aside in `.attempts` before the run starts there.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"output dir {out} is a file; pick another --default_root_dir")
    if out.is_dir() and visible_entries(out) and not resuming:
        raise UserError(
            f"output dir {out} is not empty; resume it with --resume_from_checkpoint=last "
            f"or pick another --default_root_dir"
        )
    out.mkdir(parents=True, exist_ok=True)


def newest_checkpoint(out: Path) -> Path | None:
    """The checkpoint a run in `out` resumes from: the newest in `out/checkpoints` by modification time."""
    return max((out / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime, default=None)


def write_hparams(out: Path, hparams: Mapping[str, Any], name: str, named: Iterable[str]) -> Path:
    """hparams.yaml: the full config, the code version, the canonical name and the hparams that make it:
    enough to rerun under the same name."""
    path = out / "hparams.yaml"
    with atomic_open(path) as handle:
        yaml.safe_dump({"version": VERSION, "name": name, "named": sorted(named), "hparams": dict(hparams)},
                       handle, sort_keys=False)
    return path


def write_json(path: Path, data: Mapping[str, Any]) -> Path:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return path


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Logged metrics (tensors or numbers) as plain floats; NaN becomes None so the JSON stays valid."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        number = float(value.item() if hasattr(value, "item") else value)
        out[key] = None if math.isnan(number) else number
    return out


def compact_summary(summary: Mapping[str, Any], max_bytes: int = SUMMARY_MAX_BYTES) -> str:
    """The summary as JSON under `max_bytes`: a long error is cut, then the longest metric names
    (per-label ones) go first, then the output paths; `truncated` says that something was left out."""
    data = dict(summary)
    if len(data.get("error", "")) > ERROR_MAX_CHARS:
        data.update(error=data["error"][:ERROR_MAX_CHARS] + "...", truncated=True)
    metrics = dict(sorted(data.get("metrics", {}).items(), key=lambda kv: (len(kv[0]), kv[0])))
    data["metrics"] = metrics
    text = json.dumps(data, sort_keys=True)
    while len(text.encode()) > max_bytes:
        data["truncated"] = True
        if metrics:
            metrics.pop(next(reversed(metrics)))
        elif data.get("outputs"):
            data["outputs"] = {}
        else:
            data = {"status": data.get("status"), "truncated": True}
        text = json.dumps(data, sort_keys=True)
    return text


def write_termination_log(summary: Mapping[str, Any]) -> None:
    """Write the exit summary where $SEQMODEL_TERMINATION_LOG says (the pod's termination message).

    Written in place, not atomically: /dev/termination-log is a mounted file that cannot be renamed over.
    A pod's other ranks share its environment: they write only to report their own failure.
    """
    target = os.environ.get(TERMINATION_LOG_ENV)
    if target and (launcher_rank("LOCAL_RANK") == 0 or summary.get("status") == "failed"):
        Path(target).write_text(compact_summary(summary))
