"""The output layout `<root>/<canonical name>/version_<n>` and race-free version allocation.

A version is taken by creating its directory with `mkdir`, which is atomic on POSIX file systems: of
two runs racing for `version_3`, exactly one succeeds and the other moves on to `version_4`. Versions
are never reused, so outputs are never overwritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_VERSION_DIR = re.compile(r"^version_(\d+)$")


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


def main(argv: list[str] | None = None) -> int:
    """`python -m seqmodel.job.layout ROOT [--config FILE] [--hparam=value ...]`: allocate and print the next
    `ROOT/<canonical name of those hparams>/version_<n>`, the directory to pass as --default_root_dir.
    Config files and custom components count as in `python -m seqmodel.run` (`./src` is importable)."""
    import sys

    from seqmodel.config import resolve
    from seqmodel.errors import UserError
    from seqmodel.workspace import add_src_to_path

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0].startswith("-"):
        print("usage: python -m seqmodel.job.layout ROOT [--config FILE] [--hparam=value ...]", file=sys.stderr)
        return 2
    add_src_to_path()
    try:
        resolution = resolve(args[1:])
        print(allocate_version(args[0], resolution.registry.canonical_name(resolution.hparams))[1])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
