"""backend="local": `python -m seqmodel.run` as a background process on this machine, with the layout a
Kubernetes run has on its output claim: `<output_dir>/<root>/<canonical name>/version_<n>`.

Each replicate's version is allocated with `mkdir` and claimed with the owner marker a pod's stage step
writes, so local runs and Kubernetes runs may share one root (a claim mounted here) and never share a
directory. Scripts come from `template_*.sh` (package data) filled with `str.format`, every value
shell-quoted first. A replicate's own files sit in `<version dir>/.job/` (dot entries are not outputs):
the script, its output, the run's JSON summary (what a pod's termination message holds) and its exit code,
so status() is read from disk like the operator reads a pod's status.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional

from seqmodel import contract
from seqmodel.job import joblog
from seqmodel.job import spec as S
from seqmodel.job.defaults import JobConfig
from seqmodel.outputs.versions import VersionTaken, allocate_version, claim_output
from seqmodel.job.status import FAILED, PENDING, RUNNING, SUCCEEDED, JobStatus, Placed, ReplicateStatus

JOB_FILES = ".job"  # in a version directory: this backend's files about the run
SCRIPTS_DIR = ".jobs"  # in the root: one driver script per job, `<name>.sh` (names are unique per root)


def template(name: str) -> str:
    return (resources.files("seqmodel.job") / f"template_{name}.sh").read_text()


def fill(name: str, **values: str | Path | list[str]) -> str:
    """template_<name>.sh with every value shell-quoted: a string is one word whatever it holds, a list is
    its words, each quoted on its own (arguments, script paths)."""
    def quoted(value: str | Path | list[str]) -> str:
        return " ".join(map(shlex.quote, value)) if isinstance(value, list) else shlex.quote(str(value))

    return template(name).format(**{key: quoted(value) for key, value in values.items()})


def submitted(root: Path, job_name: str) -> bool:
    """Whether a local job of this name was submitted under `root` (names are used once per root)."""
    return (root / SCRIPTS_DIR / f"{job_name}.sh").exists()


def claim_version(root: Path, canonical: str, owner: str) -> tuple[int, Path]:
    """The next free version of `canonical` under `root`, marked as `owner`'s: a directory a pod claimed
    between our mkdir and our marker is left to it, and we take the next."""
    while True:
        version, path = allocate_version(root, canonical)
        try:
            claim_output(path, owner)
        except VersionTaken:
            continue
        return version, path


def replicate_status(placed: Placed, driver_alive: bool) -> ReplicateStatus:
    """From the replicate's files: not started (no output yet), running, or ended with an exit code."""
    files = placed.output / JOB_FILES
    summary = _read_json(files / "summary.json")
    code_file = files / "exit_code"
    if code_file.is_file():
        code = int(code_file.read_text().strip() or 1)
        phase = SUCCEEDED if code == 0 else FAILED
        message = None if code == 0 else (summary.get("error") or _last_line(files / "output.log")
                                          or f"exit code {code}")
    elif driver_alive:
        phase, message = (RUNNING if (files / "output.log").exists() else PENDING), None
    else:
        phase, message = FAILED, "stopped before it finished (cancelled or killed)"
    return ReplicateStatus(index=placed.replicate, version=placed.version, output=placed.output, phase=phase,
                           metrics=dict(summary.get("metrics") or {}) if phase == SUCCEEDED else {},
                           message=message)


class LocalBackend:
    """One local job: allocates its versions, writes its scripts and runs them in a new session."""

    name = "local"

    def __init__(self, job_name: str, hparams: Mapping[str, Any], config: JobConfig) -> None:
        self.job_name, self.hparams, self.config = job_name, dict(hparams), config
        self.checkpoint = self._checkpoint()
        flag, source = (self.checkpoint[0], S.source_named(self.checkpoint[1][0])) if self.checkpoint else (None, {})
        self.canonical = S.canonical_name(self.hparams, source, flag)
        self.placed: list[Placed] = []
        self.process: Optional[subprocess.Popen[bytes]] = None

    def _checkpoint(self) -> Optional[tuple[str, list[Path]]]:
        """The seqmodel.run flag and each replicate's checkpoint file: `path` (relative to output_dir), or
        the output of the local job `fromJob` (from the job log): its `replicate`, or with `eachReplicate`
        each replicate's own, as the operator mounts them."""
        ckpt = S.checked_checkpoint(self.config.mode, self.config.checkpoint)
        if ckpt is None:
            return None
        replicates = self.config.replicates
        if "path" in ckpt:
            files, field = [Path(self.config.output_dir).expanduser().resolve() / ckpt["path"]] * replicates, "path"
        else:
            source = ckpt["fromJob"]
            outputs = joblog.outputs_of(self.config.log_file, source, self.name)
            if not outputs:
                raise S.JobSpecError(f"checkpoint.fromJob: no local job {source} in the job log {self.config.log_file}")
            each = bool(ckpt.get("eachReplicate"))
            chosen = list(range(replicates)) if each else [int(ckpt.get("replicate", 0))] * replicates
            field = "eachReplicate" if each else "replicate"
            missing = next((r for r in chosen if r not in outputs), None)
            if missing is not None:
                raise S.JobSpecError(f"checkpoint.{field}: job {source} has no replicate {missing}")
            files = [outputs[r] / ckpt.get("file", "checkpoints/last.ckpt") for r in chosen]
        absent = next((f for f in files if not f.is_file()), None)
        if absent is not None:
            raise S.JobSpecError(f"checkpoint.{field}: {absent} is not a file")
        return contract.CHECKPOINT_USES[contract.checkpoint_use(self.config.mode, ckpt)], files

    def submit(self) -> list[Placed]:
        root = self.config.root_dir
        driver = root / SCRIPTS_DIR / f"{self.job_name}.sh"
        driver.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(driver, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o755)
        except FileExistsError:
            raise S.JobSpecError(f"name: a local job named {self.job_name} was already submitted under {root}; "
                                 "pick another name") from None
        scripts = []
        for replicate in range(self.config.replicates):
            version, out = claim_version(root, self.canonical, f"local/{self.job_name}/{replicate}")
            self.placed.append(Placed(replicate, version, out))
            scripts.append(str(self._write_run_script(replicate, version, out)))
        with os.fdopen(fd, "w") as handle:
            handle.write(fill("job", scripts=scripts))
        self.process = subprocess.Popen(["/bin/sh", str(driver)], cwd=os.getcwd(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return list(self.placed)

    def _write_run_script(self, replicate: int, version: int, out: Path) -> Path:
        files = out / JOB_FILES
        files.mkdir()
        checkpoint = (self.checkpoint[0], str(self.checkpoint[1][replicate])) if self.checkpoint else None
        args = contract.run_args(self.hparams, mode=self.config.mode, root_dir=str(out),
                                 seed=contract.replicate_seed(version, self.hparams),
                                 data_root=self.config.data_root, checkpoint=checkpoint)
        script = files / "run.sh"
        script.write_text(fill("run", args=args, workdir=os.getcwd(),
                                     python=self.config.python or sys.executable, summary=files / "summary.json",
                                     log=files / "output.log", exit_file=files / "exit_code"))
        return script

    def status(self) -> JobStatus:
        alive = self.process is not None and self.process.poll() is None
        replicates = tuple(replicate_status(p, alive) for p in self.placed)
        phase = contract.job_phase([r.phase for r in replicates], len(replicates))
        failed = next((r for r in replicates if r.phase == FAILED), None)
        message = f"replicate {failed.index}: {failed.message}" if failed and phase == FAILED else None
        return JobStatus(name=self.job_name, backend=self.name, phase=phase, canonical=self.canonical,
                         replicates=replicates, metrics=contract.mean_metrics((r.phase, r.metrics) for r in replicates),
                         message=message)

    def outputs(self) -> list[Path]:
        return [p.output for p in self.placed]

    def logs(self, replicate: int) -> str:
        path = self.placed[replicate].output / JOB_FILES / "output.log"
        return path.read_text() if path.is_file() else ""

    def cancel(self) -> None:
        """Stop the job's processes (its outputs stay); replicates that had not ended count as failed."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _last_line(path: Path) -> Optional[str]:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    return lines[-1] if lines else None
