"""Write the sample genome and its intervals (deterministic: the committed files are exactly its output).

    python data/make_sample.py [--out DIR]      # default: data/genome next to this script

The generator lives in the package (`seqmodel.dataset.sample`), so `python -m seqmodel.init DIR
--sample-data` writes the same files into a new workspace. See data/README.md for the data and formats.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqmodel.dataset.sample import write

__all__ = ["write", "main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "genome")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
