"""TPE suggestions (Optuna's TPESampler) rebuilt from a sweep's own trials, with no storage of their own.

Each decision makes a fresh in-memory study of the trials known at that moment: finished ones with their
objective value (a trial that ASHA stopped below the top rung as pruned, with its value at the step it
reached, which is how Optuna's TPE ranks a pruned trial), failed ones as failed, and those in flight as
running, which the constant liar counts as poor so that parallel suggestions spread out. It then asks for
one trial, with the sampler seeded by (sweep seed, trial index). Until `startup` trials have finished,
TPE's draws are random (Optuna's n_startup_trials). The same history gives the same trial
whichever process asks, so a restarted operator makes the decision it would have made; Katib's
in-memory study, by contrast, cannot rebuild its history after a restart (katib#1067).

Optuna is imported when a suggestion is asked for: the rest of seqmodel.contract stays cheap to import.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional, Sequence

from seqmodel.contract.space import SearchError, check_distribution

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

STATES = ("complete", "pruned", "failed", "running")
CHOICE_TYPES = (type(None), bool, int, float, str)  # what an Optuna categorical can hold


@dataclass(frozen=True)
class Observation:
    """A trial as TPE sees it: its searched `params`, its `state` (one of STATES), and for complete and
    pruned trials the objective `value`, measured at `step` for a pruned one."""

    index: int
    params: Mapping[str, Any]
    state: str
    value: Optional[float] = None
    step: Optional[int] = None

    @property
    def finished(self) -> bool:
        return self.state in ("complete", "pruned")


def check_space(space: Mapping[str, Mapping[str, Any]], field: str = "tpe") -> None:
    """The distributions of a TPE space: those of random search, with choices Optuna can hold."""
    if not space:
        raise SearchError(f"{field}: the space is empty")
    for name in sorted(space):
        check_distribution(name, space[name], field)
        for value in space[name].get("values") or ():
            if not isinstance(value, CHOICE_TYPES):
                raise SearchError(f"{field}.{name}.values: TPE chooses among numbers, strings, booleans and "
                                  f"null, got {value!r}")


def distributions(space: Mapping[str, Mapping[str, Any]]) -> dict[str, "BaseDistribution"]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for name in sorted(space):
        spec = space[name]
        kind = spec["distribution"]
        if kind == "choice":
            out[name] = CategoricalDistribution(tuple(spec["values"]))
        elif kind == "int":
            out[name] = IntDistribution(int(spec["low"]), int(spec["high"]))
        else:
            out[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=kind == "loguniform")
    return out


def default_startup(trials: int) -> int:
    """Random draws before TPE models: a quarter of the trials, from 2 up to Optuna's own 10. Optuna's
    fixed 10 suits studies of a hundred trials; in a sweep of 12 it would leave TPE two trials to
    choose (the bench measured that: no better than random search)."""
    return min(10, max(2, trials // 4))


def check_startup(value: Any, field: str = "parameters.startupTrials") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SearchError(f"{field}: expected a whole number >= 1, got {value!r}")
    return value


def sampler_seed(seed: int, index: int) -> int:
    """The sampler's seed for trial `index` of a sweep seeded `seed`: distinct per index, fixed per pair."""
    return (int(seed) * 1_000_003 + int(index)) % 2**32


def suggest(space: Mapping[str, Mapping[str, Any]], history: Sequence[Observation], *, seed: int, index: int,
            startup: int, goal: str = "min") -> dict[str, Any]:
    """Trial `index`'s parameters, from the `history` known when it is decided (its order does not matter):
    a random draw while fewer than `startup` trials have finished."""
    import optuna
    from optuna.trial import TrialState, create_trial

    dists = distributions(space)
    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL,
              "running": TrialState.RUNNING}
    with _quiet(optuna):
        sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, index), n_startup_trials=startup,
                                             multivariate=True, constant_liar=True)
        study = optuna.create_study(sampler=sampler, direction="maximize" if goal == "max" else "minimize")
        for obs in sorted(history, key=lambda o: o.index):
            params = {name: obs.params[name] for name in dists}
            if obs.state == "pruned":
                study.add_trial(create_trial(params=params, distributions=dists, state=TrialState.PRUNED,
                                             intermediate_values={int(obs.step or 0): float(obs.value)}))
            else:
                value = float(obs.value) if obs.state == "complete" else None
                study.add_trial(create_trial(params=params, distributions=dists, state=states[obs.state],
                                             value=value))
        return dict(study.ask(dists).params)


def index_ranges(indices: Iterable[int]) -> str:
    """Trial indices as ranges ("0-3,5,8-9"): what a suggestion was conditioned on, short enough for an
    annotation however many trials there are in a run of indices."""
    parts, run = [], []
    for i in sorted(set(indices)):
        if run and i != run[-1] + 1:
            parts.append(_span(run))
            run = []
        run.append(i)
    if run:
        parts.append(_span(run))
    return ",".join(parts)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


@contextlib.contextmanager
def _quiet(optuna: Any) -> Iterator[None]:
    """No "study created" lines and no experimental-feature warnings (multivariate, constant liar), and the
    caller's Optuna verbosity as it was."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
