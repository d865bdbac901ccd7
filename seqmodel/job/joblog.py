"""The record of submitted jobs: JSON lines, one per replicate, the same keys for every backend, so a
notebook can find any run it ever started (and which backend ran it) without a cluster."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, Sequence

KEYS = ("time", "name", "backend", "namespace", "replicate", "canonical", "version", "output")


def row(*, name: str, backend: str, namespace: Optional[str], replicate: int, canonical: str, version: int,
        output: Path) -> dict[str, Any]:
    return {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "name": name, "backend": backend,
            "namespace": namespace, "replicate": replicate, "canonical": canonical, "version": version,
            "output": str(output)}


def append(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows with one write to a file opened for appending, so rows of jobs submitted at the same
    time from several processes do not interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def outputs_of(path: Path, name: str, backend: str) -> dict[int, Path]:
    """Each replicate's output directory of job `name` run by `backend`, from its latest rows."""
    return {int(r["replicate"]): Path(r["output"]) for r in read(path) if r["name"] == name and r["backend"] == backend}


def read(path: Path) -> list[dict[str, Any]]:
    """Every row, oldest first; [] when nothing was submitted yet."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
