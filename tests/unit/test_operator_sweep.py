"""SeqSweep logic without a cluster: the status as a function of the trials, and the reconciler's
decisions (which trials start, when status is written) against a fake API and hand-made indexes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from seqmodel.contract.sweep_plan import Launch, Search
from seqmodel_operator import constants as C
from seqmodel.contract import sweep_status as ss
from seqmodel_operator.reconcilers.sweep import SweepReconciler, trial_job, trial_of
from seqmodel_operator.settings import Settings

NS = "research"
NOW = "2026-11-22T00:00:00Z"


def sweep(name: str = "s", uid: str = "sweep-uid", **spec: Any) -> dict[str, Any]:
    body_spec = {"template": {"hparams": {"d_model": 32}, "output": {"claim": "out"}},
                 "parameters": {"grid": {"lr": [0.1, 0.2, 0.3], "n_layers": [1, 2]}}, **spec}
    return {"apiVersion": C.API_VERSION, "kind": C.SWEEP_KIND,
            "metadata": {"name": name, "namespace": NS, "uid": uid, "generation": 1}, "spec": body_spec}


def trial(index: int, phase: str = "", sweep_name: str = "s", message: str = "", **metrics: float) -> ss.Trial:
    return ss.Trial(index, f"{sweep_name}-{index}", phase, {k.replace("__", "/"): v for k, v in metrics.items()},
                    message, params=params(index + 1)[index])


def params(n: int) -> list[dict[str, Any]]:
    return [{"lr": i / 10} for i in range(n)]


def status_of(body: dict[str, Any], progress: ss.Progress, n: int) -> dict[str, Any]:
    """The status of a list search over params(n)."""
    search = Search({"list": params(n)})
    return ss.compute(body, progress, ss.SearchInfo(n, search.done(progress.plan_runs(None)), search.algorithm), NOW)


# --- status -----------------------------------------------------------------------------------------
def test_counts_and_the_best_trial_by_the_objective_goal() -> None:
    trials = [trial(0, "Succeeded", val__loss=0.5), trial(1, "Succeeded", val__loss=0.3), trial(2, "Running"),
              trial(3, "Failed", message="OOMKilled"), trial(4, "Succeeded", val__loss=0.9)]
    progress = ss.Progress.of(trials)
    low = status_of(sweep(objective={"metric": "val/loss"}), progress, 6)
    assert (low["phase"], low["trials"], low["created"], low["active"], low["succeeded"], low["failed"]) == \
        ("Running", 6, 5, 1, 3, 1)
    assert low["bestTrial"] == {"name": "s-1", "index": 1, "rung": 0, "value": 0.3, "replicates": 1,
                                 "hparams": {"lr": 0.1}}
    assert low["failures"] == [{"name": "s-3", "index": 3, "message": "OOMKilled"}]
    high = status_of(sweep(objective={"metric": "val/loss", "goal": "max"}), progress, 6)
    assert high["bestTrial"]["name"] == "s-4"
    assert "best val/loss = 0.9 (s-4)" in high["message"]


def test_ties_go_to_the_lowest_index_and_missing_or_odd_values_never_win() -> None:
    trials = [trial(5, "Succeeded", acc=0.7), trial(2, "Succeeded", acc=0.7), trial(1, "Succeeded"),
              ss.Trial(0, "s-0", "Succeeded", {"acc": None}), ss.Trial(3, "s-3", "Succeeded", {"acc": float("nan")}),
              trial(4, "Failed", acc=0.99)]
    assert ss.Progress.of(trials).best({"metric": "acc", "goal": "max"}).index == 2


def test_an_objective_metric_no_trial_reports_is_named_with_what_they_do_report() -> None:
    status = status_of(sweep(objective={"metric": "val/los"}), ss.Progress.of([trial(0, "Succeeded", val__loss=1.0)]),
                     3)
    assert "bestTrial" not in status
    assert "objective metric val/los is not among the trials' metrics: val/loss" in status["message"]


def test_more_failures_than_max_failed_trials_stop_the_sweep_and_say_why() -> None:
    failed = [trial(i, "Failed", message=f"exit {i}") for i in range(3)]
    body = sweep(maxFailedTrials=2)
    under = status_of(body, ss.Progress.of(failed[:2]), 6)
    assert under["phase"] == "Running"
    over = status_of(body, ss.Progress.of(failed + [trial(3, "Running")]), 6)
    cond = next(c for c in over["conditions"] if c["type"] == C.COND_SUCCEEDED)
    assert (over["phase"], cond["status"], cond["reason"]) == ("Failed", "False", ss.REASON_MAX_FAILED)
    assert "3 trials failed, more than maxFailedTrials (2)" in cond["message"]
    assert "completionTime" not in {k for k, v in over.items() if v is not None}  # trial 3 still runs
    # stopped stays stopped, and completes when the last trial ends
    later = status_of({**body, "status": over}, ss.Progress.of(failed + [trial(3, "Succeeded")]), 6)
    assert later["phase"] == "Failed" and later["completionTime"] == NOW


def test_reaching_the_target_stops_the_sweep_as_succeeded() -> None:
    body = sweep(objective={"metric": "acc", "goal": "max", "target": 0.9})
    assert status_of(body, ss.Progress.of([trial(0, "Succeeded", acc=0.8)]), 6)["phase"] == "Running"
    done = status_of(body, ss.Progress.of([trial(0, "Succeeded", acc=0.95)]), 6)
    assert done["phase"] == "Succeeded" and "s-0 reached the target: acc = 0.95 (target 0.9)" in done["message"]


def test_all_trials_finished_is_success_unless_every_one_failed() -> None:
    some = [trial(0, "Succeeded", x=1.0), trial(1, "Failed")]
    assert status_of(sweep(), ss.Progress.of(some), 2)["phase"] == "Succeeded"
    none = [trial(0, "Failed"), trial(1, "Failed")]
    status = status_of(sweep(), ss.Progress.of(none), 2)
    assert status["phase"] == "Failed" and status["message"] == "all 2 trials failed"
    # not finished while a created-but-unseen trial may still run
    assert status_of(sweep(), ss.Progress.of(some[:1], started={(1, 0): {}}), 2)["phase"] == "Running"


def test_suspended_sweep_says_so() -> None:
    status = status_of(sweep(suspend=True), ss.Progress.of([trial(0, "Running")]), 6)
    cond = next(c for c in status["conditions"] if c["type"] == C.COND_SUSPENDED)
    assert status["phase"] == "Suspended" and cond["status"] == "True"


def test_status_stays_small_whatever_the_number_of_trials() -> None:
    many = [trial(i, "Failed" if i % 3 == 0 else "Succeeded", message="x" * 5000, loss=float(i)) for i in range(20_000)]
    status = status_of(sweep(objective={"metric": "loss"}), ss.Progress.of(many), 20_000)
    assert status["failed"] == 6667 and len(status["failures"]) == C.MAX_FAILURES_SHOWN
    assert len(json.dumps(status)) < 10_000


def test_runs_started_here_and_not_seen_yet_are_active_and_their_indices_taken() -> None:
    progress = ss.Progress.of([trial(0, "Succeeded"), trial(1, "Running"), trial(3, "Running")],
                              started={(4, 0): {"lr": 0.4}, (1, 0): {}})
    assert progress.active == 3 and progress.created == 4 and progress.started == {(4, 0): {"lr": 0.4}}
    plan = Search({"list": params(10)}).plan(progress.plan_runs(None), room=5 - progress.active)
    assert [launch.index for launch in plan] == [2, 5]


def test_asha_status_counts_each_rung_and_the_best_trial_is_at_the_highest_rung() -> None:
    runs = [ss.Trial(i, f"s-{i}", "Succeeded", {"loss": v}, rung=0) for i, v in enumerate([0.5, 0.2, 0.9])]
    runs.append(ss.Trial(1, "s-1-r1", "Succeeded", {"loss": 0.3}, rung=1,
                         replicate_metrics=({"loss": 0.25}, {"loss": 0.35})))
    body = sweep(objective={"metric": "loss"}, parameters={"list": params(3)},
                 schedule={"asha": {"min": 20, "max": 180, "eta": 3}})
    search = Search(body["spec"]["parameters"], body["spec"]["schedule"], body["spec"]["objective"])
    progress = ss.Progress.of(runs)
    status = ss.compute(body, progress, ss.SearchInfo(3, search.done(progress.plan_runs("loss")), search.algorithm,
                                                      search.asha.budgets), NOW)
    # 3 trials: the best goes on to rung 1, where 1 result is too few (below eta) to promote anyone
    assert status["algorithm"] == "list+asha" and status["phase"] == "Succeeded"
    assert status["rungs"] == [
        {"rung": 0, "budget": 20, "started": 3, "succeeded": 3, "failed": 0, "promoted": 1, "stopped": 2, "best": 0.2},
        {"rung": 1, "budget": 60, "started": 1, "succeeded": 1, "failed": 0, "promoted": 0, "stopped": 1, "best": 0.3},
        {"rung": 2, "budget": 180, "started": 0, "succeeded": 0, "failed": 0}]
    best = status["bestTrial"]  # 0.3 after 60 steps beats 0.2 after 20: the higher rung wins
    assert (best["name"], best["rung"], best["value"], best["replicates"]) == ("s-1-r1", 1, 0.3, 2)
    assert best["sd"] == pytest.approx(0.0707, abs=1e-4)


# --- trials -----------------------------------------------------------------------------------------
def test_a_trial_is_the_template_with_its_parameters_owned_by_the_sweep() -> None:
    body = sweep(replicates=2, trialRetries=4)
    job = trial_job(body, Launch(7, 0, {"lr": 0.3, "d_model": 64}))
    assert job["metadata"]["name"] == "s-7"
    assert job["metadata"]["labels"] == {C.LABEL_SWEEP: "s", C.LABEL_SWEEP_UID: "sweep-uid", C.LABEL_TRIAL: "7"}
    assert json.loads(job["metadata"]["annotations"][C.ANNOTATION_PARAMS]) == {"d_model": 64, "lr": 0.3}
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (C.SWEEP_KIND, "sweep-uid", True)
    assert job["spec"]["hparams"] == {"d_model": 64, "lr": 0.3}
    assert (job["spec"]["replicates"], job["spec"]["backoffLimit"]) == (2, 4)
    assert body["spec"]["template"]["hparams"] == {"d_model": 32}  # the template is not changed
    assert "checkpoint" not in job["spec"] and C.ANNOTATION_CONDITIONED not in job["metadata"]["annotations"]


def test_an_asha_promotion_resumes_each_replicate_of_the_run_below_with_the_next_budget() -> None:
    job = trial_job(sweep(replicates=2), Launch(7, 2, {"lr": 0.3}, budget=180, conditioned_on="0-6",
                                                promoted_as="rank 2 of 7 finished at rung 1"))
    assert job["metadata"]["name"] == "s-7-r2" and job["metadata"]["labels"][C.LABEL_RUNG] == "2"
    assert job["spec"]["hparams"] == {"d_model": 32, "lr": 0.3, "max_steps": 180}
    assert job["spec"]["checkpoint"] == {"fromJob": "s-7-r1", "use": "resume", "eachReplicate": True}
    assert job["metadata"]["annotations"][C.ANNOTATION_CONDITIONED] == "0-6"
    assert job["metadata"]["annotations"][C.ANNOTATION_PROMOTED_AS] == "rank 2 of 7 finished at rung 1"


# --- the reconciler ------------------------------------------------------------------------------------
class FakeKube:
    """The two requests a sweep makes: create a trial (409 when it exists) and patch the status."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.refuse: set[int] = set()
        self.lists = 0

    def create_training_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        index = int(body["metadata"]["labels"][C.LABEL_TRIAL])
        if index in self.refuse:
            raise ApiException(status=422, reason="Invalid")
        if body["metadata"]["name"] in self.jobs:
            return None
        self.jobs[body["metadata"]["name"]] = body
        return body

    def patch_sweep_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        self.statuses.append(status)
        return status

    def get_training_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.jobs.get(name)

    def sweep_runs(self, namespace: str, sweep_uid: str) -> list[dict[str, Any]]:
        self.lists += 1
        return [j for j in self.jobs.values() if j["metadata"]["labels"][C.LABEL_SWEEP_UID] == sweep_uid]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def setup() -> tuple[SweepReconciler, FakeKube, Clock, dict, dict]:
    kube, clock = FakeKube(), Clock()
    r = SweepReconciler(kube, Settings(sweep_trial_rate=0), clock=clock)  # type: ignore[arg-type]
    bodies: dict[tuple[str, str], list[dict[str, Any]]] = {}
    trials: dict[tuple[str, str], list[ss.Trial]] = {}
    r.read_from(bodies, trials)
    yield r, kube, clock, bodies, trials
    for state in r.states.values():
        if state.timer is not None:
            state.timer.cancel()


def see(kube: FakeKube, trials: dict, uid: str = "sweep-uid", metrics: dict | None = None, **phases: str) -> None:
    """The trials' status on the server, `phases` by name (s_0="Succeeded") and `metrics`, and the index
    caught up with it."""
    for n, job in kube.jobs.items():
        job["status"] = {"phase": phases.get(n.replace("-", "_"), "Pending"), "metrics": (metrics or {}).get(n, {})}
    trials[(NS, uid)] = [trial_of(n, job["metadata"].get("labels") or {}, job["metadata"].get("annotations") or {},
                                  job["status"]) for n, job in kube.jobs.items()]


def test_starts_no_more_than_parallelism_even_before_the_watch_shows_them(setup) -> None:
    r, kube, clock, bodies, trials = setup
    bodies[(NS, "s")] = [sweep(parallelism=2)]
    r.poke((NS, "s"))
    assert sorted(kube.jobs) == ["s-0", "s-1"]
    r.poke((NS, "s"))  # the index has not seen them yet: they still count
    assert sorted(kube.jobs) == ["s-0", "s-1"]
    see(kube, trials, s_0="Succeeded")
    r.poke((NS, "s"))
    assert sorted(kube.jobs) == ["s-0", "s-1", "s-2"]
    assert kube.jobs["s-2"]["spec"]["hparams"] == {"d_model": 32, "lr": 0.2, "n_layers": 1}


def test_a_restarted_operator_resumes_from_the_index_without_duplicates(setup) -> None:
    r, kube, clock, bodies, trials = setup
    bodies[(NS, "s")] = [sweep(parallelism=3)]
    r.poke((NS, "s"))
    see(kube, trials, s_0="Succeeded", s_1="Failed")
    fresh = SweepReconciler(kube, Settings(sweep_trial_rate=0), clock=clock)  # type: ignore[arg-type]
    fresh.read_from(bodies, trials)
    fresh.poke((NS, "s"))
    assert sorted(kube.jobs) == ["s-0", "s-1", "s-2", "s-3", "s-4"]
    status = kube.statuses[-1]
    assert (status["created"], status["active"], status["succeeded"], status["failed"]) == (5, 3, 1, 1)


def test_a_trial_that_exists_already_is_taken_as_started(setup) -> None:
    r, kube, clock, bodies, trials = setup
    kube.jobs["s-0"] = trial_job(sweep(), Launch(0, 0, {}))  # made by an operator that died before the watch saw it
    bodies[(NS, "s")] = [sweep(parallelism=2)]
    r.poke((NS, "s"))
    assert sorted(kube.jobs) == ["s-0", "s-1"] and kube.statuses[-1]["active"] == 2


def test_a_job_that_is_not_the_sweeps_holding_a_trials_name_stops_it_saying_so(setup) -> None:
    r, kube, clock, bodies, trials = setup
    kube.jobs["s-0"] = {"metadata": {"name": "s-0", "labels": {}}}  # a user's own job
    bodies[(NS, "s")] = [sweep(parallelism=2)]
    r.poke((NS, "s"))
    status = kube.statuses[-1]
    assert status["phase"] == "Failed" and "SeqTrainingJob s-0 exists and is not this sweep's" in status["message"]


def test_a_deleted_namesakes_trial_is_waited_for_not_taken_for_the_trial(setup) -> None:
    r, kube, clock, bodies, trials = setup
    kube.jobs["s-0"] = trial_job(sweep(uid="earlier"), Launch(0, 0, {}))  # the garbage collector has yet to take it
    bodies[(NS, "s")] = [sweep(parallelism=1)]
    r.poke((NS, "s"))
    assert kube.statuses == [] and r.states[(NS, "s")].started == {}  # nothing counted; a retry is due
    assert r.states[(NS, "s")].timer is not None
    del kube.jobs["s-0"]
    r.poke((NS, "s"))
    assert kube.jobs["s-0"]["metadata"]["labels"][C.LABEL_SWEEP_UID] == "sweep-uid"


def test_suspended_or_stopped_sweeps_start_nothing(setup) -> None:
    r, kube, clock, bodies, trials = setup
    bodies[(NS, "s")] = [sweep(parallelism=2, suspend=True)]
    r.poke((NS, "s"))
    assert kube.jobs == {} and kube.statuses[-1]["phase"] == "Suspended"
    bodies[(NS, "t")] = [sweep("t", "t-uid", parallelism=2, maxFailedTrials=0)]
    trials[(NS, "t-uid")] = [ss.Trial(0, "t-0", "Failed")]
    r.poke((NS, "t"))
    assert kube.jobs == {} and kube.statuses[-1]["phase"] == "Failed"


def test_a_refused_trial_fails_the_sweep_with_the_reason(setup) -> None:
    r, kube, clock, bodies, trials = setup
    kube.refuse = {1}
    bodies[(NS, "s")] = [sweep(parallelism=3)]
    r.poke((NS, "s"))
    assert sorted(kube.jobs) == ["s-0", "s-2"]  # created in parallel, and the sweep stops there
    status = kube.statuses[-1]
    assert status["phase"] == "Failed" and status["message"].startswith("trial 1 was refused")


def test_a_sweep_too_large_to_expand_fails_naming_the_field(setup) -> None:
    r, kube, clock, bodies, trials = setup
    huge = {"grid": {"lr": [i / 1000 for i in range(1000)], "seed": list(range(1000))}}
    bodies[(NS, "s")] = [sweep(parameters=huge)]
    r.poke((NS, "s"))
    assert kube.jobs == {}
    assert kube.statuses[-1]["message"].startswith("spec.parameters: 1000000 trials, more than")


def test_count_only_changes_are_written_at_most_once_a_second(setup) -> None:
    r, kube, clock, bodies, trials = setup
    bodies[(NS, "s")] = [sweep(parallelism=6)]
    r.poke((NS, "s"))
    assert len(kube.statuses) == 1  # Running, at once
    see(kube, trials, s_0="Running")
    r.poke((NS, "s"))
    see(kube, trials, s_0="Succeeded")
    r.poke((NS, "s"))
    assert len(kube.statuses) == 1  # counts changed within the second: a timer writes them later
    clock.t += 1.5
    r.poke((NS, "s"))
    assert len(kube.statuses) == 2 and kube.statuses[-1]["succeeded"] == 1
    r.poke((NS, "s"))
    assert len(kube.statuses) == 2  # nothing changed: nothing written
    see(kube, trials, **{f"s_{i}": "Succeeded" for i in range(6)})
    r.poke((NS, "s"))
    assert len(kube.statuses) == 3 and kube.statuses[-1]["phase"] == "Succeeded"  # a phase change: at once


def test_a_deleted_sweep_is_forgotten_and_a_namesake_starts_afresh(setup) -> None:
    r, kube, clock, bodies, trials = setup
    bodies[(NS, "s")] = [sweep(parallelism=1)]
    r.poke((NS, "s"))
    r.forget((NS, "s"), "sweep-uid")
    assert r.states == {}
    del bodies[(NS, "s")]
    r.poke((NS, "s"))  # a trial's event after the sweep is gone: nothing to do
    assert r.states == {}


def test_every_trial_start_takes_a_token_from_the_trial_rate_bucket(setup) -> None:
    r, kube, clock, bodies, trials = setup

    class Counting:
        taken = 0

        def take(self) -> None:
            Counting.taken += 1

    r.creations = Counting()  # type: ignore[assignment]
    bodies[(NS, "s")] = [sweep(parallelism=4)]
    r.poke((NS, "s"))
    assert len(kube.jobs) == Counting.taken == 4
    assert SweepReconciler(kube, Settings(sweep_trial_rate=7.0)).creations.rate == 7.0  # type: ignore[arg-type]


def test_an_asha_sweep_promotes_by_resuming_and_ends_with_its_best_at_the_top_rung(setup) -> None:
    r, kube, clock, bodies, trials = setup
    body = sweep(parallelism=9, objective={"metric": "loss"}, schedule={"asha": {"min": 20, "max": 180, "eta": 3}})
    bodies[(NS, "s")] = [body]
    r.poke((NS, "s"))
    assert sorted(kube.jobs) == [f"s-{i}" for i in range(6)]  # the grid has 6 trials
    assert {job["spec"]["hparams"]["max_steps"] for job in kube.jobs.values()} == {20}
    losses = {f"s-{i}": {"loss": v} for i, v in enumerate([0.6, 0.2, 0.5, 0.4, 0.9, 0.3])}
    see(kube, trials, metrics=losses, **{f"s_{i}": "Succeeded" for i in range(6)})
    r.poke((NS, "s"))
    assert sorted(n for n in kube.jobs if "-r" in n) == ["s-1-r1", "s-5-r1"]  # the top third of 6
    assert kube.jobs["s-1-r1"]["spec"]["checkpoint"]["fromJob"] == "s-1"
    losses.update({"s-1-r1": {"loss": 0.15}, "s-5-r1": {"loss": 0.1}})
    see(kube, trials, metrics=losses, **{f"s_{i}": "Succeeded" for i in range(6)}, s_1_r1="Succeeded",
        s_5_r1="Succeeded")
    r.poke((NS, "s"))
    assert sorted(n for n in kube.jobs if "-r2" in n) == []  # 2 finished rung 1: below eta, nobody goes on
    status = kube.statuses[-1]
    assert status["phase"] == "Succeeded" and status["bestTrial"]["name"] == "s-5-r1"


def test_a_promotion_is_decided_on_a_snapshot_of_the_runs_not_on_a_stale_index(setup) -> None:
    """kopf updates the index object by object: it may show s-4 finished before the better s-1 and s-5
    that finished earlier. On that view s-4 is the best of three; in fact it is fourth of six."""
    r, kube, clock, bodies, trials = setup
    bodies[(NS, "s")] = [sweep(parallelism=6, objective={"metric": "loss"},
                               schedule={"asha": {"min": 20, "max": 180, "eta": 3}})]
    r.poke((NS, "s"))
    losses = {f"s-{i}": {"loss": v} for i, v in enumerate([0.6, 0.2, 0.5, 0.4, 0.9, 0.3])}
    see(kube, trials, metrics=losses, **{f"s_{i}": "Succeeded" for i in range(6)})
    trials[(NS, "sweep-uid")] = [t for t in trials[(NS, "sweep-uid")] if t.name in ("s-0", "s-3", "s-4")]
    assert kube.lists == 0
    r.poke((NS, "s"))
    assert kube.lists == 1  # the index's view would promote s-3: the pass listed the runs
    assert sorted(n for n in kube.jobs if "-r" in n) == ["s-1-r1", "s-5-r1"]
    assert kube.jobs["s-1-r1"]["metadata"]["annotations"][C.ANNOTATION_PROMOTED_AS] == "rank 1 of 6 finished at rung 0"


def test_a_tpe_sweep_records_what_each_suggestion_saw(setup) -> None:
    r, kube, clock, bodies, trials = setup
    space = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-1}}
    bodies[(NS, "s")] = [sweep(parallelism=2, objective={"metric": "loss"},
                               parameters={"tpe": space, "trials": 4, "seed": 1})]
    r.poke((NS, "s"))
    assert [kube.jobs[n]["metadata"]["annotations"][C.ANNOTATION_CONDITIONED] for n in ("s-0", "s-1")] == [
        "none: random until 2 trials finish (0 had)"] * 2  # 2: the startup draws of a 4-trial sweep
    first = kube.jobs["s-0"]["spec"]["hparams"]["lr"]
    see(kube, trials, metrics={"s-0": {"loss": 1.0}, "s-1": {"loss": 2.0}}, s_0="Succeeded", s_1="Succeeded")
    r.poke((NS, "s"))
    assert kube.jobs["s-2"]["metadata"]["annotations"][C.ANNOTATION_CONDITIONED] == "0-1"
    assert json.loads(kube.jobs["s-0"]["metadata"]["annotations"][C.ANNOTATION_PARAMS]) == {"lr": first}


def test_an_asha_sweeps_name_must_leave_room_for_its_rungs(setup) -> None:
    r, kube, clock, bodies, trials = setup
    name = "s" * C.MAX_SWEEP_NAME_CHARS
    random = {"random": {"lr": {"distribution": "uniform", "low": 0.1, "high": 0.2}}, "trials": 1000}
    bodies[(NS, name)] = [sweep(name, objective={"metric": "loss"}, schedule={"asha": {"min": 1, "max": 9}},
                                parameters=random)]  # s...s-999-r2: 46 characters
    r.poke((NS, name))
    assert kube.jobs == {} and kube.statuses[-1]["message"].startswith("metadata.name: the runs are named <sweep>-<index>-r<rung>")
