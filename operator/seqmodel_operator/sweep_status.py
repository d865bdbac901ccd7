"""A SeqSweep's status, and which trials to start next, as pure functions of its trials.

The trials are SeqTrainingJobs; the operator keeps a small summary of each (`Trial`, from a kopf index)
and recomputes the sweep's status whole from them, so an operator restart needs nothing but the objects.
The status is bounded whatever the number of trials: counts, the best trial and the first few failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from seqmodel_operator import constants as C
from seqmodel_operator.status import MESSAGE_MAX, TERMINAL, set_condition

# Condition reasons of a sweep's Succeeded condition.
REASON_RUNNING = "TrialsRunning"
REASON_FINISHED = "AllTrialsFinished"
REASON_ALL_FAILED = "AllTrialsFailed"
REASON_TARGET = "TargetReached"
REASON_MAX_FAILED = "MaxFailedTrials"
REASON_INVALID = "InvalidSpec"


@dataclass(frozen=True)
class Trial:
    """What a sweep needs to know of one trial: the summary of a SeqTrainingJob's status."""

    index: int
    name: str
    phase: str = ""  # "" until the job has a status
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


def trial_of(name: str, labels: Mapping[str, str], status: Mapping[str, Any]) -> Trial:
    return Trial(index=int(labels[C.LABEL_TRIAL]), name=name, phase=status.get("phase") or "",
                 metrics=dict(status.get("metrics") or {}), message=status.get("message") or "")


def trial_name(sweep: str, index: int) -> str:
    return f"{sweep}-{index}"


@dataclass(frozen=True)
class Progress:
    """The trials as counted for a sweep; `started` are trials this operator created whose jobs it has
    not seen yet (they count as active, so parallelism holds across the watch's delay)."""

    trials: dict[int, Trial]
    started: frozenset[int] = frozenset()

    @classmethod
    def of(cls, trials: Iterable[Trial], started: Iterable[int] = ()) -> "Progress":
        known = {t.index: t for t in trials}
        return cls(known, frozenset(i for i in started if i not in known))

    @property
    def created(self) -> int:
        return len(self.trials) + len(self.started)

    @property
    def active(self) -> int:
        return sum(not t.finished for t in self.trials.values()) + len(self.started)

    def count(self, phase: str) -> int:
        return sum(t.phase == phase for t in self.trials.values())

    def failures(self) -> list[Trial]:
        return sorted((t for t in self.trials.values() if t.phase == "Failed"), key=lambda t: t.index)

    def best(self, objective: Mapping[str, Any] | None) -> Trial | None:
        """The succeeded trial with the best objective value; ties go to the lowest index."""
        if not objective:
            return None
        metric, sign = objective["metric"], -1.0 if objective.get("goal", "min") == "max" else 1.0
        scored = [(sign * float(t.metrics[metric]), t.index, t) for t in self.trials.values()
                  if t.phase == "Succeeded" and _number(t.metrics.get(metric))]
        return min(scored, key=lambda s: s[:2])[2] if scored else None

    def next_indices(self, total: int, parallelism: int) -> list[int]:
        """The lowest-numbered trials not created yet, as many as parallelism leaves room for."""
        room, out, index = parallelism - self.active, [], 0
        while len(out) < room and index < total:
            if index not in self.trials and index not in self.started:
                out.append(index)
            index += 1
        return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def stop_reason(spec: Mapping[str, Any], progress: Progress, total: int) -> tuple[str, str, str] | None:
    """(phase, reason, message) when no more trials are to start, else None."""
    failed, limit = progress.count("Failed"), spec.get("maxFailedTrials")
    if limit is not None and failed > limit:
        return "Failed", REASON_MAX_FAILED, f"{failed} trials failed, more than maxFailedTrials ({limit}); no more trials start"
    objective = spec.get("objective") or {}
    best = progress.best(objective)
    if best is not None and objective.get("target") is not None:
        value, target = best.metrics[objective["metric"]], objective["target"]
        if (value >= target) if objective.get("goal", "min") == "max" else (value <= target):
            return "Succeeded", REASON_TARGET, (f"trial {best.name} reached the target: {objective['metric']} = "
                                                f"{value:g} (target {target:g}); no more trials start")
    if progress.created >= total and progress.active == 0:
        if progress.count("Succeeded") == 0:
            return "Failed", REASON_ALL_FAILED, f"all {total} trials failed"
        return "Succeeded", REASON_FINISHED, f"all {total} trials finished: {failed} failed"
    return None


def compute(body: Mapping[str, Any], progress: Progress, params: Sequence[Mapping[str, Any]], now: str,
            invalid: str | None = None) -> dict[str, Any]:
    """The sweep's whole status; `params` are the trials' parameters (trial i has params[i]). A sweep
    that has stopped stays stopped (its reason is kept)."""
    total = len(params)
    spec, old = body.get("spec") or {}, body.get("status") or {}
    generation = int(body["metadata"].get("generation", 1))
    conditions = list(old.get("conditions") or [])
    stopped = _stopped(old)
    if invalid is not None:
        stopped = ("Failed", REASON_INVALID, invalid)
    elif stopped is None:
        stopped = stop_reason(spec, progress, total)
    suspended = bool(spec.get("suspend")) and stopped is None
    objective = spec.get("objective") or {}
    best = progress.best(objective)
    if stopped is not None:
        phase, reason, message = stopped
        conditions = set_condition(conditions, C.COND_SUCCEEDED, "True" if phase == "Succeeded" else "False",
                                   reason, message, generation, now)
    else:
        phase = "Suspended" if suspended else ("Running" if progress.created else "Pending")
        message = _progress_message(progress, total, objective, best)
        conditions = set_condition(conditions, C.COND_SUCCEEDED, "Unknown", REASON_RUNNING, message, generation, now)
    conditions = set_condition(conditions, C.COND_SUSPENDED, "True" if suspended else "False",
                               "Suspended" if suspended else "NotSuspended",
                               "spec.suspend is true: no new trials start" if suspended else "", generation, now)
    status: dict[str, Any] = {
        "phase": phase, "observedGeneration": generation, "conditions": conditions, "trials": total,
        "created": progress.created, "active": progress.active, "succeeded": progress.count("Succeeded"),
        "failed": progress.count("Failed"), "message": message,
        "failures": [{"name": t.name, "index": t.index, "message": t.message[:MESSAGE_MAX]}
                     for t in progress.failures()[:C.MAX_FAILURES_SHOWN]],
        "startTime": old.get("startTime") or now,
        "completionTime": old.get("completionTime") or (now if stopped is not None and progress.active == 0 else None),
    }
    if best is not None:
        status["bestTrial"] = {"name": best.name, "index": best.index, "value": best.metrics[objective["metric"]],
                               "hparams": dict(params[best.index])}
    return status


def _stopped(old: Mapping[str, Any]) -> tuple[str, str, str] | None:
    if old.get("phase") not in TERMINAL:
        return None
    cond = next((c for c in old.get("conditions") or [] if c.get("type") == C.COND_SUCCEEDED), {})
    return old["phase"], cond.get("reason", ""), cond.get("message", "")


def _progress_message(progress: Progress, total: int, objective: Mapping[str, Any], best: Trial | None) -> str:
    done = progress.count("Succeeded") + progress.count("Failed")
    text = f"{done} of {total} trials finished, {progress.active} active"
    if best is not None:
        return f"{text}; best {objective['metric']} = {best.metrics[objective['metric']]:g} ({best.name})"
    succeeded = [t for t in progress.trials.values() if t.phase == "Succeeded"]
    if objective and succeeded:
        reported = sorted({k for t in succeeded for k in t.metrics})
        return (f"{text}; the objective metric {objective['metric']} is not among the trials' metrics: "
                f"{', '.join(reported) or 'none'}")
    return text
