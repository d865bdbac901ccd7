"""A sweep's status as a pure function of its trials' runs: the SeqSweep status the operator writes, and
the same status of a local sweep (seqmodel.job.local_sweep), so both backends count, rank and stop alike.

The operator keeps a small summary of each run (`Trial`, from a kopf index) and recomputes the status
whole from them, so an operator restart needs nothing but the objects. The status is bounded whatever the
number of trials: counts, the best trial, the first few failures and, with ASHA, one entry per rung.
Torch-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from seqmodel.contract import TERMINAL
from seqmodel.contract.conditions import COND_SUCCEEDED, COND_SUSPENDED, MESSAGE_MAX, set_condition
from seqmodel.contract.sweep_plan import Run, Search, last_runs

MAX_FAILURES_SHOWN = 5  # failed trials listed in a sweep's status (the count has them all)

# Condition reasons of a sweep's Succeeded condition.
REASON_RUNNING = "TrialsRunning"
REASON_FINISHED = "AllTrialsFinished"
REASON_ALL_FAILED = "AllTrialsFailed"
REASON_TARGET = "TargetReached"
REASON_MAX_FAILED = "MaxFailedTrials"
REASON_INVALID = "InvalidSpec"


@dataclass(frozen=True)
class Trial:
    """What a sweep needs to know of one run of a trial (a SeqTrainingJob; a trial has one run per ASHA
    rung it reached, one in all without ASHA): the summary of its status and its searched parameters."""

    index: int
    name: str
    phase: str = ""  # "" until the job has a status
    metrics: Mapping[str, float | None] = field(default_factory=dict)  # means over its replicates
    message: str = ""
    rung: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    replicate_metrics: tuple[Mapping[str, Any], ...] = ()  # each succeeded replicate's own

    @property
    def key(self) -> RunKey:
        return self.index, self.rung

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL

    def value(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return float(value) if _number(value) else None  # type: ignore[arg-type]


RunKey = tuple[int, int]  # (trial index, rung)


@dataclass(frozen=True)
class Progress:
    """A sweep's runs as counted for its status and its plan; `started` are runs this operator created
    and has not seen yet, with their parameters (they count as active, so parallelism holds across the
    watch's delay)."""

    runs: dict[RunKey, Trial]
    started: Mapping[RunKey, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, trials: Iterable[Trial], started: Mapping[RunKey, Mapping[str, Any]] | None = None) -> "Progress":
        known = {t.key: t for t in trials}
        return cls(known, {k: p for k, p in (started or {}).items() if k not in known})

    @property
    def created(self) -> int:
        """Trials started so far (a trial's promotions are the same trial)."""
        return len({index for index, _ in self.runs} | {index for index, _ in self.started})

    @property
    def active(self) -> int:
        """Runs started and not finished."""
        return sum(not t.finished for t in self.runs.values()) + len(self.started)

    def count(self, phase: str) -> int:
        """Trials whose last run (at the highest rung they reached) is in `phase`."""
        return sum(t.phase == phase for t in last_runs(self.runs.values()).values())

    def failures(self) -> list[Trial]:
        return sorted((t for t in self.runs.values() if t.phase == "Failed"), key=lambda t: t.key)

    def best(self, objective: Mapping[str, Any] | None) -> Trial | None:
        """The succeeded run with the best objective value at the highest rung any such run reached (a
        value after more training is not compared with one after less); ties go to the lowest index."""
        if not objective:
            return None
        metric, sign = objective["metric"], -1.0 if objective.get("goal", "min") == "max" else 1.0
        scored = [(-t.rung, sign * t.value(metric), t.index, t) for t in self.runs.values()  # type: ignore[operator]
                  if t.phase == "Succeeded" and t.value(metric) is not None]
        return min(scored, key=lambda s: s[:3])[3] if scored else None

    def plan_runs(self, metric: str | None) -> list[Run]:
        """The runs as the planner (seqmodel.contract.sweep_plan) takes them."""
        runs = [Run(t.index, t.rung, t.params, t.phase, t.value(metric) if metric else None)
                for t in self.runs.values()]
        return runs + [Run(index, rung, params) for (index, rung), params in self.started.items()]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def stop_reason(spec: Mapping[str, Any], progress: Progress, total: int, done: bool) -> tuple[str, str, str] | None:
    """(phase, reason, message) when no more trials are to start, else None; `done`: the search has
    nothing more to start and nothing runs."""
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
    if done:
        if progress.count("Succeeded") == 0:
            return "Failed", REASON_ALL_FAILED, f"all {total} trials failed"
        return "Succeeded", REASON_FINISHED, f"all {total} trials finished: {failed} failed"
    return None


@dataclass(frozen=True)
class SearchInfo:
    """What the status shows of the sweep's search (seqmodel.contract.sweep_plan.Search)."""

    total: int  # trials
    done: bool  # nothing more to start, nothing running
    algorithm: str = ""  # grid, random, list or tpe, with +asha
    budgets: tuple[int, ...] = ()  # ASHA's rungs

    @classmethod
    def of(cls, search: Search | None, runs: list[Run]) -> "SearchInfo":
        """`search` with these runs; None (a sweep that cannot run) has no trials and is never done."""
        if search is None:
            return cls(total=0, done=False)
        return cls(total=search.total, done=search.done(runs), algorithm=search.algorithm,
                   budgets=search.asha.budgets if search.asha else ())


def compute(body: Mapping[str, Any], progress: Progress, search: SearchInfo, now: str,
            invalid: str | None = None) -> dict[str, Any]:
    """The sweep's whole status. A sweep that has stopped stays stopped (its reason is kept)."""
    total = search.total
    spec, old = body.get("spec") or {}, body.get("status") or {}
    generation = int(body["metadata"].get("generation", 1))
    conditions = list(old.get("conditions") or [])
    stopped = _stopped(old)
    if invalid is not None:
        stopped = ("Failed", REASON_INVALID, invalid)
    elif stopped is None:
        stopped = stop_reason(spec, progress, total, search.done)
    suspended = bool(spec.get("suspend")) and stopped is None
    objective = spec.get("objective") or {}
    best = progress.best(objective)
    if stopped is not None:
        phase, reason, message = stopped
        conditions = set_condition(conditions, COND_SUCCEEDED, "True" if phase == "Succeeded" else "False",
                                   reason, message, generation, now)
    else:
        phase = "Suspended" if suspended else ("Running" if progress.created else "Pending")
        message = _progress_message(progress, total, objective, best)
        conditions = set_condition(conditions, COND_SUCCEEDED, "Unknown", REASON_RUNNING, message, generation, now)
    conditions = set_condition(conditions, COND_SUSPENDED, "True" if suspended else "False",
                               "Suspended" if suspended else "NotSuspended",
                               "spec.suspend is true: no new trials start" if suspended else "", generation, now)
    status: dict[str, Any] = {
        "phase": phase, "observedGeneration": generation, "conditions": conditions, "trials": total,
        "algorithm": search.algorithm or None,
        "created": progress.created, "active": progress.active, "succeeded": progress.count("Succeeded"),
        "failed": progress.count("Failed"), "message": message,
        "failures": [{"name": t.name, "index": t.index, "message": t.message[:MESSAGE_MAX]}
                     for t in progress.failures()[:MAX_FAILURES_SHOWN]],
        "rungs": _rungs(progress, search.budgets, objective) if search.budgets else None,
        "startTime": old.get("startTime") or now,
        "completionTime": old.get("completionTime") or (now if stopped is not None and progress.active == 0 else None),
    }
    if best is not None:
        status["bestTrial"] = _best_trial(best, objective["metric"])
    return status


def _best_trial(best: Trial, metric: str) -> dict[str, Any]:
    """The best trial: its objective value (the mean over its replicates), their sd and number."""
    values = [float(m[metric]) for m in best.replicate_metrics if _number(m.get(metric))]
    entry: dict[str, Any] = {"name": best.name, "index": best.index, "rung": best.rung, "value": best.metrics[metric],
                             "replicates": len(values) or 1, "hparams": dict(best.params)}
    if len(values) > 1:
        entry["sd"] = statistics.stdev(values)
    return entry


def _rungs(progress: Progress, budgets: Sequence[int], objective: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per ASHA rung: runs started, succeeded and failed, trials promoted from it, those that finished it
    and are not promoted (so far), and its best value."""
    metric, sign = objective.get("metric"), -1.0 if objective.get("goal", "min") == "max" else 1.0
    keys = [*progress.runs, *progress.started]
    out = []
    for rung, budget in enumerate(budgets):
        runs = [t for t in progress.runs.values() if t.rung == rung]
        succeeded = sum(t.phase == "Succeeded" for t in runs)
        entry: dict[str, Any] = {"rung": rung, "budget": budget, "started": sum(r == rung for _, r in keys),
                                 "succeeded": succeeded, "failed": sum(t.phase == "Failed" for t in runs)}
        if rung < len(budgets) - 1:
            entry["promoted"] = sum(r == rung + 1 for _, r in keys)
            entry["stopped"] = max(0, succeeded - entry["promoted"])
        values = [t.value(metric) for t in runs if metric and t.phase == "Succeeded" and t.value(metric) is not None]
        if values:
            entry["best"] = min(values, key=lambda v: sign * v)  # type: ignore[operator]
        out.append(entry)
    return out


def _stopped(old: Mapping[str, Any]) -> tuple[str, str, str] | None:
    if old.get("phase") not in TERMINAL:
        return None
    cond = next((c for c in old.get("conditions") or [] if c.get("type") == COND_SUCCEEDED), {})
    return old["phase"], cond.get("reason", ""), cond.get("message", "")


def _progress_message(progress: Progress, total: int, objective: Mapping[str, Any], best: Trial | None) -> str:
    done = progress.count("Succeeded") + progress.count("Failed")
    text = f"{done} of {total} trials finished, {progress.active} active"
    if best is not None:
        return f"{text}; best {objective['metric']} = {best.metrics[objective['metric']]:g} ({best.name})"
    succeeded = [t for t in progress.runs.values() if t.phase == "Succeeded"]
    if objective and succeeded:
        reported = sorted({k for t in succeeded for k in t.metrics})
        return (f"{text}; the objective metric {objective['metric']} is not among the trials' metrics: "
                f"{', '.join(reported) or 'none'}")
    return text
