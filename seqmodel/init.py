"""Create a workspace: `python -m seqmodel.init DIR [--sample-data | --data PATH]`.

    DIR/data/      the data root (hparam data_root): relative dataset paths resolve against it
                   --sample-data: the sample genome in data/genome/ (what the presets read)
                   --data PATH:   data is a symlink to PATH, e.g. a shared genome directory
    DIR/configs/   your config files; example.yaml lists presets in `defaults:`
    DIR/src/       your packages, importable when runs start in DIR; my_components/encoders.py holds
                   an example custom encoder
    DIR/out/       run outputs (--default_root_dir)

Never overwrites: when a file it would write exists, it writes nothing and exits 2. Run from DIR:
`python -m seqmodel.run --config configs/example.yaml`.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path
from typing import NoReturn, Sequence

from seqmodel.errors import UserError

TEMPLATE = "template"
DIRS = ("data", "configs", "src", "out")
SAMPLE_DIR = Path("data") / "genome"


def _refuse(message: str) -> NoReturn:
    raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqmodel.init", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="the workspace directory (created if missing; may exist)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--sample-data", action="store_true", help="write the sample genome to data/genome/")
    data.add_argument("--data", type=Path, metavar="PATH", help="make data/ a symlink to this directory")
    parser.error = _refuse  # type: ignore[method-assign]
    return parser


def template_files() -> dict[Path, bytes]:
    """The workspace's files from the package's template, by path relative to the workspace."""
    files: dict[Path, bytes] = {}

    def walk(node, rel: Path) -> None:  # importlib.resources Traversable
        for entry in node.iterdir():
            if entry.name == "__pycache__":
                continue
            if entry.is_dir():
                walk(entry, rel / entry.name)
            else:
                files[rel / entry.name] = entry.read_bytes()

    walk(resources.files("seqmodel.workspace") / TEMPLATE, Path())
    return files


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def plan(root: Path, sample_data: bool, data: Path | None) -> dict[Path, bytes]:
    """The files to write; refuses (writing nothing) when any of them, or what data/ would become, exists."""
    files = template_files()
    taken = [root / rel for rel in files if _exists(root / rel)]
    for name in DIRS:
        if _exists(root / name) and not (root / name).is_dir():
            taken.append(root / name)
    if data is not None:
        if not data.is_dir():
            raise UserError(f"--data {data}: not a directory")
        if _exists(root / "data"):
            taken.append(root / "data")
    if sample_data and _exists(root / SAMPLE_DIR):
        taken.append(root / SAMPLE_DIR)
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UserError(f"{taken[0]} exists{more}; seqmodel.init never overwrites files, nothing was written")
    return files


def create(root: Path, sample_data: bool = False, data: Path | None = None) -> list[Path]:
    """Create the workspace under `root`; returns what was written."""
    files = plan(root, sample_data, data)
    written: list[Path] = []
    root.mkdir(parents=True, exist_ok=True)
    if data is not None:
        os.symlink(data.resolve(), root / "data", target_is_directory=True)
        written.append(root / "data")
    for name in DIRS:
        (root / name).mkdir(exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as handle:  # exclusive: never replaces a file that appeared meanwhile
            handle.write(content)
        written.append(path)
    if sample_data:
        from seqmodel.dataset.sample import write  # numpy: only when asked for

        written += write(root / SAMPLE_DIR)
    return written


def next_steps(root: Path, has_data: bool) -> str:
    lines = [f"created the workspace {root}: data/ configs/ src/ out/", "", "next:", f"  cd {root}"]
    if not has_data:
        lines.append("  # put a genome (FASTA) and BED intervals under data/, e.g. data/genome/ as the presets "
                     "expect, or rerun with --sample-data")
    lines += [
        "  python -m seqmodel.run --config configs/example.yaml --help      # every hparam, the example encoder's too",
        "  python -m seqmodel.run --config configs/example.yaml             # train it; outputs in out/example",
        "  python -m seqmodel.run --config configs/example.yaml --default_root_dir="
        "$(python -m seqmodel.layout out --config configs/example.yaml)   # a new out/<name>/version_<n> each time",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
        create(args.dir, sample_data=args.sample_data, data=args.data)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(next_steps(args.dir, has_data=args.sample_data or args.data is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
