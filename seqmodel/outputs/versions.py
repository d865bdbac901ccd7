"""The output layout `<root>/<canonical name>/version_<n>`: race-free version allocation, and the owner
marker that keeps a version directory to the one run (and its retries) that claimed it.

A version is taken by creating its directory with `mkdir`, which is atomic on POSIX file systems: of
two runs racing for `version_3`, exactly one succeeds and the other moves on to `version_4`. Versions
are never reused, so outputs are never overwritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from seqmodel.errors import UserError
from seqmodel.outputs.run_dir import visible_entries

_VERSION_DIR = re.compile(r"^version_(\d+)$")
# Names the run that claimed a version directory, so a retry of that run may reuse it and no other run can.
OWNER_FILE = ".seqmodel-owner"


def version_dir(root: str | os.PathLike[str], canonical: str, version: int) -> Path:
    return Path(root) / canonical / f"version_{version}"


def existing_versions(root: str | os.PathLike[str], canonical: str) -> list[int]:
    """Versions present under `root/canonical`, ascending."""
    base = Path(root) / canonical
    if not base.is_dir():
        return []
    found = (_VERSION_DIR.match(p.name) for p in base.iterdir() if p.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


def allocate_version(root: str | os.PathLike[str], canonical: str) -> tuple[int, Path]:
    """Create and return the next free `version_<n>` directory of `canonical` under `root`."""
    (Path(root) / canonical).mkdir(parents=True, exist_ok=True)
    version = max(existing_versions(root, canonical), default=-1) + 1
    while True:
        path = version_dir(root, canonical, version)
        try:
            path.mkdir()
        except FileExistsError:
            version += 1  # another run took it first
            continue
        return version, path


class VersionTaken(UserError):
    """The output directory holds another run's files: this run must never write there."""


def _owner_of(out: Path) -> Optional[str]:
    """The owner ID in the directory's marker; None without one."""
    try:
        return (out / OWNER_FILE).read_text().strip()
    except FileNotFoundError:
        return None


def claim_output(out: Path, owner: str) -> None:
    """Mark the version directory as this run's, so a retry reuses it and no other run writes there.

    The directory is ours if its marker names us; another owner's marker, or files without a marker,
    make it taken. The marker is created with O_EXCL: of two pods racing for it, exactly one creates it.
    """
    out.mkdir(parents=True, exist_ok=True)
    found = _owner_of(out)
    if found is None and not visible_entries(out):
        try:
            fd = os.open(out / OWNER_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            found = _owner_of(out)  # another pod created it between our read and our create
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(owner + "\n")
            return
    if found != owner:
        whose = f"owner {found}" if found is not None else "no owner marker"
        raise VersionTaken(f"output dir {out} already holds another run's files ({whose}); this version is taken")
