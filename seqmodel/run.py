"""Entry point: `python -m seqmodel.run` or `python seqmodel/run.py`, hparams as `--name=value`.

`--mode=train` fits a model, `--mode=test` evaluates one (`--load_checkpoint_path`) and writes
per-window predictions. Everything goes to `--default_root_dir`, which must be empty unless resuming.
Tracked hparams (what is learned) of a run that loads or resumes a checkpoint come from that checkpoint
unless given on the command line; `--load_encoder_from_checkpoint` takes only the model hparams.
User errors print one `error: ...` line and exit 2; at exit a JSON summary goes to
$SEQMODEL_TERMINATION_LOG when it is set.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python seqmodel/run.py`: import the package, not this directory
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
from typing import Any, NoReturn, Sequence

from seqmodel import VERSION
from seqmodel.errors import UserError
from seqmodel.hparam import registry
from seqmodel.outputs import write_termination_log

EXIT_USER_ERROR = 2


def _refuse(message: str) -> NoReturn:
    raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    """Every hparam as a flag; errors are one-line `UserError`s (argparse would print the usage)."""
    parser = registry().parser(prog="seqmodel.run", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.error = _refuse
    return parser


def parse_argv(argv: Sequence[str]) -> tuple[dict[str, Any], set[str]]:
    """Typed hparams from `--name=value` arguments, and the names given explicitly."""
    reg = registry()
    namespace, rest = _parser().parse_known_args(argv)
    if rest:
        raise reg.unknown_error(rest[0].lstrip("-").split("=")[0])
    explicit = {arg[2:].split("=")[0] for arg in argv if arg.startswith("--")} & set(reg.names())
    return vars(namespace), explicit


def one_line(err: BaseException) -> str:
    """The last line of a message: errors re-raised from DataLoader workers carry a traceback."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        _parser().print_help()
        return 0
    summary: dict[str, Any] = {"status": "failed", "version": VERSION, "metrics": {}, "outputs": {}}
    try:
        hparams, explicit = parse_argv(argv)
        from seqmodel.pipeline import run  # torch is imported only once the arguments are valid

        run(hparams, explicit, summary)
        summary["status"] = "succeeded"
        return 0
    except UserError as err:
        summary["error"] = one_line(err)
        print(f"error: {summary['error']}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BaseException as err:
        summary["error"] = f"{type(err).__name__}: {one_line(err)}"
        raise
    finally:
        write_termination_log(summary)


if __name__ == "__main__":
    sys.exit(main())
