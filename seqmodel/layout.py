"""`python -m seqmodel.layout ROOT [--config FILE] [--hparam=value ...]`: allocate and print the next
`ROOT/<canonical name of those hparams>/version_<n>`, the directory to pass as --default_root_dir.

Config files and custom components count as in `python -m seqmodel.run` (`./src` is importable); the
name is the one every backend gives the same hparams (seqmodel.contract). Torch-free.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from seqmodel.config.resolve import resolve
from seqmodel.contract import EXIT_USER_ERROR
from seqmodel.errors import UserError
from seqmodel.outputs.versions import allocate_version
from seqmodel.workspace.paths import add_src_to_path

USAGE = "usage: python -m seqmodel.layout ROOT [--config FILE] [--hparam=value ...]"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return EXIT_USER_ERROR
    add_src_to_path()
    try:
        print(allocate_version(args[0], resolve(args[1:], read_checkpoint=False).name)[1])
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
