"""backend="local" for sweeps: the operator's planner and status over local Jobs, driven by a thread here.

Which runs start next is seqmodel.contract.sweep_plan's decision and the status is
seqmodel.contract.sweep_status's, the code the operator runs, so a sweep means the same on both backends:
grid, random, list and TPE; ASHA promotions that resume the run below them (checkpoint.fromJob, each
replicate its own); maxFailedTrials and the objective's target. Runs are local Jobs named as the operator
names SeqTrainingJobs (`<sweep>-<index>`, `-r<rung>`), in the job log like any other. The driver is a
thread of this process: the runs it started go on if the process ends, but no further ones start.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Mapping, Optional

from seqmodel.contract import TERMINAL
from seqmodel.contract import sweep_status as ss
from seqmodel.contract.conditions import now_iso
from seqmodel.contract.sweep_plan import Launch, Run, Search, run_name
from seqmodel.errors import UserError
from seqmodel.job import spec as S
from seqmodel.job.api import Job
from seqmodel.job.defaults import JobConfig
from seqmodel.job.local_backend import submitted
from seqmodel.job.status import SUCCEEDED
from seqmodel.job.sweep import SweepHandle, SweepStatus, sweep_status

RunKey = tuple[int, int]  # (trial index, rung)


class LocalSweep(SweepHandle):
    """A sweep of local runs: `status()`, `best()`, `wait()`, `trials()`, `cancel()`. Made and started by
    `seqmodel.job.search.sweep(..., backend="local")`, which checks it first as for the operator."""

    def __init__(self, name: str, spec: Mapping[str, Any], search: Search, config: JobConfig,
                 poll: float = 1.0) -> None:
        self.name, self.spec, self.search, self.config, self.poll = name, dict(spec), search, config, poll
        if submitted(config.root_dir, run_name(name, 0)):
            raise S.JobSpecError(f"name: a local sweep named {name} ran under {config.root_dir} already; "
                                 "pick another name")
        self._lock = threading.Lock()
        self._runs: dict[RunKey, tuple[Job, dict[str, Any]]] = {}  # each run's job and searched params
        self._status: dict[str, Any] = {}
        self._invalid: Optional[str] = None  # why no more runs can start, once one could not
        self._cancelled = threading.Event()
        self._driver = threading.Thread(target=self._drive, name=f"sweep-{name}", daemon=True)

    def __repr__(self) -> str:
        return f"LocalSweep({self.name!r})"

    def start(self) -> "LocalSweep":
        """Start the first runs now (so a bad trial is an error here), then drive the rest from a thread."""
        self._step()
        self._driver.start()
        return self

    def status(self) -> SweepStatus:
        with self._lock:
            return sweep_status(self._object())

    def trials(self) -> list[Job]:
        """The runs started so far, by trial index, then ASHA rung: status, logs and outputs."""
        with self._lock:
            return [job for _, (job, _) in sorted(self._runs.items())]

    def cancel(self) -> None:
        """Start no more runs and stop those running (they count as failed); outputs stay."""
        self._cancelled.set()
        if self._driver.is_alive():
            self._driver.join()
        for job in self.trials():
            job.cancel()
        self._step()

    # --- the driver ---------------------------------------------------------------------------
    def _drive(self) -> None:
        while not self._cancelled.is_set() and not self._step():
            self._cancelled.wait(self.poll)

    def _step(self) -> bool:
        """One pass, as the operator's reconcile: the status from the runs, then the runs the plan starts.
        True when the sweep has ended and nothing runs."""
        with self._lock:
            progress, runs, status = self._compute()
            if status["phase"] in ("Pending", "Running") and not self._cancelled.is_set():
                room = int(self.spec.get("parallelism", 1)) - progress.active
                for launch in self.search.plan(runs, room) if room > 0 else []:
                    try:
                        self._runs[(launch.index, launch.rung)] = (self._launch(launch), launch.params)
                    except UserError as err:
                        self._invalid = f"trial {launch.index}: {err}"
                        break
                progress, _, status = self._compute()
            return status["phase"] in TERMINAL and progress.active == 0

    def _compute(self) -> tuple[ss.Progress, list[Run], dict[str, Any]]:
        """The runs as counted and as the planner takes them, and the status they make."""
        progress = ss.Progress.of(self._trial(key, job, params) for key, (job, params) in self._runs.items())
        runs = progress.plan_runs(self._metric)
        self._status = ss.compute(self._object(), progress, ss.SearchInfo.of(self.search, runs), now_iso(),
                                  self._invalid)
        return progress, runs, self._status

    def _launch(self, launch: Launch) -> Job:
        """A run as the operator's trial_job makes it: the base hparams and the trial's, ASHA's budget, and
        from rung 1 on each replicate resuming its own run one rung below."""
        hparams = {**self.spec["template"]["hparams"], **launch.params}
        if launch.budget is not None:
            hparams["max_steps"] = launch.budget
        checkpoint = self.config.checkpoint
        if launch.rung > 0:
            checkpoint = {"fromJob": run_name(self.name, launch.index, launch.rung - 1), "use": "resume",
                          "eachReplicate": True}
        config = dataclasses.replace(self.config, replicates=int(self.spec.get("replicates", 1)),
                                     checkpoint=checkpoint)
        return Job(hparams, "local", name=run_name(self.name, launch.index, launch.rung), config=config).submit()

    @staticmethod
    def _trial(key: RunKey, job: Job, params: Mapping[str, Any]) -> ss.Trial:
        status = job.status()
        return ss.Trial(index=key[0], name=job.name, phase=status.phase, metrics=status.metrics,
                        message=status.message or "", rung=key[1], params=params,
                        replicate_metrics=tuple(r.metrics for r in status.replicates if r.phase == SUCCEEDED))

    @property
    def _metric(self) -> Optional[str]:
        return (self.spec.get("objective") or {}).get("metric")

    def _object(self) -> dict[str, Any]:
        """The sweep as a SeqSweep object, which the shared status code reads (and its last status)."""
        return {"metadata": {"name": self.name, "generation": 1}, "spec": self.spec, "status": self._status}
