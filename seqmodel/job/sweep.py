"""`Sweep`: a handle on a SeqSweep, the operator's search over hparams (seqmodel.job.search.sweep makes one).

The operator runs trial `i` as SeqTrainingJob `<sweep>-<i>` with the template's hparams and trial i's
parameters (`search.expand(spec.parameters)[i]`, or TPE's suggestion when it starts), and an ASHA
promotion as `<sweep>-<i>-r<rung>` (seqmodel.contract.sweep_plan). It keeps counts, the best trial and
the first failures in the sweep's status, and stops on `maxFailedTrials` or the objective's target. The
handle only reads that status (and the trials, by label): it never computes results itself, so a
notebook and `kubectl get sweep` agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from seqmodel import contract
from seqmodel.job import spec as S
from seqmodel.job.api import Job
from seqmodel.job.defaults import load_config
from seqmodel.job.kubeapi import KubeApi, KubeError, Target
from seqmodel.job.progress import follow
from seqmodel.job.status import FAILED, PENDING

GOALS = ("min", "max")
# A trial's replicates, retries and suspension are the sweep's fields, not its template's.
SWEEP_OWNED_JOB_FIELDS = ("replicates", "backoffLimit", "suspend")
DEFAULT_OBJECTIVE = {"metric": "val/loss", "goal": "min"}


@dataclass(frozen=True)
class Trial:
    """A trial as the sweep's status names it: its SeqTrainingJob, index, hparams and objective value (the
    mean over its `n` replicates, `sd` their standard deviation with 2 or more), and its ASHA rung."""

    name: str
    index: int
    hparams: dict[str, Any]
    value: Optional[float]
    n: int = 1
    sd: Optional[float] = None
    rung: int = 0


@dataclass(frozen=True)
class TrialFailure:
    name: str
    index: int
    message: Optional[str]


@dataclass(frozen=True)
class SweepStatus:
    name: str
    phase: str
    trials: int  # in the whole search space
    created: int
    active: int
    succeeded: int
    failed: int
    best: Optional[Trial]
    failures: tuple[TrialFailure, ...]  # the first few; `failed` counts them all
    conditions: tuple[dict[str, Any], ...]
    message: Optional[str]  # why it ended, when it did not simply finish

    @property
    def done(self) -> bool:
        return self.phase in contract.TERMINAL

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


class SweepFailed(RuntimeError):
    """wait() saw the sweep fail (e.g. maxFailedTrials reached); `status` says why."""

    def __init__(self, status: SweepStatus) -> None:
        super().__init__(f"sweep {status.name} failed: {status.message or 'see status().failures'}")
        self.status = status


def sweep_status(obj: Mapping[str, Any]) -> SweepStatus:
    """The status of a SeqSweep object (zeros and Pending before the operator first wrote it)."""
    status = obj.get("status") or {}
    best = status.get("bestTrial")
    conditions = tuple(status.get("conditions") or ())
    ended = next((c for c in conditions if c.get("type") == "Succeeded" and c.get("status") == "False"), None)
    count = lambda key: int(status.get(key) or 0)  # noqa: E731
    return SweepStatus(
        name=obj["metadata"]["name"], phase=status.get("phase") or PENDING, trials=count("trials"),
        created=count("created"), active=count("active"), succeeded=count("succeeded"), failed=count("failed"),
        best=Trial(best["name"], int(best["index"]), dict(best.get("hparams") or {}), best.get("value"),
                   int(best.get("replicates") or 1), best.get("sd"), int(best.get("rung") or 0)) if best else None,
        failures=tuple(TrialFailure(f["name"], int(f["index"]), f.get("message"))
                       for f in status.get("failures") or ()),
        conditions=conditions, message=(ended or {}).get("message") or status.get("message"))


def checked_objective(objective: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    out = dict(objective or DEFAULT_OBJECTIVE)
    if not out.get("metric"):
        raise S.JobSpecError("objective.metric: name the metric to optimise, e.g. val/loss")
    if out.setdefault("goal", "min") not in GOALS:
        raise S.JobSpecError(f"objective.goal: expected min or max, got {out['goal']!r}")
    return out


def sweep_body(name: str, namespace: str, template: Mapping[str, Any], parameters: Mapping[str, Any], *,
               replicates: Optional[int] = None, parallelism: Optional[int] = None,
               trial_retries: Optional[int] = None, max_failed_trials: Optional[int] = None,
               objective: Optional[Mapping[str, Any]] = None, schedule: Optional[Mapping[str, Any]] = None,
               suspend: bool = False) -> dict[str, Any]:
    """A SeqSweep object; settings left None take the CRD's defaults. The template's `replicates` and
    `suspend` are dropped (the sweep's own say how often each trial runs, and whether trials start); its
    `backoffLimit` becomes `trial_retries` unless that is given."""
    if trial_retries is None and template.get("backoffLimit") is not None:
        trial_retries = template["backoffLimit"]
    spec: dict[str, Any] = {"template": {k: v for k, v in template.items() if k not in SWEEP_OWNED_JOB_FIELDS},
                            "parameters": dict(parameters), "objective": checked_objective(objective),
                            "suspend": suspend}
    if schedule:
        spec["schedule"] = dict(schedule)
    for key, field_name, value, low in (("replicates", "replicates", replicates, 1),
                                        ("parallelism", "parallelism", parallelism, 1),
                                        ("trial_retries", "trialRetries", trial_retries, 0),
                                        ("max_failed_trials", "maxFailedTrials", max_failed_trials, 0)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise S.JobSpecError(f"{key}: expected a whole number >= {low}, got {value!r}")
        spec[field_name] = value
    return {"apiVersion": contract.API_VERSION, "kind": contract.SWEEP_KIND, "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


class SweepHandle:
    """What every backend's sweep answers: `status()` (a SweepStatus), and from it `best()` and `wait()`."""

    name: str

    def status(self) -> SweepStatus:
        raise NotImplementedError

    def best(self) -> Optional[Trial]:
        """The best trial so far by the objective (the operator's rule), None before any succeeded."""
        return self.status().best

    def wait(self, timeout: Optional[float] = None, *, poll: float = 2.0, progress: bool = True,
             check: bool = True) -> SweepStatus:
        """Block until the sweep ended, with a progress bar (trials ended / all); SweepFailed when it failed
        and `check`; WaitTimeout after `timeout` s (the sweep goes on)."""
        status = follow(self.status, label=f"sweep {self.name}", timeout=timeout, poll=poll, progress=progress,
                        what=f"sweep {self.name}", count=lambda s: (s.finished, s.trials, s.phase, s.done))
        if check and status.phase == FAILED:
            raise SweepFailed(status)
        return status


class Sweep(SweepHandle):
    """A SeqSweep by name: `status()`, `best()`, `wait()`, `trials()`, `delete()`. The config (file and
    settings, as for Job) says where the cluster is and where the output claim is mounted."""

    def __init__(self, name: str, *, config: Optional[Union[str, os.PathLike[str]]] = None,
                 api: Optional[KubeApi] = None, **settings: Any) -> None:
        self.name = name
        self.target = Target(load_config(config, **settings), api)

    @classmethod
    def on(cls, name: str, target: Target) -> "Sweep":
        """The handle of sweep `name` on an API server and namespace already chosen."""
        sweep = cls.__new__(cls)
        sweep.name, sweep.target = name, target
        return sweep

    def __repr__(self) -> str:
        return f"Sweep({self.name!r})"

    @property
    def namespace(self) -> str:
        return self.target.namespace

    def get(self) -> dict[str, Any]:
        obj = self.target.api.get(contract.SWEEP_PLURAL, self.namespace, self.name)
        if obj is None:
            raise KubeError(f"SeqSweep {self.namespace}/{self.name} does not exist")
        return obj

    def status(self) -> SweepStatus:
        return sweep_status(self.get())

    def trials(self) -> list[Job]:
        """Handles on the trials' runs created so far, by index (then ASHA rung): status, logs and outputs."""
        items = self.target.api.list(contract.JOB_PLURAL, self.namespace, {contract.LABEL_SWEEP: self.name})
        labels = lambda o: o["metadata"].get("labels") or {}  # noqa: E731
        items.sort(key=lambda o: (int(labels(o).get(contract.LABEL_TRIAL, 0)), int(labels(o).get(contract.LABEL_RUNG, 0))))
        return [Job.from_object(o, self.target.config, self.target.api) for o in items]

    def delete(self) -> bool:
        """Delete the sweep and with it its trials; their outputs stay. False when it was gone already."""
        return self.target.api.delete(contract.SWEEP_PLURAL, self.namespace, self.name)
