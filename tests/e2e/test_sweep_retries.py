"""Issue 5: failed trials. A trial whose trainer dies once is retried and resumes from its checkpoint (a
real run on node-0, the session's operator); a trial whose pod is evicted (preempted, drained) resumes
the same way without spending a retry (issue 15); trials that fail on every attempt are counted
failed once their retries are spent, and more of them than `maxFailedTrials` stop the sweep, saying why.

The failing trials run on kwok nodes under the test's own operator, whose Job template makes pods with
`--dropout=0.5` among the trainer's arguments exit 1 (a retryable code, unlike 2 and 3, which the Job's
podFailurePolicy fails at once) with a run summary naming the error, as a crashing trainer would.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Iterator

import pytest
from kubernetes import client

from e2e_support import (INJECTED_ERROR, LABEL_SWEEP, RUN_TIMEOUT, SMALL, OperatorProcess, StjWatch, condition,
                         first_checkpoint, get_stj, get_sweep, job_pods, kubectl_apply, kwok_operator, pid_alive,
                         small_job, sweep, trainer_log, trainer_pid, trials_of, wait_for, wait_stj_replicates,
                         wait_sweep_phase)

FAIL = {"dropout": 0.5}  # the kwok template's marker: such trials fail on every attempt


@pytest.mark.slow
def test_a_trial_whose_trainer_dies_once_is_retried_and_resumes(cluster, api, core, op_namespace, claims):
    ns, name = op_namespace, "retry"
    c = claims(ns)
    template = {k: v for k, v in small_job("unused", c)["spec"].items() if k != "backoffLimit"}
    manifest = sweep(name, {"template": template, "parameters": {"list": [{"lr": 0.003}]}, "trialRetries": 1,
                            "objective": {"metric": "val/loss"}})
    assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0
    trial = f"{name}-0"
    obj = wait_stj_replicates(api, ns, trial, timeout=RUN_TIMEOUT)
    assert obj["spec"]["backoffLimit"] == 1  # trialRetries
    run_dir = c.run_dir(obj["status"])
    job_name = obj["status"]["replicates"][0]["job"]
    first_pod, pid = trainer_pid(core, ns, job_name, cluster.containerd)
    first_checkpoint(run_dir)

    os.kill(pid, signal.SIGKILL)  # the main container's process, seen from the host
    wait_for(lambda: not pid_alive(pid), 30, "the trainer to die")

    status = wait_sweep_phase(api, ns, name, "Succeeded", RUN_TIMEOUT)["status"]
    assert {k: status[k] for k in ("created", "succeeded", "failed")} == {"created": 1, "succeeded": 1, "failed": 0}
    assert "failures" not in status or status["failures"] == []
    obj = get_stj(api, ns, trial)
    (rep,) = obj["status"]["replicates"]
    assert (rep["phase"], rep["restarts"], rep["version"], rep["job"]) == ("Succeeded", 1, 0, job_name)
    assert status["bestTrial"]["value"] == obj["status"]["metrics"]["val/loss"]
    pods = {p.metadata.name: p for p in job_pods(core, ns, job_name)}
    assert pods[first_pod].status.phase == "Failed"
    (retry,) = [p for p in pods.values() if p.status.phase == "Succeeded"]
    assert "resuming from" in trainer_log(core, ns, retry)
    assert not (run_dir / ".attempts").exists(), "the retry started afresh instead of resuming"
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == SMALL["max_steps"]


@pytest.mark.slow
def test_an_evicted_trial_resumes_without_spending_a_retry(cluster, api, core, batch, op_namespace, claims):
    """The Eviction API marks the pod DisruptionTarget, which the Job's podFailurePolicy ignores: with no
    retries at all, the trial still succeeds, its replacement pod resuming from the checkpoint."""
    ns, name = op_namespace, "evicted"
    c = claims(ns)
    template = {k: v for k, v in small_job("unused", c)["spec"].items() if k != "backoffLimit"}
    manifest = sweep(name, {"template": template, "parameters": {"list": [{"lr": 0.003}]}, "trialRetries": 0,
                            "maxFailedTrials": 0, "objective": {"metric": "val/loss"}})
    assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0
    trial = f"{name}-0"
    obj = wait_stj_replicates(api, ns, trial, timeout=RUN_TIMEOUT)
    assert obj["spec"]["backoffLimit"] == 0
    run_dir = c.run_dir(obj["status"])
    job_name = obj["status"]["replicates"][0]["job"]
    first_pod, _ = trainer_pid(core, ns, job_name, cluster.containerd)
    first_checkpoint(run_dir)

    core.create_namespaced_pod_eviction(first_pod, ns, client.V1Eviction(
        metadata=client.V1ObjectMeta(name=first_pod, namespace=ns)))

    status = wait_sweep_phase(api, ns, name, "Succeeded", RUN_TIMEOUT)["status"]
    assert {k: status[k] for k in ("created", "succeeded", "failed")} == {"created": 1, "succeeded": 1, "failed": 0}
    (rep,) = get_stj(api, ns, trial)["status"]["replicates"]
    assert (rep["phase"], rep["restarts"], rep["version"], rep["job"]) == ("Succeeded", 0, 0, job_name)
    assert not batch.read_namespaced_job(job_name, ns).status.failed  # the eviction was not counted
    (replacement,) = [p for p in job_pods(core, ns, job_name) if p.status.phase == "Succeeded"]
    assert replacement.metadata.name != first_pod
    assert "resuming from" in trainer_log(core, ns, replacement)
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == SMALL["max_steps"]


@pytest.fixture
def kwok_op(cluster, crds, namespace) -> Iterator[OperatorProcess]:
    """This test's operator, for its namespace only: pods on kwok nodes, `--dropout=0.5` ones failing."""
    proc = kwok_operator(cluster.kubeconfig, [namespace], cluster.layout.logs / f"operator-{namespace}.log",
                         run_for="1s", fail_arg="--dropout=0.5")
    try:
        yield proc.start()
    finally:
        proc.stop()


def test_trials_failing_past_their_retries_count_failed_and_max_failed_trials_stop_the_sweep(
        cluster, api, core, batch, namespace, kwok_op, claims):
    ns, name = namespace, "fails"
    out = claims(ns).output
    trial_params = [{"lr": 0.001}, {"lr": 0.002, **FAIL}, {"lr": 0.003}, {"lr": 0.004, **FAIL},
                    {"lr": 0.005}, {"lr": 0.006}]
    manifest = sweep(name, {
        "template": {"hparams": {"max_steps": 100}, "resources": {"gpus": 0}, "output": {"claim": out}},
        "parameters": {"list": trial_params}, "parallelism": 1, "trialRetries": 1, "maxFailedTrials": 1,
        "objective": {"metric": "val/loss", "goal": "min"}})
    with StjWatch(api, ns, f"{LABEL_SWEEP}={name}") as watch:
        assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0
        # one failure (no more than maxFailedTrials): counted, and the sweep goes on
        first = wait_for(lambda: (s := (get_sweep(api, ns, name) or {}).get("status") or {}).get("failed") and s,
                         120, "the first failed trial in the sweep's status")
        assert (first["phase"], first["failed"]) == ("Running", 1), first
        obj = wait_sweep_phase(api, ns, name, "Failed", 180)
        time.sleep(3)  # room for a wrong late creation to show
        after = get_sweep(api, ns, name)

    # the trials that failed: each tried 1 + trialRetries times, then Failed with the run's error
    trials = {t["metadata"]["name"]: t for t in trials_of(api, ns, name)}
    assert sorted(trials) == [f"{name}-{i}" for i in range(4)], "a trial started after the sweep stopped"
    assert [e.name for e in watch.added()] == [f"{name}-{i}" for i in range(4)]
    assert max(watch.active_counts()) == 1
    for i in (1, 3):
        t = trials[f"{name}-{i}"]
        (rep,) = t["status"]["replicates"]
        assert (t["status"]["phase"], rep["restarts"]) == ("Failed", 1), t["status"]
        assert INJECTED_ERROR in t["status"]["message"], t["status"]["message"]
        job = batch.read_namespaced_job(rep["job"], ns)
        assert job.status.failed == 2 and len(job_pods(core, ns, rep["job"])) == 2
    assert [trials[f"{name}-{i}"]["status"]["phase"] for i in (0, 2)] == ["Succeeded", "Succeeded"]

    # the sweep: stopped by maxFailedTrials, saying so; the failures listed with their messages
    status = obj["status"]
    assert {k: status[k] for k in ("phase", "trials", "created", "active", "succeeded", "failed")} == {
        "phase": "Failed", "trials": 6, "created": 4, "active": 0, "succeeded": 2, "failed": 2}
    done = condition(obj, "Succeeded")
    assert (done["status"], done["reason"]) == ("False", "MaxFailedTrials"), done
    assert "2 trials failed, more than maxFailedTrials (1)" in done["message"], done["message"]
    assert status["message"] == done["message"] and status.get("completionTime")
    assert [(f["name"], f["index"]) for f in status["failures"]] == [(f"{name}-1", 1), (f"{name}-3", 3)]
    for f in status["failures"]:
        assert f["message"] == trials[f["name"]]["status"]["message"]
    assert status["bestTrial"] == {"name": f"{name}-0", "index": 0, "rung": 0, "value": 0.001, "replicates": 1,
                                   "hparams": trial_params[0]}
    assert after["status"]["created"] == 4 and after["status"]["phase"] == "Failed"
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    assert [(e.type, e.reason) for e in events if e.involved_object.kind == "SeqSweep" and e.reason == "Failed"] \
        == [("Warning", "Failed")]
