"""Atomic file writes: readers see the old file or the complete new one, never a partial one."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_open(path: Path, mode: str = "w") -> Iterator[IO]:
    """Write to a unique temporary file beside `path`, fsync it, then rename it over `path`.

    The rename is atomic on POSIX filesystems, and syncing the directory makes the rename itself
    durable, so a crash or preemption never leaves a truncated checkpoint, cache or metrics file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.chmod(fd, 0o644)  # mkstemp makes 0600; outputs and caches are often shared
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        replace_durably(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename a complete, synced `tmp` over `path`, and sync the directory so that the rename itself
    survives a crash."""
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
