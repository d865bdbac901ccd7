"""The two steps of a Kubernetes run's pod, both in the trainer image: `python -m seqmodel.pod STEP`.

`stage` (the init container) claims the run's version directory for this run, then copies the data
types the run reads from the data volume to the pod's scratch volume:
    python -m seqmodel.pod stage --data DIR --scratch DIR --output DIR --owner ID [--type T ...] [--source TEXT]
`run` (the main container) trains or tests with `seqmodel.run` arguments (`--name=value` form, as the
operator renders them, including `--default_root_dir=DIR`):
    python -m seqmodel.pod run ARGS...
When DIR already holds checkpoints, the pod is a retry of this run and it resumes from the newest one;
an earlier attempt that died before its first checkpoint is set aside in `DIR/.attempts/<k>`.

Exit codes: 0 done, 2 user error (bad arguments or data, `seqmodel.contract.EXIT_USER_ERROR`), 3 the version
directory belongs to another run. The Job's podFailurePolicy fails the Job at once on 2 or 3 (retrying
cannot help); any other failure (a crash, an eviction) is retried, and the retry resumes. A failed step
writes a JSON summary to $SEQMODEL_TERMINATION_LOG (the run step leaves that to `seqmodel.run`).
Imports neither torch (until the training itself starts) nor any Kubernetes client.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from seqmodel import VERSION, run
from seqmodel.contract import CHECKPOINT_FLAGS, EXIT_USER_ERROR, EXIT_VERSION_TAKEN
from seqmodel.errors import UserError
from seqmodel.outputs.run_dir import is_global_zero, newest_checkpoint, visible_entries, write_termination_log
from seqmodel.outputs.versions import VersionTaken, claim_output

ATTEMPTS_DIR = ".attempts"


def _refuse(message: str) -> NoReturn:
    raise UserError(message)


def _parser() -> argparse.ArgumentParser:
    """Both steps; errors are one-line `UserError`s (argparse would print the usage)."""
    parser = argparse.ArgumentParser(prog="seqmodel.pod", description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    stage = steps.add_parser("stage", help="claim the output directory and copy data to scratch")
    stage.add_argument("--data", type=Path, metavar="DIR",
                       help="mount of the data volume (none: nothing to stage, the data is in the image or elsewhere)")
    stage.add_argument("--scratch", type=Path, required=True, metavar="DIR", help="mount of the pod's scratch volume")
    stage.add_argument("--output", type=Path, required=True, metavar="DIR", help="the run's version directory")
    stage.add_argument("--owner", required=True, metavar="ID", help="ID of the run (the same across its retries)")
    stage.add_argument("--type", dest="types", action="append", default=[], metavar="T",
                       help="data type to stage, data/<T> (repeatable; default: all of data/)")
    stage.add_argument("--source", metavar="TEXT", help="where the data volume comes from, for error messages")
    steps.add_parser("run", add_help=False, help="seqmodel.run with ARGS, resuming a retried run")
    for p in (parser, stage):
        p.error = _refuse
    return parser


def _missing(relative: str, data: Path, source: Optional[str]) -> UserError:
    """A one-line error naming the path as the user knows it: relative to the volume they named."""
    where = f"{relative} not found in {source}" if source else f"{data / relative} not found"
    return UserError(f"data path {where}")


def _tree_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def stage_data(data: Path, scratch: Path, types: Sequence[str], source: Optional[str]) -> None:
    """Copy `data/<T>` of the data volume to scratch for each type (all of them when none are given).

    Copies over what a previous attempt left on the same scratch volume, so a retry works.
    """
    if not types:
        if not (data / "data").is_dir():
            raise _missing("data", data, source)
        types = sorted(p.name for p in (data / "data").iterdir() if p.is_dir())
    for kind in types:
        src, dst = data / "data" / kind, scratch / "data" / kind
        if not src.is_dir():
            raise _missing(f"data/{kind}", data, source)
        shutil.copytree(src, dst, dirs_exist_ok=True)
        print(f"staged data/{kind}: {_tree_bytes(dst)} bytes to {dst}", flush=True)


def _root_dir(args: Sequence[str]) -> Path:
    """The run's output directory, from its `--default_root_dir=DIR` argument (the last one wins)."""
    values = [arg.split("=", 1)[1] for arg in args if arg.startswith("--default_root_dir=")]
    if not values:
        raise UserError("run needs --default_root_dir=DIR, the run's version directory")
    return Path(values[-1])


def _set_aside(out: Path) -> Path:
    """Move a failed attempt's files into the first free `.attempts/<k>`, so nothing is lost and the
    run starts in an empty directory."""
    k = 0
    while True:
        attempt = out / ATTEMPTS_DIR / str(k)
        try:
            attempt.mkdir(parents=True)
        except FileExistsError:
            k += 1
            continue
        for entry in visible_entries(out):
            entry.rename(attempt / entry.name)
        return attempt


def run_args(args: Sequence[str]) -> list[str]:
    """The `seqmodel.run` arguments of this attempt: resume from the run's own checkpoints when an earlier
    attempt wrote some (they supersede whatever checkpoint the run started from), else start afresh.

    Every rank decides the same way (Lightning reruns this command for ranks > 0, before any new
    checkpoint exists); only global rank zero moves files.
    """
    out = _root_dir(args)
    newest = newest_checkpoint(out)
    if newest is not None:
        print(f"resuming from {newest}", file=sys.stderr, flush=True)
        kept = [arg for arg in args if not arg.startswith(tuple(f"--{flag}=" for flag in CHECKPOINT_FLAGS))]
        return kept + ["--resume_from_checkpoint=last"]
    if is_global_zero() and out.is_dir() and visible_entries(out):
        print(f"an earlier attempt left files without a checkpoint; moved them to {_set_aside(out)}",
              file=sys.stderr, flush=True)
    return list(args)


def _report(step: str, error: str) -> None:
    write_termination_log({"status": "failed", "step": step, "error": error, "version": VERSION,
                           "metrics": {}, "outputs": {}})


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    step = argv[0] if argv else ""
    try:
        parser = _parser()
        ns, rest = parser.parse_known_args(argv)
        if ns.step == "run":
            args = run_args(rest)
        else:
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            claim_output(ns.output, ns.owner)
            if ns.data is not None:
                stage_data(ns.data, ns.scratch, ns.types, ns.source)
            return 0
    except UserError as err:
        error = run.one_line(err)
        _report(step, error)
        print(f"error: {error}", file=sys.stderr)
        return EXIT_VERSION_TAKEN if isinstance(err, VersionTaken) else EXIT_USER_ERROR
    except Exception as err:
        _report(step, f"{type(err).__name__}: {run.one_line(err)}")
        raise
    return run.main(args)  # writes its own summary


if __name__ == "__main__":
    sys.exit(main())
