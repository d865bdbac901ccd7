"""status.py: phases, failure messages, per-replicate entries, metrics, conditions, and compute() end to end."""

from __future__ import annotations

from typing import Any

import pytest

from operator_support import PodsOf, child_job, job_body, pod, terminated
from seqmodel_operator import constants as C
from seqmodel_operator import status as st

OK_SUMMARY = {"status": "ok", "metrics": {"val_loss": 1.5, "val_acc": 0.5}, "outputs": {}, "version": "1"}


def succeeded_pod(name: str, metrics: dict[str, Any], predictions: bool = False) -> dict[str, Any]:
    summary = {"status": "ok", "metrics": metrics, "outputs": {"predictions": "predictions.tsv"} if predictions else {}}
    return pod(name, "2025-01-01T00:01:00Z", "Succeeded", init={"stage": terminated(0)},
               containers={"trainer": terminated(0, summary)})


def failure(p: dict[str, Any]) -> tuple[str, int | None]:
    found = st.pod_failure(p)
    assert found is not None
    return found


# --- job_phase -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("job,phase", [
    (child_job(0, 0, complete=True), "Succeeded"),
    (child_job(0, 0, failed="BackoffLimitExceeded"), "Failed"),
    (child_job(0, 0, suspend=True), "Suspended"),
    (child_job(0, 0, active=1, ready=1), "Running"),
    (child_job(0, 0, active=1, ready=1, suspend=True), "Running"),  # suspending: the pod still runs
    (child_job(0, 0, active=1), "Pending"),  # scheduling, pulling or staging data
    (child_job(0, 0, active=1, suspend=True), "Pending"),
    (child_job(0, 0, interim="SuccessCriteriaMet"), "Running"),  # ended, not yet counted as Complete
    (child_job(0, 0, interim="FailureTarget"), "Running"),
    (child_job(0, 0), "Pending"),
    (child_job(0, 0, start=True), "Pending"),
    ({"metadata": {}}, "Pending"),
])
def test_job_phase(job: dict[str, Any], phase: str) -> None:
    assert st.job_phase(job) == phase


def test_a_false_condition_does_not_count() -> None:
    job = child_job(0, 0, active=1, ready=1)
    job["status"]["conditions"] = [{"type": "Failed", "status": "False"}, {"type": "Complete", "status": "False"}]
    assert st.job_phase(job) == "Running"


# --- failure messages ------------------------------------------------------------------------------------
def test_pod_failure_uses_the_json_error_field() -> None:
    summary = {"status": "failed", "error": "hparam 'lr' must be >= 0.0; got -1", "metrics": {}}
    p = pod("p", "t", "Failed", containers={"trainer": terminated(2, summary, reason="Error")})
    assert st.pod_failure(p) == ("container trainer exited with code 2 (Error): hparam 'lr' must be >= 0.0; got -1", 2)


def test_pod_failure_oom_killed() -> None:
    p = pod("p", "t", "Failed", containers={"trainer": terminated(137, reason="OOMKilled")})
    message, code = failure(p)
    assert code == 137 and message.startswith("container trainer exited with code 137 (OOMKilled): ")
    assert "spec.resources.memory" in message


def test_pod_failure_takes_the_last_line_of_plain_logs() -> None:
    logs = "Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: CUDA error\n\n"
    p = pod("p", "t", "Failed", containers={"trainer": terminated(1, logs)})
    assert st.pod_failure(p) == ("container trainer exited with code 1 (Error): RuntimeError: CUDA error", 1)


def test_pod_failure_of_the_stage_step_with_exit_3() -> None:
    summary = {"status": "failed", "step": "stage", "error": "output dir /output already holds another run's files"}
    p = pod("p", "t", "Failed", init={"stage": terminated(3, summary)}, containers={})
    message, code = failure(p)
    assert code == 3 and message.startswith("container stage exited with code 3") and "another run" in message


def test_pod_failure_from_last_state_and_pod_reason() -> None:
    p = pod("p", "t", "Running", containers={"trainer": terminated(1, "boom", last=True)})
    assert st.pod_failure(p) == ("container trainer exited with code 1 (Error): boom", 1)
    evicted = pod("p", "t", "Failed", reason="Evicted", message="node low on ephemeral storage")
    assert st.pod_failure(evicted) == ("pod Evicted: node low on ephemeral storage", None)
    assert st.pod_failure(pod("p", "t", "Succeeded", containers={"trainer": terminated(0, OK_SUMMARY)})) is None


def test_pod_failure_is_bounded() -> None:
    p = pod("p", "t", "Failed", containers={"trainer": terminated(1, "x" * 5000)})
    assert len(failure(p)[0]) == st.MESSAGE_MAX


def test_job_failure_prefixes_the_job_reason_and_picks_the_newest_failed_pod() -> None:
    job = child_job(0, 0, failed="BackoffLimitExceeded")
    old = pod("a", "2025-01-01T00:00:00Z", "Failed", containers={"trainer": terminated(1, "first try")})
    new = pod("b", "2025-01-01T00:05:00Z", "Failed", containers={"trainer": terminated(1, "second try")})
    assert st.job_failure(job, [old, new]) == (
        "BackoffLimitExceeded: container trainer exited with code 1 (Error): second try", 1)
    assert st.job_failure(child_job(0, 0, failed="DeadlineExceeded"), []) == ("DeadlineExceeded: Job failed", None)


# --- per-replicate entries -------------------------------------------------------------------------------
def test_entries_keep_the_newest_version_of_each_replicate() -> None:
    jobs = [child_job(0, 5, active=1, ready=1), child_job(0, 2, failed="PodFailurePolicy"), child_job(1, 3)]
    pods = PodsOf({})
    entries, taken = st.replicate_entries([], jobs, pods)
    assert [(e["index"], e["version"], e["job"], e["phase"]) for e in entries] == [
        (0, 5, "demo-0-v5", "Running"), (1, 3, "demo-1-v3", "Pending")]
    assert entries[0]["outputPath"] == "runs/x/version_5" and taken == set() and pods.calls == []


def test_entries_keep_finished_replicates_whose_job_is_gone() -> None:
    gone = {"index": 1, "version": 1, "job": "demo-1-v1", "phase": "Succeeded", "outputPath": "runs/x/version_1",
            "metrics": {"val_loss": 2.0}, "restarts": 0}
    entries, _ = st.replicate_entries([gone], [child_job(0, 0, active=1, ready=1)], PodsOf({}))
    assert [e["index"] for e in entries] == [0, 1] and entries[1] == gone


def test_metrics_come_from_the_trainer_s_termination_message_once() -> None:
    failed_first = pod("demo-0-v0-a", "2025-01-01T00:00:00Z", "Failed",
                       containers={"trainer": terminated(1, {"status": "failed", "metrics": {"val_loss": 9.0}})})
    pods = PodsOf({"demo-0-v0": [failed_first, succeeded_pod("demo-0-v0-b", {"val_loss": 1.25}, predictions=True)]})
    jobs = [child_job(0, 0, complete=True, failures=1)]
    entries, _ = st.replicate_entries([], jobs, pods)
    assert entries[0]["metrics"] == {"val_loss": 1.25} and entries[0]["restarts"] == 1
    assert entries[0]["predictions"] == "runs/x/version_0/predictions.tsv"
    assert pods.calls == ["demo-0-v0"]
    again, _ = st.replicate_entries(entries, jobs, pods)
    assert again == entries and pods.calls == ["demo-0-v0"]  # the previous entry already had them


def test_a_stage_summary_is_not_taken_for_metrics() -> None:
    p = pod("p", "t", "Succeeded", init={"stage": terminated(0, {"status": "ok", "metrics": {"bogus": 1}})},
            containers={"trainer": terminated(0, "not json")})
    entries, _ = st.replicate_entries([], [child_job(0, 0, complete=True)], PodsOf({"demo-0-v0": [p]}))
    assert entries[0]["metrics"] == {} and "predictions" not in entries[0]


def test_failed_replicates_carry_their_message_and_taken_versions_are_reported() -> None:
    taken_pod = pod("p", "t", "Failed", init={"stage": terminated(3, {"error": "version taken"})})
    user_pod = pod("q", "t", "Failed", containers={"trainer": terminated(2, {"error": "bad data"})})
    pods = PodsOf({"demo-0-v0": [taken_pod], "demo-1-v0": [user_pod]})
    jobs = [child_job(0, 0, failed="PodFailurePolicy"), child_job(1, 0, failed="PodFailurePolicy")]
    entries, taken = st.replicate_entries([], jobs, pods)
    assert taken == {0}
    assert entries[1]["message"] == "PodFailurePolicy: container trainer exited with code 2 (Error): bad data"
    again, _ = st.replicate_entries(entries, jobs, pods)
    assert again == entries and sorted(pods.calls) == ["demo-0-v0", "demo-1-v0"]


def test_a_pending_replicate_says_why_its_pod_is_not_running() -> None:
    unschedulable = pod("demo-0-v0-a", "t", "Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "message": "0/3 nodes: 3 Insufficient nvidia.com/gpu"}])
    pulling = pod("demo-1-v0-a", "t", "Pending", containerStatuses=[
        {"name": "trainer", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}])
    starting = pod("demo-2-v0-a", "t", "Pending", initContainerStatuses=[
        {"name": "stage", "state": {"waiting": {"reason": "PodInitializing"}}}])
    pods = PodsOf({"demo-0-v0": [unschedulable], "demo-1-v0": [pulling], "demo-2-v0": [starting]})
    jobs = [child_job(i, 0, active=1) for i in range(3)] + [child_job(3, 0)]
    entries, _ = st.replicate_entries([], jobs, pods)
    assert entries[0]["message"] == "pod demo-0-v0-a cannot be scheduled: 0/3 nodes: 3 Insufficient nvidia.com/gpu"
    assert entries[1]["message"] == "container trainer: ImagePullBackOff: not found"
    assert "message" not in entries[2] and "message" not in entries[3]
    assert sorted(pods.calls) == ["demo-0-v0", "demo-1-v0", "demo-2-v0"]  # no pods asked of an inactive Job
    status, _ = st.compute(job_body(replicates=4), "x", jobs, pods, "t0")
    assert status["phase"] == "Pending" and status["message"] == f"replicate 0: {entries[0]['message']}"


# --- summaries -------------------------------------------------------------------------------------------
def test_set_condition_moves_the_transition_time_only_on_a_status_change() -> None:
    other = {"type": "Other", "status": "True", "lastTransitionTime": "t0"}
    conds = st.set_condition([other], "Ready", "False", "Creating", "0 of 2", 1, "t1")
    conds = st.set_condition(conds, "Ready", "False", "Creating", "1 of 2", 2, "t2")
    (ready,) = [c for c in conds if c["type"] == "Ready"]
    assert ready == {"type": "Ready", "status": "False", "reason": "Creating", "message": "1 of 2",
                     "lastTransitionTime": "t1", "observedGeneration": 2}
    conds = st.set_condition(conds, "Ready", "True", "Created", "2 of 2", 2, "t3")
    (ready,) = [c for c in conds if c["type"] == "Ready"]
    assert ready["lastTransitionTime"] == "t3" and other in conds and len(conds) == 2


# --- compute, end to end ---------------------------------------------------------------------------------
def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["lastTransitionTime"]) for c in status["conditions"]}


def step(body: dict[str, Any], jobs: list[dict[str, Any]], pods: PodsOf, now: str) -> dict[str, Any]:
    """compute(), then store the status in the body as the handler would."""
    new, taken = st.compute(body, "dm=64", jobs, pods, now)
    assert taken == set()
    body["status"] = new
    return new


def test_compute_pending_running_succeeded() -> None:
    body = job_body(replicates=2)
    pods = PodsOf({"demo-0-v0": [succeeded_pod("a", {"val_loss": 1.0})],
                   "demo-1-v1": [succeeded_pod("b", {"val_loss": 3.0})]})
    status = step(body, [child_job(0, 0)], pods, "t0")
    assert status["phase"] == "Pending" and status["startTime"] is None and status["completionTime"] is None
    assert conditions(status) == {C.COND_READY: ("False", "t0"), C.COND_SUCCEEDED: ("Unknown", "t0"),
                                  C.COND_SUSPENDED: ("False", "t0")}
    assert status["canonicalName"] == "dm=64" and status["observedGeneration"] == 1 and status["message"] is None

    status = step(body, [child_job(0, 0, active=1, ready=1), child_job(1, 1)], pods, "t1")
    assert status["phase"] == "Running" and status["startTime"] == "t1" and status["completionTime"] is None
    assert conditions(status)[C.COND_READY] == ("True", "t1") and conditions(status)[C.COND_SUCCEEDED] == ("Unknown", "t0")
    assert status["output"] == "runs/x/version_0, runs/x/version_1"

    done = [child_job(0, 0, complete=True), child_job(1, 1, complete=True)]
    status = step(body, done, pods, "t2")
    assert status["phase"] == "Succeeded" and (status["startTime"], status["completionTime"]) == ("t1", "t2")
    assert conditions(status)[C.COND_SUCCEEDED] == ("True", "t2")
    assert status["metrics"] == {"val_loss": 2.0}
    calls = len(pods.calls)
    assert step(body, done, pods, "t3") == status and len(pods.calls) == calls  # converged: nothing moves


def test_a_pod_whose_containers_ended_stays_running_until_the_job_counts_it() -> None:
    """A kubelet reports Ready=False (the containers ended) before the pod's phase: the Job has the pod
    active and none ready for a moment. Only a new attempt (a failed pod more) is Pending again."""
    body = job_body()
    pods = PodsOf({"demo-0-v0": []})
    assert step(body, [child_job(0, 0, active=1, ready=1)], pods, "t0")["phase"] == "Running"
    assert step(body, [child_job(0, 0, active=1)], pods, "t1")["phase"] == "Running"
    status = step(body, [child_job(0, 0, active=1, failures=1)], pods, "t2")
    assert status["phase"] == "Pending" and status["replicates"][0]["restarts"] == 1


def test_compute_failure_names_the_replicate() -> None:
    body = job_body(replicates=2)
    pods = PodsOf({"demo-1-v1": [pod("p", "t", "Failed", containers={"trainer": terminated(2, {"error": "bad seq_file"})})]})
    status = step(body, [child_job(0, 0, active=1, ready=1), child_job(1, 1, failed="PodFailurePolicy")], pods, "t5")
    assert status["phase"] == "Failed" and status["completionTime"] == "t5" and status["startTime"] == "t5"
    assert status["message"] == "replicate 1: PodFailurePolicy: container trainer exited with code 2 (Error): bad seq_file"
    (succeeded,) = [c for c in status["conditions"] if c["type"] == C.COND_SUCCEEDED]
    assert (succeeded["status"], succeeded["reason"], succeeded["message"]) == ("False", "Failed", status["message"])


def test_compute_suspended() -> None:
    body = job_body(suspend=True)
    status = step(body, [child_job(0, 0, suspend=True)], PodsOf({}), "t0")
    assert status["phase"] == "Suspended"
    (suspended,) = [c for c in status["conditions"] if c["type"] == C.COND_SUSPENDED]
    assert (suspended["status"], suspended["reason"]) == ("True", "SuspendedByUser")


def test_compute_a_taken_version_is_pending_not_failed() -> None:
    body = job_body()
    pods = PodsOf({"demo-0-v0": [pod("p", "t", "Failed", init={"stage": terminated(3, {"error": "taken"})})]})
    status, taken = st.compute(body, "dm=64", [child_job(0, 0, failed="PodFailurePolicy")], pods, "t0")
    assert taken == {0} and status["phase"] == "Pending" and status["completionTime"] is None


def test_compute_keeps_generation_and_old_times() -> None:
    body = job_body()
    body["metadata"]["generation"] = 3
    body["status"] = {"startTime": "early", "completionTime": None}
    status, _ = st.compute(body, "dm=64", [child_job(0, 0, active=1, ready=1)], PodsOf({}), "late")
    assert status["startTime"] == "early" and status["observedGeneration"] == 3
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_a_failure_outranks_a_pending_reason() -> None:
    waiting = pod("demo-0-v0-a", "t", "Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                              "message": "no nodes"}])
    failed = pod("demo-1-v0-a", "t", "Failed", containers={"trainer": terminated(1, "boom")})
    pods = PodsOf({"demo-0-v0": [waiting], "demo-1-v0": [failed]})
    jobs = [child_job(0, 0, active=1), child_job(1, 0, failed="BackoffLimitExceeded")]
    status, _ = st.compute(job_body(replicates=2), "x", jobs, pods, "t0")
    assert status["phase"] == "Failed"
    assert status["message"] == "replicate 1: BackoffLimitExceeded: container trainer exited with code 1 (Error): boom"


def test_restarts_count_retries_not_the_last_failure() -> None:
    """A Job that failed at its first pod was never retried; one that succeeded after two failures was, twice."""
    failed_once, _ = st.replicate_entries([], [child_job(0, 0, failed="PodFailurePolicy", failures=1)], PodsOf({}))
    assert failed_once[0]["restarts"] == 0
    retried, _ = st.replicate_entries([], [child_job(0, 0, complete=True, failures=2)], PodsOf({}))
    assert retried[0]["restarts"] == 2
    exhausted, _ = st.replicate_entries([], [child_job(0, 0, failed="BackoffLimitExceeded", failures=3)], PodsOf({}))
    assert exhausted[0]["restarts"] == 2
