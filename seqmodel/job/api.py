"""`Job`: one training or test run with its replicates, submitted from Python to Kubernetes or this machine.

    job = Job({"lr": 2e-3, "d_model": 64}, backend="kubernetes").submit()
    job.wait(); job.status().metrics; job.outputs()

Both backends give the same thing: `<output_dir>/<root>/<canonical name>/version_<n>` per replicate, a
status of the same shape, and one row per replicate in the job log (seqmodel.job.joblog).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from seqmodel import contract
from seqmodel.errors import UserError
from seqmodel.job import joblog
from seqmodel.job import spec as S
from seqmodel.job.defaults import JobConfig, load_config
from seqmodel.job.kube_backend import KubeBackend
from seqmodel.job.kubeapi import KubeApi, KubeError, Target
from seqmodel.job.local_backend import LocalBackend
from seqmodel.job.progress import follow
from seqmodel.job.status import FAILED, JobFailed, JobStatus, Placed

BACKENDS = ("kubernetes", "local")
Backend = Union[KubeBackend, LocalBackend]


class JobStateError(UserError, RuntimeError):
    """A method called at the wrong time (status before submit, submit twice)."""


def new_name() -> str:
    """A fresh job name: Kubernetes object names are unique per namespace, so a random suffix."""
    return f"job-{secrets.token_hex(4)}"


class Job:
    """A run of `hparams` (seqmodel.run's, checked here) with its replicates.

    `backend`: "kubernetes" creates a SeqTrainingJob for the operator; "local" runs `python -m seqmodel.run`
    in the background here. `config` is a job config file (default: $SEQMODEL_JOB_CONFIG or
    ~/.config/seqmodel/job.yaml), or a JobConfig already loaded; `settings` override it (JobConfig's
    fields: namespace, data, output, output_dir, resources, replicates, mode, checkpoint, ...). `api`
    replaces the Kubernetes client (tests).
    """

    def __init__(self, hparams: Mapping[str, Any], backend: str = "kubernetes", *, name: Optional[str] = None,
                 config: Optional[Union[str, os.PathLike[str], JobConfig]] = None, api: Optional[KubeApi] = None,
                 **settings: Any) -> None:
        if backend not in BACKENDS:
            raise S.JobSpecError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
        self.hparams = S.checked_hparams(hparams)
        self.config: JobConfig = (
            dataclasses.replace(config, **{k: v for k, v in settings.items() if v is not None})
            if isinstance(config, JobConfig) else load_config(config, **settings))
        self.name = contract.check_name(name or new_name())
        self.backend = backend
        self._impl: Backend = (LocalBackend(self.name, self.hparams, self.config) if backend == "local"
                               else KubeBackend(self.name, self.hparams, self.config, api=api))
        self.submitted = False

    @classmethod
    def attach(cls, name: str, *, config: Optional[Union[str, os.PathLike[str]]] = None,
               api: Optional[KubeApi] = None, **settings: Any) -> "Job":
        """A handle on a SeqTrainingJob that exists already (e.g. a sweep's trial), for status, wait, logs
        and outputs; it is not recorded in the job log again."""
        target = Target(load_config(config, **settings), api)
        obj = target.api.get(contract.JOB_PLURAL, target.namespace, contract.check_name(name))
        if obj is None:
            raise KubeError(f"SeqTrainingJob {target.namespace}/{name} does not exist")
        return cls.from_object(obj, target.config, target.api)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], config: JobConfig, api: KubeApi) -> "Job":
        """A handle on the SeqTrainingJob `obj` (as the API server returned it)."""
        job = cls.__new__(cls)
        job.name, job.backend, job.submitted = obj["metadata"]["name"], "kubernetes", True
        job.config = dataclasses.replace(config, namespace=obj["metadata"]["namespace"])
        job.hparams = dict(obj["spec"].get("hparams") or {})
        job._impl = KubeBackend(job.name, job.hparams, job.config, api=api, spec=obj["spec"])
        job._impl.note_placed(obj)
        return job

    def __repr__(self) -> str:
        where = f" canonical={self.canonical!r}" if self.canonical else ""
        return f"Job({self.name!r}, backend={self.backend!r}{where})"

    @property
    def spec(self) -> dict[str, Any]:
        """The SeqTrainingJob spec this job is (kubernetes), e.g. as a sweep's template."""
        if not isinstance(self._impl, KubeBackend):
            raise JobStateError(f"job {self.name}: a local job has no SeqTrainingJob spec")
        return dict(self._impl.spec)

    @property
    def canonical(self) -> Optional[str]:
        """The canonical name: computed here for local jobs, the operator's once a kubernetes job is submitted."""
        return self._impl.canonical

    @property
    def replicates(self) -> int:
        spec = self._impl.spec if isinstance(self._impl, KubeBackend) else {}
        return int(spec.get("replicates", self.config.replicates))

    @property
    def placed(self) -> list[Placed]:
        return list(self._impl.placed)

    def submit(self) -> "Job":
        """Start the job and record its replicates in the job log; kubernetes: waits until the operator has
        named its versions (config.assign_timeout). Returns the job, so `Job(...).submit().wait()` reads."""
        self._start()
        self._record()
        return self

    def _start(self) -> None:
        if self.submitted:
            raise JobStateError(f"job {self.name} was submitted already")
        self.submitted = True
        if isinstance(self._impl, LocalBackend):
            self._impl.submit()
        else:
            self._impl.start()

    def _record(self) -> None:
        placed = self._impl.await_placed() if isinstance(self._impl, KubeBackend) else self._impl.placed
        namespace = self._impl.namespace if isinstance(self._impl, KubeBackend) else None
        joblog.append(self.config.log_file, [
            joblog.row(name=self.name, backend=self.backend, namespace=namespace, replicate=p.replicate,
                       canonical=self._impl.canonical or "", version=p.version, output=p.output) for p in placed])

    def _require_submitted(self) -> None:
        if not self.submitted:
            raise JobStateError(f"job {self.name} is not submitted yet; call submit() first")

    def status(self) -> JobStatus:
        self._require_submitted()
        return self._impl.status()

    def wait(self, timeout: Optional[float] = None, *, poll: float = 2.0, progress: bool = True,
             check: bool = True) -> JobStatus:
        """Block until the job succeeded or failed, with a progress bar on stderr (replicates ended / all);
        JobFailed when it failed and `check`; WaitTimeout after `timeout` s (the job goes on)."""
        self._require_submitted()
        status = follow(self.status, label=f"job {self.name}", timeout=timeout, poll=poll, progress=progress,
                        what=f"job {self.name}",
                        count=lambda s: (s.finished, max(len(s.replicates), self.replicates), s.phase, s.done))
        if check and status.phase == FAILED:
            raise JobFailed(status)
        return status

    def logs(self, replicate: int = 0) -> str:
        """The run's output (seqmodel.run's stdout and stderr) of one replicate, so far."""
        self._require_submitted()
        return self._impl.logs(replicate)

    def outputs(self) -> list[Path]:
        """Each replicate's version directory on this machine (kubernetes: under output_dir, where the
        output claim is mounted): hparams.yaml, metrics.json, checkpoints/, and predictions.tsv in test mode."""
        self._require_submitted()
        return self._impl.outputs()

    def cancel(self) -> None:
        """Stop the job. Outputs stay; kubernetes: deletes the SeqTrainingJob and so its pods."""
        self._require_submitted()
        self._impl.cancel()


def submit_jobs(jobs: Sequence[Job]) -> list[Job]:
    """Start every job, then wait for each one's versions: creating N SeqTrainingJobs does not wait N
    times for the operator."""
    for job in jobs:
        job._start()
    for job in jobs:
        job._record()
    return list(jobs)
