"""Which trials a sweep starts next, and with what: a pure function of the sweep's spec and of its trials'
runs. The operator decides with it, the Python API checks a sweep with it before sending it, and being
pure it is what a local runner of sweeps would share.

A trial is an index. Its runs are SeqTrainingJobs, one per rung it reached (one in all without ASHA).
Grid, random and list searches fix every trial's parameters up front (seqmodel.contract.space); TPE
decides trial i's when it starts, from the runs known then (seqmodel.contract.tpe). With ASHA
(seqmodel.contract.asha), promotions come before new trials: a promoted trial resumes from its last
run's checkpoint and trains on to the next rung's budget, and trials fixed up front start in an order
shuffled by the sweep's seed (`start_order`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Protocol, TypeVar

from seqmodel.contract import MAX_JOB_NAME_CHARS, TERMINAL
from seqmodel.contract.asha import Asha, RungResult, standing
from seqmodel.contract.space import SearchError, count, expand
from seqmodel.contract.tpe import Observation, check_space, check_startup, default_startup, index_ranges, suggest

KINDS = ("grid", "random", "list", "tpe")


class _RunLike(Protocol):
    index: int
    rung: int


R = TypeVar("R", bound=_RunLike)


def last_runs(runs: Iterable[R]) -> dict[int, R]:
    """Each trial's run at the highest rung it reached: the trial's state."""
    out: dict[int, R] = {}
    for run in runs:
        if run.index not in out or run.rung > out[run.index].rung:
            out[run.index] = run
    return out


def start_order(total: int, seed: int) -> list[int]:
    """Trial indices in the order an ASHA sweep starts them: shuffled by `seed`, the same in every process.

    Async ASHA promotes the best 1/eta of the results in so far, so it sends up too many when results come
    in worst first. A grid in index order does that: its first trials share its first parameter's first
    value, and with a small model first they also finish first (the bench: 16 of 27 promoted from rung 0,
    where 9 is the rule's share). Built on `random.Random(seed).random()`, the sequence Python keeps
    stable across versions (unlike `shuffle`), so a restarted operator starts the same trial next."""
    rng = random.Random(seed)
    keys = [rng.random() for _ in range(total)]
    return sorted(range(total), key=keys.__getitem__)


def run_name(sweep: str, index: int, rung: int = 0) -> str:
    """A run's SeqTrainingJob: `<sweep>-<index>`, and `-r<rung>` after it for an ASHA promotion."""
    return f"{sweep}-{index}" if rung == 0 else f"{sweep}-{index}-r{rung}"


@dataclass(frozen=True)
class Run:
    """One run of trial `index`: its rung (0 without ASHA), searched `params`, phase ("" until the job
    has a status) and objective `value` (the mean over its replicates) once it succeeded with one."""

    index: int
    rung: int
    params: Mapping[str, Any]
    phase: str = ""
    value: Optional[float] = None

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL


@dataclass(frozen=True)
class Launch:
    """A run to start: trial `index` at `rung` with `params`; with ASHA its `budget` (max_steps), and from
    rung 1 on it resumes from the trial's run at rung - 1. `conditioned_on`: for TPE, the finished trials
    its parameters were suggested from (index ranges), or why none (a random startup draw); `promoted_as`:
    for a promotion, where the trial stood at the rung below among the results known then (asha.standing)."""

    index: int
    rung: int
    params: dict[str, Any]
    budget: Optional[int] = None
    conditioned_on: Optional[str] = None
    promoted_as: Optional[str] = None


class Search:
    """A sweep's search, made once from its spec (parameters, schedule and objective cannot change)."""

    def __init__(self, parameters: Mapping[str, Any], schedule: Optional[Mapping[str, Any]] = None,
                 objective: Optional[Mapping[str, Any]] = None) -> None:
        kinds = [k for k in KINDS if parameters.get(k) is not None]
        if len(kinds) != 1:
            raise SearchError(f"parameters: set exactly one of {', '.join(KINDS[:-1])} and {KINDS[-1]} "
                              f"(got {', '.join(kinds) or 'none'})")
        self.kind = kinds[0]
        asha = (schedule or {}).get("asha")
        self.asha = Asha.from_spec(asha) if asha is not None else None
        self.goal = str((objective or {}).get("goal", "min"))
        if (self.asha is not None or self.kind == "tpe") and not (objective or {}).get("metric"):
            raise SearchError("objective.metric: ASHA and TPE rank trials by the objective; set it")
        if self.kind == "tpe":
            check_space(parameters["tpe"])
            if not isinstance(parameters.get("trials"), int) or isinstance(parameters.get("trials"), bool) \
                    or parameters["trials"] < 1:
                raise SearchError(f"parameters.trials: TPE needs a number of trials >= 1, got {parameters.get('trials')!r}")
            self.space, self.seed = dict(parameters["tpe"]), int(parameters.get("seed", 0))
            self.points: Optional[list[dict[str, Any]]] = None
            self.total = int(parameters["trials"])
            startup = parameters.get("startupTrials")
            self.startup = default_startup(self.total) if startup is None else check_startup(startup)
        else:
            if parameters.get("startupTrials") is not None:
                raise SearchError("parameters.startupTrials: goes with tpe only")
            self.points = expand(parameters)
            self.total = count(parameters)
        # TPE decides a trial's parameters when it starts, so its index order says nothing about them
        self.order = (start_order(self.total, int(parameters.get("seed", 0)))
                      if self.asha is not None and self.points is not None else None)

    @property
    def algorithm(self) -> str:
        return self.kind + ("+asha" if self.asha else "")

    @property
    def top(self) -> int:
        return self.asha.top if self.asha else 0

    def check_name(self, sweep: str) -> None:
        """Every run's name must be a job name: ASHA's rung suffix needs room after the longest index."""
        longest = run_name(sweep, self.total - 1, self.top)
        if len(longest) > MAX_JOB_NAME_CHARS:
            raise SearchError(f"metadata.name: the runs are named <sweep>-<index>-r<rung>, and {longest} has "
                              f"{len(longest)} characters, more than {MAX_JOB_NAME_CHARS}; give the sweep a shorter name")

    def budget(self, rung: int) -> Optional[int]:
        return self.asha.budgets[rung] if self.asha else None

    def promotions(self, runs: Iterable[Run]) -> list[tuple[int, int]]:
        """(trial, rung) promotions the rule makes now that no run exists for yet."""
        if self.asha is None:
            return []
        runs = list(runs)
        return self.asha.promotions(_results(runs), {(r.index, r.rung) for r in runs}, self.goal)

    def plan(self, runs: Iterable[Run], room: int) -> list[Launch]:
        """Up to `room` runs to start now: promotions (highest rungs first), then new trials: the lowest
        indices, or with ASHA the first in `start_order`."""
        runs = list(runs)
        launches: list[Launch] = []
        params_of = {r.index: r.params for r in runs}
        promotions = self.promotions(runs)[:max(room, 0)]
        results = _results(runs) if promotions else []
        for index, rung in promotions:
            launches.append(Launch(index, rung, dict(params_of[index]), self.budget(rung),
                                   promoted_as=standing(results, index, rung - 1, self.goal)))
        taken = set(params_of)
        for index in self.order if self.order is not None else range(self.total):
            if len(launches) >= room:
                break
            if index not in taken:
                launches.append(self._new(index, runs, launches))
        return launches

    def done(self, runs: Iterable[Run]) -> bool:
        """Every trial has started, no run is active, and no promotion is due: nothing more will start."""
        runs = list(runs)
        return (len({r.index for r in runs}) >= self.total and all(r.finished for r in runs)
                and not self.promotions(runs))

    def _new(self, index: int, runs: list[Run], launches: list[Launch]) -> Launch:
        if self.points is not None:
            return Launch(index, 0, dict(self.points[index]), self.budget(0))
        # what this pass starts is in flight too (a promotion's trial is in `runs` already)
        history = self.observations(runs) + [Observation(l.index, l.params, "running") for l in launches if l.rung == 0]
        params = suggest(self.space, history, seed=self.seed, index=index, startup=self.startup, goal=self.goal)
        finished = [o.index for o in history if o.finished]
        if len(finished) < self.startup:
            seen = f"none: random until {self.startup} trials finish ({len(finished)} had)"
        else:
            seen = index_ranges(finished)
        return Launch(index, 0, params, self.budget(0), seen)

    def observations(self, runs: Iterable[Run]) -> list[Observation]:
        """Each trial as TPE sees it, from its highest run: complete at the top rung, pruned below it (with
        its value at that rung's budget), failed, or running."""
        out = []
        for run in last_runs(runs).values():
            if not run.finished:
                out.append(Observation(run.index, run.params, "running"))
            elif run.phase == "Failed" or run.value is None:
                out.append(Observation(run.index, run.params, "failed"))
            elif run.rung < self.top:
                out.append(Observation(run.index, run.params, "pruned", run.value, self.budget(run.rung)))
            else:
                out.append(Observation(run.index, run.params, "complete", run.value))
        return out


def _results(runs: Iterable[Run]) -> list[RungResult]:
    """The finished runs as ASHA ranks them: a failed run, or one without a value, has none."""
    return [RungResult(r.index, r.rung, r.value if r.phase == "Succeeded" else None) for r in runs if r.finished]
