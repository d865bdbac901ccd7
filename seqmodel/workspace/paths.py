"""The workspace a run starts in: `data/` (the data root), `configs/`, `src/` and `out/`.

- Dataset paths (`seq_file`, the interval files, and whatever a custom dataset declares) that are relative
  resolve against hparam `data_root`; absolute ones are used as they are. `data_root` itself is relative
  to the working directory; its default `data` becomes $SEQMODEL_DATA_ROOT when that is set and no config
  file or flag sets it. Symlinks anywhere on the way are followed by the OS, never rewritten.
- `src/` in the working directory goes first on sys.path, so `package.module:Class` components load from
  the user's own packages.

`python -m seqmodel.init DIR` creates the layout. Torch-free.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

DATA_ROOT_ENV = "SEQMODEL_DATA_ROOT"
SRC_DIR = "src"


def env_data_root() -> str | None:
    """$SEQMODEL_DATA_ROOT when it is set and not empty."""
    return os.environ.get(DATA_ROOT_ENV) or None


def data_path(data_root: str | os.PathLike[str], value: str | os.PathLike[str]) -> Path:
    """Where a dataset path points: as it is when absolute (or `~/...`), else under the data root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(data_root).expanduser() / path


def data_paths(hparams: Mapping[str, Any], value: str) -> list[Path]:
    """A comma-separated list of dataset paths (as `seq_file` takes), each resolved against data_root."""
    return [data_path(hparams["data_root"], part.strip()) for part in value.split(",") if part.strip()]


def where_relative(data_root: str | os.PathLike[str], value: str | os.PathLike[str]) -> str:
    """How a missing dataset path was looked up, for one-line errors; names the likely mistake of giving a
    path relative to the working directory (`data/genome/x.bed`) instead of to the data root."""
    if Path(value).expanduser().is_absolute():
        return ""
    root = Path(data_root).expanduser()
    text = f" (relative dataset paths resolve against data_root {str(data_root)!r}: {root.absolute()})"
    parts = Path(value).parts
    if len(parts) > 1 and root.name and parts[0] == root.name:
        text += f"; did you mean {str(Path(*parts[1:]))!r}?"
    return text


def add_src_to_path(cwd: Path | None = None) -> Path | None:
    """Put `./src` first on sys.path when the directory exists; returns it."""
    src = (cwd or Path.cwd()) / SRC_DIR
    if not src.is_dir():
        return None
    entry = str(src.resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)
    return src
