"""Entry point: `python -m seqmodel.run` or `python seqmodel/run.py`, hparams as `--name=value`.

`--config FILE` reads hparams from YAML config files and presets first (flags win; see seqmodel.config);
`./src` goes on sys.path, so components named `package.module:Class` load from it. `--mode=train` fits a
model, `--mode=test` evaluates one (`--load_checkpoint_path`) and writes per-window predictions. Everything goes to `--default_root_dir`, which must be empty unless resuming.
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
from typing import Any, Sequence

from seqmodel import VERSION
from seqmodel.config.resolve import default_parser, registry_of, resolve
from seqmodel.contract import EXIT_STOPPED, EXIT_USER_ERROR
from seqmodel.errors import Stopped, UserError
from seqmodel.hparam import Hparams
from seqmodel.outputs.run_dir import write_termination_log
from seqmodel.workspace.paths import add_src_to_path


def _parser(reg: Hparams) -> argparse.ArgumentParser:
    """Every hparam as a flag, with this command's name and description for `--help`."""
    return default_parser(reg, prog="seqmodel.run", description=__doc__.split("\n\n")[0])


def one_line(err: BaseException) -> str:
    """The last line of a message: errors re-raised from DataLoader workers carry a traceback."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    add_src_to_path()
    if "-h" in argv or "--help" in argv:  # the chosen components' hparams are listed too
        try:
            reg = registry_of([a for a in argv if a not in ("-h", "--help")])
        except UserError as err:
            print(f"error: {one_line(err)}", file=sys.stderr)
            return EXIT_USER_ERROR
        _parser(reg).print_help()
        return 0
    summary: dict[str, Any] = {"status": "failed", "version": VERSION, "metrics": {}, "outputs": {}}
    try:
        resolved = resolve(argv, parser=_parser)
        from seqmodel.training.fit import run  # torch is imported only once the arguments are valid

        run(resolved, summary)
        summary["status"] = "succeeded"
        return 0
    except UserError as err:
        summary["error"] = one_line(err)
        print(f"error: {summary['error']}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Stopped as err:
        summary["error"] = one_line(err)
        print(summary["error"], file=sys.stderr)
        return EXIT_STOPPED
    except BaseException as err:
        summary["error"] = f"{type(err).__name__}: {one_line(err)}"
        raise
    finally:
        write_termination_log(summary)


if __name__ == "__main__":
    sys.exit(main())
