"""SeqSweep logic without a cluster: the status as a function of the trials, and the reconciler's
decisions (which trials start, when status is written) against a fake API and hand-made indexes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from seqmodel_operator import constants as C
from seqmodel_operator import sweep_status as ss
from seqmodel_operator.reconcilers.sweep import SweepReconciler, trial_job
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
                    message)


def params(n: int) -> list[dict[str, Any]]:
    return [{"lr": i / 10} for i in range(n)]


# --- status -----------------------------------------------------------------------------------------
def test_counts_and_the_best_trial_by_the_objective_goal() -> None:
    trials = [trial(0, "Succeeded", val__loss=0.5), trial(1, "Succeeded", val__loss=0.3), trial(2, "Running"),
              trial(3, "Failed", message="OOMKilled"), trial(4, "Succeeded", val__loss=0.9)]
    progress = ss.Progress.of(trials)
    low = ss.compute(sweep(objective={"metric": "val/loss"}), progress, params(6), NOW)
    assert (low["phase"], low["trials"], low["created"], low["active"], low["succeeded"], low["failed"]) == \
        ("Running", 6, 5, 1, 3, 1)
    assert low["bestTrial"] == {"name": "s-1", "index": 1, "value": 0.3, "hparams": {"lr": 0.1}}
    assert low["failures"] == [{"name": "s-3", "index": 3, "message": "OOMKilled"}]
    high = ss.compute(sweep(objective={"metric": "val/loss", "goal": "max"}), progress, params(6), NOW)
    assert high["bestTrial"]["name"] == "s-4"
    assert "best val/loss = 0.9 (s-4)" in high["message"]


def test_ties_go_to_the_lowest_index_and_missing_or_odd_values_never_win() -> None:
    trials = [trial(5, "Succeeded", acc=0.7), trial(2, "Succeeded", acc=0.7), trial(1, "Succeeded"),
              ss.Trial(0, "s-0", "Succeeded", {"acc": None}), ss.Trial(3, "s-3", "Succeeded", {"acc": float("nan")}),
              trial(4, "Failed", acc=0.99)]
    assert ss.Progress.of(trials).best({"metric": "acc", "goal": "max"}).index == 2


def test_an_objective_metric_no_trial_reports_is_named_with_what_they_do_report() -> None:
    status = ss.compute(sweep(objective={"metric": "val/los"}), ss.Progress.of([trial(0, "Succeeded", val__loss=1.0)]),
                        params(3), NOW)
    assert "bestTrial" not in status
    assert "objective metric val/los is not among the trials' metrics: val/loss" in status["message"]


def test_more_failures_than_max_failed_trials_stop_the_sweep_and_say_why() -> None:
    failed = [trial(i, "Failed", message=f"exit {i}") for i in range(3)]
    body = sweep(maxFailedTrials=2)
    under = ss.compute(body, ss.Progress.of(failed[:2]), params(6), NOW)
    assert under["phase"] == "Running"
    over = ss.compute(body, ss.Progress.of(failed + [trial(3, "Running")]), params(6), NOW)
    cond = next(c for c in over["conditions"] if c["type"] == C.COND_SUCCEEDED)
    assert (over["phase"], cond["status"], cond["reason"]) == ("Failed", "False", ss.REASON_MAX_FAILED)
    assert "3 trials failed, more than maxFailedTrials (2)" in cond["message"]
    assert "completionTime" not in {k for k, v in over.items() if v is not None}  # trial 3 still runs
    # stopped stays stopped, and completes when the last trial ends
    later = ss.compute({**body, "status": over}, ss.Progress.of(failed + [trial(3, "Succeeded")]), params(6), NOW)
    assert later["phase"] == "Failed" and later["completionTime"] == NOW


def test_reaching_the_target_stops_the_sweep_as_succeeded() -> None:
    body = sweep(objective={"metric": "acc", "goal": "max", "target": 0.9})
    assert ss.compute(body, ss.Progress.of([trial(0, "Succeeded", acc=0.8)]), params(6), NOW)["phase"] == "Running"
    done = ss.compute(body, ss.Progress.of([trial(0, "Succeeded", acc=0.95)]), params(6), NOW)
    assert done["phase"] == "Succeeded" and "s-0 reached the target: acc = 0.95 (target 0.9)" in done["message"]


def test_all_trials_finished_is_success_unless_every_one_failed() -> None:
    some = [trial(0, "Succeeded", x=1.0), trial(1, "Failed")]
    assert ss.compute(sweep(), ss.Progress.of(some), params(2), NOW)["phase"] == "Succeeded"
    none = [trial(0, "Failed"), trial(1, "Failed")]
    status = ss.compute(sweep(), ss.Progress.of(none), params(2), NOW)
    assert status["phase"] == "Failed" and status["message"] == "all 2 trials failed"
    # not finished while a created-but-unseen trial may still run
    assert ss.compute(sweep(), ss.Progress.of(some[:1], started=[1]), params(2), NOW)["phase"] == "Running"


def test_suspended_sweep_says_so() -> None:
    status = ss.compute(sweep(suspend=True), ss.Progress.of([trial(0, "Running")]), params(6), NOW)
    cond = next(c for c in status["conditions"] if c["type"] == C.COND_SUSPENDED)
    assert status["phase"] == "Suspended" and cond["status"] == "True"


def test_status_stays_small_whatever_the_number_of_trials() -> None:
    many = [trial(i, "Failed" if i % 3 == 0 else "Succeeded", message="x" * 5000, loss=float(i)) for i in range(20_000)]
    status = ss.compute(sweep(objective={"metric": "loss"}), ss.Progress.of(many), params(20_000), NOW)
    assert status["failed"] == 6667 and len(status["failures"]) == C.MAX_FAILURES_SHOWN
    assert len(json.dumps(status)) < 10_000


def test_next_indices_fill_the_room_parallelism_leaves_with_the_lowest_free_indices() -> None:
    progress = ss.Progress.of([trial(0, "Succeeded"), trial(1, "Running"), trial(3, "Running")], started=[4])
    assert progress.active == 3
    assert progress.next_indices(total=10, parallelism=5) == [2, 5]
    assert progress.next_indices(total=10, parallelism=3) == []
    assert ss.Progress.of([trial(i, "Succeeded") for i in range(4)]).next_indices(5, 8) == [4]


# --- trials -----------------------------------------------------------------------------------------
def test_a_trial_is_the_template_with_its_parameters_owned_by_the_sweep() -> None:
    body = sweep(replicates=2, trialRetries=4)
    job = trial_job(body, 7, {"lr": 0.3, "d_model": 64})
    assert job["metadata"]["name"] == "s-7"
    assert job["metadata"]["labels"] == {C.LABEL_SWEEP: "s", C.LABEL_SWEEP_UID: "sweep-uid", C.LABEL_TRIAL: "7"}
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (C.SWEEP_KIND, "sweep-uid", True)
    assert job["spec"]["hparams"] == {"d_model": 64, "lr": 0.3}
    assert (job["spec"]["replicates"], job["spec"]["backoffLimit"]) == (2, 4)
    assert body["spec"]["template"]["hparams"] == {"d_model": 32}  # the template is not changed


# --- the reconciler ------------------------------------------------------------------------------------
class FakeKube:
    """The two requests a sweep makes: create a trial (409 when it exists) and patch the status."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.refuse: set[int] = set()

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


def see(kube: FakeKube, trials: dict, uid: str = "sweep-uid", **phases: str) -> None:
    """The index catches up with the created trials; `phases` by name (s_0="Succeeded")."""
    trials[(NS, uid)] = [ss.Trial(int(n.rsplit("-", 1)[1]), n, phases.get(n.replace("-", "_"), "Pending"))
                         for n in kube.jobs]


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
    kube.jobs["s-0"] = trial_job(sweep(), 0, {})  # created by an operator that died before the watch showed it
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
    kube.jobs["s-0"] = trial_job(sweep(uid="earlier"), 0, {})  # the garbage collector has yet to take it
    bodies[(NS, "s")] = [sweep(parallelism=1)]
    r.poke((NS, "s"))
    assert kube.statuses == [] and r.states[(NS, "s")].started == set()  # nothing counted; a retry is due
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
