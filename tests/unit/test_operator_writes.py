"""Fewer API writes and reads per job (bench/bench_operator.py): a new object's first status goes out with
kopf's own bookkeeping in one JSON patch, and child Job events that change nothing the status shows are
skipped."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from operator_support import NAMESPACE, FakeKube, child_job, job_body
from seqmodel_operator import constants as C
from seqmodel_operator import handlers
from seqmodel_operator import status as st
from seqmodel_operator.reconcilers.training_job import Reconciler
from seqmodel_operator.settings import Settings


def event_job(uid: str = "job-uid-1", **kwargs: Any) -> dict[str, Any]:
    """A child Job as its watch event has it: with its UID and its parent's labels."""
    job = child_job(0, 0, **kwargs)
    job["metadata"]["uid"] = uid
    job["metadata"]["labels"].update({C.LABEL_PARENT: "demo", C.LABEL_PARENT_UID: "uid-1"})
    return job


class Kube(FakeKube):
    """FakeKube's ConfigMaps, plus child Jobs and SeqTrainingJob status writes, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[dict[str, Any]] = []
        self.status_writes: list[dict[str, Any]] = []
        self.training_jobs: dict[str, dict[str, Any]] = {}

    def child_jobs(self, namespace: str, parent_uid: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.jobs)

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        created = copy.deepcopy(body)
        created["metadata"]["uid"] = f"job-uid-{len(self.jobs) + 1}"
        self.jobs.append(created)
        return copy.deepcopy(created)

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return []

    def get_training_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.training_jobs.get(name))

    def patch_training_job_status(self, namespace: str, name: str, status: dict[str, Any],
                                  resource_version: str) -> dict[str, Any]:
        self.status_writes.append(status)
        self.training_jobs[name].setdefault("status", {}).update(status)
        return self.training_jobs[name]


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    posted: list[tuple] = []
    monkeypatch.setattr(kopf, "event", lambda *args, **kwargs: posted.append((args, kwargs)))
    return posted


# --- child Job events ------------------------------------------------------------------------------------
def test_job_signature_ignores_the_job_controllers_bookkeeping() -> None:
    job = event_job(active=1)
    counted = copy.deepcopy(job)
    counted["status"]["uncountedTerminatedPods"] = {"succeeded": ["pod-uid"]}
    assert st.job_signature(job) == st.job_signature(counted)
    assert st.job_signature(job) != st.job_signature(event_job(active=1, ready=1))
    assert st.job_signature(job) != st.job_signature(event_job(active=1, failures=1))


def test_job_finishing_is_an_outcome_not_yet_written() -> None:
    assert st.job_finishing(event_job(interim="SuccessCriteriaMet"))
    assert st.job_finishing(event_job(interim="FailureTarget"))
    assert not st.job_finishing(event_job(interim="SuccessCriteriaMet", complete=True))
    assert not st.job_finishing(event_job(active=1, ready=1))


class Syncs:
    def __init__(self, reconciler: Reconciler, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple] = []
        self.fail = False
        monkeypatch.setattr(reconciler, "sync", self)

    def __call__(self, *args: Any) -> None:
        if self.fail:
            raise RuntimeError("API down")
        self.calls.append(args)


def test_events_that_change_nothing_shown_cause_no_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler = Reconciler(Kube(), Settings())
    syncs = Syncs(reconciler, monkeypatch)
    reconciler.job_changed(event_job())
    assert syncs.calls == [(NAMESPACE, "demo", "uid-1")]
    reconciler.job_changed(event_job())  # e.g. only uncountedTerminatedPods changed
    assert len(syncs.calls) == 1
    reconciler.job_changed(event_job(active=1))
    reconciler.job_changed(event_job(interim="SuccessCriteriaMet"))  # Complete follows: wait for it
    reconciler.job_changed(event_job(interim="SuccessCriteriaMet", complete=True))
    assert len(syncs.calls) == 3 and reconciler.synced == {}  # finished: nothing kept for it


def test_a_failed_sync_is_redone_on_the_next_event(monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler = Reconciler(Kube(), Settings())
    syncs = Syncs(reconciler, monkeypatch)
    syncs.fail = True
    with pytest.raises(RuntimeError):
        reconciler.job_changed(event_job(active=1))
    syncs.fail = False
    reconciler.job_changed(event_job(active=1))
    assert len(syncs.calls) == 1


def test_deletion_always_syncs_and_forgets_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler = Reconciler(Kube(), Settings())
    syncs = Syncs(reconciler, monkeypatch)
    reconciler.job_changed(event_job(active=1))
    reconciler.job_changed(event_job(active=1), deleted=True)
    assert len(syncs.calls) == 2 and reconciler.synced == {}


# --- a new object's first status -------------------------------------------------------------------------
def test_ensure_hands_a_new_objects_first_status_over_instead_of_writing_it(monkeypatch: pytest.MonkeyPatch,
                                                                            no_events: list) -> None:
    kube = Kube()
    reconciler = Reconciler(kube, Settings())
    handed: list[dict[str, Any]] = []
    reconciler.ensure(job_body(), first_status=handed.append)
    assert kube.status_writes == [] and len(kube.jobs) == 1
    (status,) = handed
    assert status["phase"] == "Pending" and status["replicates"][0]["job"] == "demo-0-v0"
    assert None not in status.values()  # a JSON patch would store nulls
    assert [kwargs["reason"] for _, kwargs in no_events] == ["Pending"]
    syncs = Syncs(reconciler, monkeypatch)
    reconciler.job_changed(kube.jobs[0])  # its ADDED event: the status already shows it
    assert syncs.calls == []


def test_a_fresh_object_lists_no_children_unless_a_create_meets_409(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = Kube()
    lists: list[str] = []
    listed = kube.child_jobs
    monkeypatch.setattr(kube, "child_jobs", lambda ns, uid: lists.append(uid) or listed(ns, uid))
    Reconciler(kube, Settings()).ensure(job_body(), first_status=lambda status: None)
    assert lists == []
    monkeypatch.setattr(kube, "create_job", lambda ns, body: None)  # 409: another worker was first
    handed: list[dict[str, Any]] = []
    reconciler = Reconciler(kube, Settings())
    syncs = Syncs(reconciler, monkeypatch)
    reconciler.ensure(job_body(), first_status=handed.append)
    assert lists == ["uid-1"] and handed == [] and len(syncs.calls) == 1


def test_ensure_writes_itself_when_the_object_has_a_status() -> None:
    kube = Kube()
    body = job_body()
    body["metadata"]["resourceVersion"] = "7"
    body["status"] = {"phase": "Pending"}
    kube.training_jobs["demo"] = copy.deepcopy(body)
    handed: list[dict[str, Any]] = []
    Reconciler(kube, Settings()).ensure(body, first_status=handed.append)
    assert handed == [] and [w["phase"] for w in kube.status_writes] == ["Pending"]


def test_first_status_keeps_a_status_written_meanwhile() -> None:
    raw: dict[str, Any] = {"metadata": {"name": "demo"}}
    handlers._first_status({"phase": "Pending", "output": "runs/x"}, raw)
    assert raw["status"] == {"phase": "Pending", "output": "runs/x"}
    synced: dict[str, Any] = {"status": {"phase": "Succeeded"}}
    handlers._first_status({"phase": "Pending", "output": "stale"}, synced)
    assert synced == {"status": {"phase": "Succeeded"}}


def test_diffbase_joins_the_first_status_in_one_json_patch() -> None:
    storage = handlers.DiffBaseWithFirstStatus(field="status.kopf.diffbase")
    body = kopf.Body({"metadata": {"name": "demo", "resourceVersion": "5"}, "spec": {"suspend": False}})
    essence = storage.build(body=body)

    plain = kopf.Patch(body=body)
    storage.store(body=body, patch=plain, essence=essence)
    assert plain == {"status": {"kopf": {"diffbase": '{"spec":{"suspend":false}}'}}} and not plain.fns

    patch = kopf.Patch(body=body)
    patch.fns.append(lambda raw: handlers._first_status({"phase": "Pending"}, raw))
    storage.store(body=body, patch=patch, essence=essence)
    assert dict(patch) == {}  # no merge patch: everything goes in the JSON patch
    assert patch.as_json_patch() == [{"op": "add", "path": "/status", "value": {
        "phase": "Pending", "kopf": {"diffbase": '{"spec":{"suspend":false}}'}}}]


# --- jobs waiting for a checkpoint source ----------------------------------------------------------------
def test_a_bad_dependent_does_not_stop_the_others_from_running() -> None:
    """source_finished runs every job waiting for the source, even after one of them fails for good."""
    from operator_support import with_replicates

    kube = Kube()
    kube.training_jobs["src"] = with_replicates(job_body("src", uid="uid-src"), "runs/x/version_0")
    for name, uid, replicate in (("bad", "uid-bad", 5), ("good", "uid-good", 0)):
        body = job_body(name, uid=uid, mode="test", checkpoint={"fromJob": "src", "replicate": replicate})
        body["metadata"]["resourceVersion"] = "1"
        kube.training_jobs[name] = body
    Reconciler(kube, Settings()).source_finished(NAMESPACE, ["bad", "good"])
    assert kube.training_jobs["bad"]["status"]["phase"] == "Failed"
    assert "spec.checkpoint.replicate" in kube.training_jobs["bad"]["status"]["message"]
    assert [j["metadata"]["name"] for j in kube.jobs] == ["good-0-v0"]
