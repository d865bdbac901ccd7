"""seqmodel.job.search: search spaces (the order is the operator's contract), submit_all, and sweep() with
its handle against a fake API."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from job_api_support import NAMESPACE, FakeKube, NamingOperator, finish
from seqmodel.job import Job, SweepFailed, WaitTimeout, search
from seqmodel.job.defaults import CONFIG_ENV
from seqmodel.job.search import SearchError, check_parameters, count, expand, grid, random, submit_all, sweep, tpe
from seqmodel.contract import JOB_PLURAL, LABEL_SWEEP, LABEL_TRIAL, SWEEP_PLURAL
from seqmodel.job.sweep import Sweep

BASE = {"d_model": 32, "max_steps": 10}


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


# --- search spaces --------------------------------------------------------------------------------------
def test_grid_is_every_combination_with_the_last_sorted_name_fastest() -> None:
    points = grid(BASE, {"lr": [0.1, 0.2], "dropout": [0.0, 0.1, 0.2]})
    assert [(p["dropout"], p["lr"]) for p in points] == [(d, lr) for d in (0.0, 0.1, 0.2) for lr in (0.1, 0.2)]
    assert all(p["d_model"] == 32 for p in points)


def test_random_is_reproducible_and_inside_its_ranges() -> None:
    space = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
             "n_layers": {"distribution": "int", "low": 1, "high": 3},
             "dropout": {"distribution": "uniform", "low": 0.0, "high": 0.5},
             "encoder": {"distribution": "choice", "values": ["transformer"]}}
    points = random(BASE, space, 50, seed=3)
    assert points == random(BASE, space, 50, seed=3) != random(BASE, space, 50, seed=4)
    assert all(1e-4 <= p["lr"] <= 1e-2 and p["n_layers"] in (1, 2, 3) and 0 <= p["dropout"] <= 0.5 for p in points)
    assert {p["n_layers"] for p in points} == {1, 2, 3}
    assert sum(math.log10(p["lr"]) < -3 for p in points) > 10  # log-uniform: the low decade is not starved


def test_expand_and_count_agree_for_every_kind() -> None:
    for parameters in ({"grid": {"lr": [1, 2], "dropout": [0.0, 0.1, 0.2]}},
                       {"random": {"lr": {"distribution": "uniform", "low": 0, "high": 1}}, "trials": 4, "seed": 1},
                       {"list": [{"lr": 0.1}, {"lr": 0.2, "dropout": 0.1}]}):
        assert len(expand(parameters, BASE)) == count(parameters)
    assert expand({"list": [{"lr": 0.1}]}, BASE) == [{**BASE, "lr": 0.1}]


@pytest.mark.parametrize("parameters, message", [
    ({"grid": {"lr": []}}, "grid.lr: the list of values is empty"),
    ({"grid": {"lr": "0.1"}}, "grid.lr: expected a list of values"),
    ({"grid": {"lr": [0.1]}, "list": [{}]}, "set exactly one of grid, random, list and tpe .got grid, list."),
    ({"random": {"lr": {"distribution": "normal", "low": 0, "high": 1}}, "trials": 2}, "random.lr.distribution"),
    ({"random": {"lr": {"distribution": "uniform", "low": 0, "high": 1}}}, "parameters.trials"),
    ({"random": {"lr": {"distribution": "loguniform", "low": 0, "high": 1}}, "trials": 2}, "loguniform needs low > 0"),
    ({"grid": {"lr": ["fast"]}}, r"parameters.grid \(trial 0\): hparam 'lr'"),
    ({"list": [{"lr": 0.1}, {"d_modle": 3}]}, r"parameters.list\[1\]: unknown hparam 'd_modle'"),
    ({"grid": {"default_root_dir": ["a"]}}, "parameters.grid.default_root_dir: set by the job"),
    ({"grid": {"lr": list(range(1000)), "seed": list(range(1000))}}, "1000000 trials, more than a sweep runs"),
])
def test_bad_search_spaces_name_the_parameter(parameters: dict, message: str) -> None:
    with pytest.raises(SearchError, match=message):
        check_parameters(parameters, BASE)


# --- submit_all -----------------------------------------------------------------------------------------
def test_submit_all_creates_every_job_before_waiting_for_names(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator())
    jobs = submit_all(grid(BASE, {"lr": [0.1, 0.2, 0.3]}), name="lr", api=api, output={"claim": "o"},
                      output_dir=str(tmp_path))
    assert [j.name for j in jobs] == ["lr-0", "lr-1", "lr-2"]
    assert [c for c in api.calls if c[0] == "create"] == [("create", JOB_PLURAL, f"lr-{i}") for i in range(3)]
    assert [c[0] for c in api.calls[:4]] == ["create", "create", "create", "get"]
    assert [j.canonical for j in jobs] == [f"dm=32,lr={lr}" for lr in (0.1, 0.2, 0.3)]


def test_submit_all_checks_every_point_before_submitting_any() -> None:
    api = FakeKube(NamingOperator())
    with pytest.raises(ValueError, match="unknown hparam 'lrr'"):
        submit_all([{"lr": 0.1}, {"lrr": 0.2}], api=api, output={"claim": "o"})
    assert api.calls == []


# --- sweep ----------------------------------------------------------------------------------------------
def test_sweep_creates_a_seqsweep_from_base_hparams_and_settings() -> None:
    api = FakeKube()
    handle = sweep("lr", BASE, {"grid": {"lr": [0.1, 0.2]}}, parallelism=2, replicates=2, api=api,
                   output={"claim": "o"}, data={"claim": "d"}, resources={"gpus": 1})
    body = api.objects[(SWEEP_PLURAL, NAMESPACE, "lr")]
    assert body["kind"] == "SeqSweep" and body["apiVersion"] == "seqmodel.dev/v1alpha1"
    assert body["spec"] == {"template": {"mode": "train", "hparams": BASE, "output": {"claim": "o"},
                                         "data": {"claim": "d"}, "resources": {"gpus": 1}},
                            "parameters": {"grid": {"lr": [0.1, 0.2]}}, "replicates": 2, "parallelism": 2,
                            "objective": {"metric": "val/loss", "goal": "min"}, "suspend": False}
    assert isinstance(handle, Sweep) and handle.namespace == NAMESPACE


def test_a_tpe_sweep_with_asha_is_sent_as_the_operator_reads_it() -> None:
    api = FakeKube()
    space = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
             "n_layers": {"distribution": "choice", "values": [1, 2]}}
    sweep("t", BASE, tpe(space, trials=30, seed=2), asha={"min": 20, "max": 180, "eta": 3}, api=api,
          output={"claim": "o"})
    spec = api.objects[(SWEEP_PLURAL, NAMESPACE, "t")]["spec"]
    assert spec["parameters"] == {"tpe": space, "trials": 30, "seed": 2}
    assert spec["schedule"] == {"asha": {"min": 20, "max": 180, "eta": 3}}
    assert check_parameters(spec["parameters"], BASE, spec["schedule"]) == 30
    assert tpe(space, trials=30, startup_trials=5)["startupTrials"] == 5
    with pytest.raises(SearchError, match="startup_trials: expected a whole number >= 1, got 0"):
        tpe(space, trials=30, startup_trials=0)


def test_sweep_takes_a_jobs_spec_or_a_spec_as_its_template() -> None:
    api = FakeKube()
    job = Job(BASE, api=api, output={"claim": "o"}, replicates=3, namespace="team", backoff_limit=1)
    sweep("a", job, {"list": [{"lr": 0.1}]}, trial_retries=2, max_failed_trials=0,
          objective={"metric": "val/masked_acc", "goal": "max", "target": 0.9}, api=api)
    spec = api.objects[(SWEEP_PLURAL, "team", "a")]["spec"]
    assert spec["template"] == {"mode": "train", "hparams": BASE, "output": {"claim": "o"}}  # the sweep's fields
    assert (spec["trialRetries"], spec["maxFailedTrials"]) == (2, 0)
    sweep("c", job, {"list": [{"lr": 0.1}]}, api=api)
    assert api.objects[(SWEEP_PLURAL, "team", "c")]["spec"]["trialRetries"] == 1  # the job's backoff_limit
    assert spec["objective"] == {"metric": "val/masked_acc", "goal": "max", "target": 0.9}
    sweep("b", {"hparams": {"lr": 0.1}, "mode": "train"}, {"grid": {"dropout": [0.1]}}, api=api)
    assert api.objects[(SWEEP_PLURAL, NAMESPACE, "b")]["spec"]["template"] == {"hparams": {"lr": 0.1}, "mode": "train"}


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "s" * 40}, "sweep name 'sss*': .* at most 39 characters"),
    ({"parameters": {"grid": {"lr": []}}}, "grid.lr: the list of values is empty"),
    ({"parallelism": 0}, "parallelism: expected a whole number >= 1, got 0"),
    ({"objective": {"metric": "val/loss", "goal": "lowest"}}, "objective.goal: expected min or max"),
    ({"objective": {"goal": "min"}}, "objective.metric: name the metric"),
    ({"template": {"hparams": {"lrr": 0.1}}}, "hparams: unknown hparam 'lrr'"),
    ({"asha": {"min": 20}}, "schedule.asha.max: expected a whole number"),
    ({"asha": {"min": 20, "max": 180, "eta": 1}}, "schedule.asha.eta: must be at least 2"),
    ({"name": "s" * 39, "asha": {"min": 1, "max": 9},
      "parameters": {"grid": {"lr": [i / 1000 for i in range(101)]}}}, "s-100-r2 has 46 characters"),
    ({"parameters": {"tpe": {"lr": {"distribution": "uniform", "low": -1.0, "high": 1.0}}, "trials": 3}},
     r"parameters.tpe.lr.low: hparam 'lr'"),
    ({"parameters": {"tpe": {"dropout": {"distribution": "choice", "values": [[0.1]]}}, "trials": 3}},
     "tpe.dropout.values: TPE chooses among"),
])
def test_bad_sweeps_are_refused_before_anything_is_sent(kwargs: dict, message: str) -> None:
    api = FakeKube()
    args = {"name": "s", "template": BASE, "parameters": {"grid": {"lr": [0.1]}}, **kwargs}
    with pytest.raises(ValueError, match=message):
        sweep(args.pop("name"), args.pop("template"), args.pop("parameters"), api=api, output={"claim": "o"}, **args)
    assert api.objects == {}


def _trial(api: FakeKube, sweep_name: str, index: int, lr: float) -> dict:
    body = {"apiVersion": "seqmodel.dev/v1alpha1", "kind": "SeqTrainingJob",
            "metadata": {"name": f"{sweep_name}-{index}", "labels": {LABEL_SWEEP: sweep_name, LABEL_TRIAL: str(index)}},
            "spec": {"hparams": {**BASE, "lr": lr}, "output": {"claim": "o"}}}
    return api.create(JOB_PLURAL, NAMESPACE, body)


def test_the_handle_reads_the_operators_status(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator(delay=0))
    handle = sweep("lr", BASE, {"grid": {"lr": [0.1, 0.2, 0.3]}}, api=api, output={"claim": "o"},
                   output_dir=str(tmp_path))
    assert (handle.status().phase, handle.status().trials, handle.best()) == ("Pending", 0, None)
    obj = api.objects[(SWEEP_PLURAL, NAMESPACE, "lr")]
    obj["status"] = {"phase": "Running", "trials": 3, "created": 2, "active": 1, "succeeded": 1, "failed": 0,
                     "bestTrial": {"name": "lr-1", "index": 1, "hparams": {"lr": 0.2}, "value": 1.1}}
    status = handle.status()
    assert (status.trials, status.created, status.active, status.succeeded, status.finished) == (3, 2, 1, 1, 1)
    best = handle.best()
    assert (best.name, best.index, best.hparams, best.value) == ("lr-1", 1, {"lr": 0.2}, 1.1)
    with pytest.raises(WaitTimeout, match="sweep lr is still Running after 0 s"):
        handle.wait(timeout=0, progress=False)
    for index, lr in ((1, 0.2), (0, 0.1)):
        _trial(api, "lr", index, lr)
    _trial(api, "other", 0, 0.5)
    trials = handle.trials()
    assert [t.name for t in trials] == ["lr-0", "lr-1"]
    assert trials[1].outputs() == [tmp_path / "runs" / "dm=32,lr=0.2" / "version_0"]
    finish(api.objects[(JOB_PLURAL, NAMESPACE, "lr-1")])
    assert trials[1].status().phase == "Succeeded"
    obj["status"].update(phase="Succeeded", succeeded=3, active=0, created=3)
    assert handle.wait(timeout=5, poll=0.01, progress=False).succeeded == 3
    assert handle.delete() and not handle.delete()


def test_a_failed_sweep_says_why(tmp_path: Path) -> None:
    api = FakeKube()
    handle = sweep("lr", BASE, {"grid": {"lr": [0.1, 0.2]}}, max_failed_trials=0, api=api, output={"claim": "o"})
    api.objects[(SWEEP_PLURAL, NAMESPACE, "lr")]["status"] = {
        "phase": "Failed", "trials": 2, "created": 1, "failed": 1,
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "TooManyFailures",
                        "message": "1 trial failed, more than maxFailedTrials (0)"}],
        "failures": [{"name": "lr-0", "index": 0, "message": "hparam 'x' is bad"}]}
    with pytest.raises(SweepFailed, match=r"sweep lr failed: 1 trial failed, more than maxFailedTrials \(0\)") as err:
        handle.wait(timeout=5, poll=0.01, progress=False)
    assert err.value.status.failures[0].message == "hparam 'x' is bad"
    assert handle.wait(progress=False, check=False).phase == "Failed"


def test_a_handle_by_name_and_a_missing_sweep() -> None:
    api = FakeKube()
    sweep("lr", BASE, {"grid": {"lr": [0.1]}}, api=api, output={"claim": "o"})
    assert Sweep("lr", api=api).status().name == "lr"
    with pytest.raises(Exception, match="SeqSweep research/gone does not exist"):
        Sweep("gone", api=api).status()
    assert search.MAX_TRIALS == 100_000
