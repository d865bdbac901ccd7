"""ASHA's promotion rule and TPE's suggestions: pure functions of a sweep's history (seqmodel.contract)."""

from __future__ import annotations

import math
import statistics

import pytest

from seqmodel.contract.asha import Asha, RungResult, ranking
from seqmodel.contract.space import SearchError, expand
from seqmodel.contract.sweep_plan import Run, Search, start_order
from seqmodel.contract.tpe import Observation, check_space, default_startup, index_ranges, sampler_seed, suggest

ASHA = Asha(min=20, max=180, eta=3)


# --- ASHA ----------------------------------------------------------------------------------------------------
def test_rungs_grow_by_eta_up_to_max() -> None:
    assert ASHA.budgets == (20, 60, 180) and ASHA.top == 2
    assert Asha(20, 100, 3).budgets == (20, 60, 100)  # the top rung is max, even off the geometric ladder
    assert Asha(5, 5, 2).budgets == (5,)


def results(rung: int, values: dict[int, float | None]) -> list[RungResult]:
    return [RungResult(index, rung, value) for index, value in values.items()]


def test_the_top_third_of_each_rung_is_promoted_best_first() -> None:
    rung0 = results(0, {0: 0.9, 1: 0.5, 2: 0.7, 3: 0.4, 4: 0.8, 5: 0.6})
    assert ASHA.promotions(rung0, promoted=[]) == [(3, 1), (1, 1)]  # 6 finished: the best 2
    assert ASHA.promotions(rung0, promoted=[(3, 1)]) == [(1, 1)]  # made before: not again
    assert ASHA.promotions(rung0, promoted=[], goal="max") == [(0, 1), (4, 1)]


def test_nothing_is_promoted_before_eta_trials_finish_a_rung_and_more_as_they_do() -> None:
    assert ASHA.promotions(results(0, {0: 0.5, 1: 0.4}), promoted=[]) == []
    assert ASHA.promotions(results(0, {0: 0.5, 1: 0.4, 2: 0.6}), promoted=[]) == [(1, 1)]
    # a better trial finishes later: it is promoted too once the rung's top third has room, and the earlier
    # promotion stands although it is no longer in the top third of six
    later = results(0, {0: 0.5, 1: 0.4, 2: 0.6, 3: 0.1, 4: 0.2, 5: 0.3})
    assert ASHA.promotions(later, promoted=[(1, 1)]) == [(3, 1), (4, 1)]


def test_ties_go_to_the_lower_index_and_failures_take_no_part() -> None:
    tied = results(0, {7: 0.5, 2: 0.5, 4: 0.9})
    assert ASHA.promotions(tied, promoted=[]) == [(2, 1)]
    failed = results(0, {0: None, 1: math.nan, 2: 0.3, 3: 0.2})  # two ranked: below eta, nothing promoted
    assert ranking(failed) == [3, 2] and ASHA.promotions(failed, promoted=[]) == []


def test_higher_rungs_are_promoted_first_and_the_top_rung_never() -> None:
    history = (results(0, {i: 1.0 - i / 10 for i in range(9)})  # 9 finished rung 0: best 8, 7, 6
               + results(1, {8: 0.3, 7: 0.1, 6: 0.2})  # those 3 finished rung 1: best 7
               + results(2, {7: 0.05}))
    assert ASHA.promotions(history, promoted=[(8, 1), (7, 1), (6, 1)]) == [(7, 2)]
    assert ASHA.promotions(history, promoted=[(8, 1), (7, 1), (6, 1), (7, 2)]) == []


def test_replicate_means_rank_a_rung() -> None:
    # a trial's value is the mean over its replicates: the operator passes that mean
    means = {0: (0.5 + 0.1) / 2, 1: (0.35 + 0.35) / 2, 2: 0.4}
    assert ASHA.promotions(results(0, means), promoted=[]) == [(0, 1)]


@pytest.mark.parametrize("spec, message", [
    ({"min": 20}, "schedule.asha.max: expected a whole number"),
    ({"min": 0, "max": 10}, "schedule.asha.min: must be at least 1"),
    ({"min": 20, "max": 10}, "schedule.asha.max: must be at least min"),
    ({"min": 1, "max": 9, "eta": 1}, "schedule.asha.eta: must be at least 2"),
    ({"min": 1, "max": 9, "resource": "epochs"}, "schedule.asha.resource: expected one of max_steps"),
    ({"min": 1, "max": 9, "rungs": 3}, "schedule.asha.rungs: unknown setting"),
    ({"min": 1.5, "max": 9}, "schedule.asha.min: expected a whole number"),
])
def test_bad_schedules_are_refused_naming_the_field(spec: dict, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        Asha.from_spec(spec)


# --- TPE -----------------------------------------------------------------------------------------------------
SPACE = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1},
         "dropout": {"distribution": "uniform", "low": 0.0, "high": 0.3},
         "n_layers": {"distribution": "int", "low": 1, "high": 6},
         "positional_encoding": {"distribution": "choice", "values": ["sinusoidal", "rope"]}}


def objective(params: dict) -> float:
    return (math.log10(params["lr"]) + 2.5) ** 2 + params["dropout"] + 0.01 * params["n_layers"]


def history(n: int, seed: int = 0, startup: int = 10) -> list[Observation]:
    """n trials suggested one after another, each finished before the next is asked for."""
    out: list[Observation] = []
    for index in range(n):
        params = suggest(SPACE, out, seed=seed, index=index, startup=startup)
        out.append(Observation(index, params, "complete", objective(params)))
    return out


def test_the_same_history_and_seed_give_the_same_trial() -> None:
    past = history(12)
    first = suggest(SPACE, past, seed=0, index=12, startup=10)
    assert suggest(SPACE, list(reversed(past)), seed=0, index=12, startup=10) == first  # order does not matter
    assert suggest(SPACE, past, seed=1, index=12, startup=10) != first  # the sweep's seed does
    assert set(first) == set(SPACE) and 1e-4 <= first["lr"] <= 1e-1 and isinstance(first["n_layers"], int)


def test_a_new_finished_trial_changes_only_later_suggestions() -> None:
    past = history(12)
    before = [suggest(SPACE, past[:n], seed=0, index=n, startup=10) for n in range(10, 13)]
    assert [obs.params for obs in history(12)[10:12]] == before[:2]  # made again, the same trials
    extra = Observation(12, {"lr": 3e-3, "dropout": 0.0, "n_layers": 1, "positional_encoding": "rope"},
                        "complete", 0.0)
    assert suggest(SPACE, [*past, extra], seed=0, index=13, startup=10) != suggest(SPACE, past, seed=0, index=13,
                                                                               startup=10)


def test_tpe_concentrates_on_better_trials_than_its_random_start() -> None:
    past = history(30)
    # Optuna's first 10 trials are random draws; TPE's later ones are mostly near the optimum
    assert statistics.median(o.value for o in past[15:]) < statistics.median(o.value for o in past[:10]) / 2


def test_in_a_small_sweep_tpe_after_a_few_startup_trials_finds_better_than_random_draws() -> None:
    # 12 trials, best of each over 10 seeds: TPE from the 4th trial, against 12 random draws (startup 12)
    tpe = statistics.median(min(o.value for o in history(12, seed, startup=3)) for seed in range(10))
    drawn = statistics.median(min(o.value for o in history(12, seed, startup=12)) for seed in range(10))
    assert tpe < 0.8 * drawn, (tpe, drawn)
    assert (default_startup(1), default_startup(12), default_startup(30), default_startup(1000)) == (2, 3, 7, 10)


def test_trials_in_flight_pruned_and_failed_ones_are_taken() -> None:
    past = history(12)
    running = Observation(12, past[-1].params, "running")
    pruned = Observation(13, past[0].params, "pruned", value=5.0, step=20)
    failed = Observation(14, past[1].params, "failed")
    params = suggest(SPACE, [*past, running, pruned, failed], seed=0, index=15, startup=10)
    assert set(params) == set(SPACE)


def test_sampler_seeds_and_index_ranges() -> None:
    assert len({sampler_seed(0, i) for i in range(100)} | {sampler_seed(1, i) for i in range(100)}) == 200
    assert index_ranges([5, 0, 1, 2, 3, 8, 9, 3]) == "0-3,5,8-9" and index_ranges([]) == ""


@pytest.mark.parametrize("space, message", [
    ({}, "tpe: the space is empty"),
    ({"lr": {"distribution": "normal"}}, "tpe.lr.distribution: expected one of"),
    ({"x": {"distribution": "choice", "values": [[1, 2]]}}, "tpe.x.values: TPE chooses among"),
])
def test_bad_spaces_are_refused_naming_the_parameter(space: dict, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        check_space(space)


# --- the plan: which runs a sweep starts next ---------------------------------------------------------------
GRID9 = {"grid": {"lr": [1e-3, 2e-3, 4e-3], "dropout": [0.0, 0.1, 0.2]}}
OBJECTIVE = {"metric": "val/loss", "goal": "min"}


def test_without_a_schedule_the_plan_starts_the_lowest_new_indices() -> None:
    search = Search(GRID9)
    runs = [Run(0, 0, {}, "Succeeded", 1.0), Run(2, 0, {}, "Running")]
    assert [(l.index, l.rung, l.budget) for l in search.plan(runs, room=2)] == [(1, 0, None), (3, 0, None)]
    assert search.plan(runs, room=2)[0].params == expand(GRID9)[1]
    assert not search.done(runs) and search.total == 9


def test_asha_promotes_before_it_starts_new_trials_and_resumes_with_the_next_budget() -> None:
    search = Search(GRID9, {"asha": {"min": 20, "max": 180, "eta": 3}}, OBJECTIVE)
    runs = [Run(i, 0, expand(GRID9)[i], "Succeeded", v) for i, v in zip(start_order(9, 0), [0.5, 0.2, 0.9])]
    launches = search.plan(runs, room=2)
    assert [(l.index, l.rung, l.budget) for l in launches] == [(runs[1].index, 1, 60), (start_order(9, 0)[3], 0, 20)]
    assert launches[0].params == expand(GRID9)[runs[1].index]  # a promotion keeps its trial's parameters
    # it says what it was decided on; a new trial has no such record
    assert (launches[0].promoted_as, launches[1].promoted_as) == ("rank 1 of 3 finished at rung 0", None)


def test_asha_starts_grid_random_and_list_trials_in_an_order_shuffled_by_the_seed() -> None:
    asha = {"asha": {"min": 20, "max": 180, "eta": 3}}
    order = [l.index for l in Search(GRID9, asha, OBJECTIVE).plan([], room=9)]
    # pinned: a restarted operator, or another Python, must start the same trial next
    assert order == start_order(9, 0) == [3, 7, 5, 2, 8, 4, 1, 6, 0]
    assert [l.index for l in Search({**GRID9, "seed": 1}, asha, OBJECTIVE).plan([], room=9)] == start_order(9, 1) \
        != order
    assert all(l.params == expand(GRID9)[l.index] for l in Search(GRID9, asha, OBJECTIVE).plan([], room=9))
    started = [Run(i, 0, {}, "Running") for i in order[:4]]
    assert [l.index for l in Search(GRID9, asha, OBJECTIVE).plan(started, room=2)] == order[4:6]
    listed = {"list": [{"lr": 0.1 * (i + 1)} for i in range(9)]}
    assert [l.index for l in Search(listed, asha, OBJECTIVE).plan([], room=9)] == order
    # without ASHA start order changes nothing, and TPE chooses a trial's parameters when it starts
    assert [l.index for l in Search(GRID9).plan([], room=9)] == list(range(9))
    tpe = {"tpe": SPACE, "trials": 4}
    assert [l.index for l in Search(tpe, asha, OBJECTIVE).plan([], room=4)] == [0, 1, 2, 3]


def test_a_startup_draw_says_so_and_tpe_conditions_on_the_finished_trials_after() -> None:
    search = Search({"tpe": SPACE, "trials": 12, "startupTrials": 3}, objective=OBJECTIVE)
    done = [Run(o.index, 0, o.params, "Succeeded", o.value) for o in history(3)]
    (startup,) = search.plan(done[:2], room=1)
    assert startup.conditioned_on == "none: random until 3 trials finish (2 had)"
    (modelled,) = search.plan(done, room=1)
    assert modelled.conditioned_on == "0-2"
    assert Search({"tpe": SPACE, "trials": 12}, objective=OBJECTIVE).startup == 3  # a quarter of 12


def test_an_asha_sweep_is_done_when_no_promotion_is_due() -> None:
    search = Search(GRID9, {"asha": {"min": 20, "max": 180, "eta": 3}}, OBJECTIVE)
    rung0 = [Run(i, 0, {}, "Succeeded", float(i)) for i in range(9)]
    assert not search.done(rung0)  # 0, 1 and 2 are due at rung 1
    rung1 = [Run(i, 1, {}, "Succeeded", float(i)) for i in range(3)]
    assert not search.done(rung0 + rung1)  # 0 is due at rung 2
    assert search.done(rung0 + rung1 + [Run(0, 2, {}, "Succeeded", 0.0)])
    assert not search.done(rung0 + rung1 + [Run(0, 2, {}, "Running")])


def test_tpe_decides_each_new_trial_from_the_runs_known_then() -> None:
    search = Search({"tpe": SPACE, "trials": 20, "seed": 3}, objective=OBJECTIVE)
    runs = [Run(o.index, 0, o.params, "Succeeded", o.value) for o in history(12, seed=3)]
    runs.append(Run(12, 0, runs[0].params, "Running"))
    first, second = search.plan(runs, room=2)
    assert (first.index, second.index) == (13, 14) and first.conditioned_on == "0-11"
    # the second saw the first in flight (the constant liar), and the same history gives the same trials
    assert first.params != second.params
    assert [l.params for l in search.plan(runs, room=2)] == [first.params, second.params]


def test_tpe_sees_asha_stopped_trials_as_pruned_at_their_rung() -> None:
    search = Search({"tpe": SPACE, "trials": 9}, {"asha": {"min": 20, "max": 180, "eta": 3}}, OBJECTIVE)
    runs = [Run(0, 0, {}, "Succeeded", 0.5), Run(0, 1, {}, "Succeeded", 0.4), Run(0, 2, {}, "Succeeded", 0.3),
            Run(1, 0, {}, "Succeeded", 0.9), Run(2, 0, {}, "Failed"), Run(3, 0, {}, "Pending")]
    states = {o.index: (o.state, o.value, o.step) for o in search.observations(runs)}
    assert states == {0: ("complete", 0.3, None), 1: ("pruned", 0.9, 20), 2: ("failed", None, None),
                      3: ("running", None, None)}


@pytest.mark.parametrize("parameters, schedule, objective, message", [
    ({"grid": {"lr": [1]}, "tpe": SPACE}, None, OBJECTIVE, "parameters: set exactly one of grid, random, list and tpe"),
    ({"tpe": SPACE}, None, OBJECTIVE, "parameters.trials: TPE needs a number of trials"),
    ({"tpe": SPACE, "trials": 5}, None, None, "objective.metric: ASHA and TPE rank trials"),
    (GRID9, {"asha": {"min": 20, "max": 180}}, None, "objective.metric"),
    (GRID9, {"asha": {"min": 20}}, OBJECTIVE, "schedule.asha.max"),
    ({"tpe": SPACE, "trials": 5, "startupTrials": 0}, None, OBJECTIVE, "parameters.startupTrials: expected a whole"),
    ({"tpe": SPACE, "trials": 5, "startupTrials": True}, None, OBJECTIVE, "parameters.startupTrials"),
    ({**GRID9, "startupTrials": 3}, None, OBJECTIVE, "parameters.startupTrials: goes with tpe only"),
])
def test_bad_searches_are_refused_naming_the_field(parameters: dict, schedule: dict | None,
                                                   objective: dict | None, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        Search(parameters, schedule, objective)
