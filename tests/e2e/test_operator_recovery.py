"""Crashes in the middle of a run: of the operator (SIGKILL, then a new one) and of the trainer's pod.

The operator tests start their own operator for their own namespace (outside the session operator's
`e2e-op-*`), so killing it never disturbs the other tests. Runs are small models on node-0.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from e2e_support import (RUN_TIMEOUT, SMALL, OperatorProcess, child_jobs, first_checkpoint, get_stj, job_pods,
                         kubectl_apply, pid_alive, small_job, stj, trainer_image, trainer_log, trainer_pid, wait_for,
                         wait_stj_phase, wait_stj_replicates)


def counter(core, ns: str) -> dict:
    """The job's version counter ConfigMap: the next free version and who holds which."""
    (cm,) = core.list_namespaced_config_map(ns, label_selector="seqmodel.dev/canonical-digest").items
    return {"next": int(cm.data["next"]), "allocations": json.loads(cm.data["allocations"])}


@pytest.fixture
def own_operator(cluster, crds, images, namespace):
    """An operator of the test's own, for its namespace only (a name outside the session's glob)."""
    proc = OperatorProcess(cluster.kubeconfig, [namespace], cluster.layout.logs / f"operator-{namespace}.log",
                           env=trainer_image(images))
    try:
        yield proc
    finally:
        proc.stop()


def test_operator_killed_right_after_create_makes_one_job_when_back(cluster, api, batch, core, namespace,
                                                                    own_operator):
    own_operator.start()
    manifest = stj("crash-early", {"hparams": {"max_steps": 1}, "output": {"claim": "unused"}, "suspend": True})
    assert kubectl_apply(cluster.kubectl, namespace, manifest).returncode == 0
    own_operator.kill(signal.SIGKILL)  # somewhere in its handling of the new object, or before it
    uid = get_stj(api, namespace, "crash-early")["metadata"]["uid"]

    own_operator.start()

    obj = wait_stj_phase(api, namespace, "crash-early", "Suspended", 120)
    assert [j.metadata.name for j in child_jobs(batch, namespace, uid)] == ["crash-early-0-v0"]
    assert obj["status"]["replicates"][0]["version"] == 0
    assert counter(core, namespace) == {"next": 1, "allocations": {f"{uid}/0": 0}}


@pytest.mark.slow
def test_operator_killed_mid_run_adopts_the_run_without_a_duplicate(cluster, api, batch, core, namespace, claims,
                                                                    own_operator):
    c = claims(namespace)
    own_operator.start()
    assert kubectl_apply(cluster.kubectl, namespace, small_job("crash", c)).returncode == 0
    obj = wait_stj_phase(api, namespace, "crash", "Running", RUN_TIMEOUT)
    uid = obj["metadata"]["uid"]
    (child,) = child_jobs(batch, namespace, uid)
    _, pid = trainer_pid(core, namespace, child.metadata.name, cluster.containerd)

    own_operator.kill(signal.SIGKILL)
    assert not own_operator.alive()
    assert pid_alive(pid), "the run finished before the operator was killed: make it longer"
    own_operator.start()

    obj = wait_stj_phase(api, namespace, "crash", "Succeeded", RUN_TIMEOUT)
    jobs = child_jobs(batch, namespace, uid)
    assert [(j.metadata.name, j.metadata.uid) for j in jobs] == [(child.metadata.name, child.metadata.uid)]
    assert len(job_pods(core, namespace, child.metadata.name)) == 1, "the run was not repeated"
    rep = obj["status"]["replicates"][0]
    assert (rep["version"], rep["phase"], rep["restarts"]) == (0, "Succeeded", 0)
    assert "val/loss" in obj["status"]["metrics"]
    assert counter(core, namespace) == {"next": 1, "allocations": {f"{uid}/0": 0}}
    metrics = json.loads((c.run_dir(obj["status"]) / "metrics.json").read_text())
    assert metrics["global_step"] == SMALL["max_steps"]


@pytest.mark.slow
def test_killed_trainer_is_retried_and_resumes_in_the_same_version(cluster, api, batch, core, op_namespace, claims):
    ns = op_namespace
    c = claims(ns)
    assert kubectl_apply(cluster.kubectl, ns, small_job("resume", c)).returncode == 0
    obj = wait_stj_replicates(api, ns, "resume")
    run_dir = c.run_dir(obj["status"])
    job_name = obj["status"]["replicates"][0]["job"]
    first_pod, pid = trainer_pid(core, ns, job_name, cluster.containerd)
    first_checkpoint(run_dir)

    os.kill(pid, signal.SIGKILL)  # the main container's process, seen from the host
    wait_for(lambda: not pid_alive(pid), 30, "the trainer to die")

    obj = wait_stj_phase(api, ns, "resume", "Succeeded", RUN_TIMEOUT)
    rep = obj["status"]["replicates"][0]
    assert (rep["version"], rep["job"]) == (0, job_name)
    assert rep["restarts"] >= 1
    assert c.run_dir(obj["status"]) == run_dir
    pods = {p.metadata.name: p for p in job_pods(core, ns, job_name)}
    assert pods[first_pod].status.phase == "Failed"
    (retry,) = [p for p in pods.values() if p.status.phase == "Succeeded"]
    assert "resuming from" in trainer_log(core, ns, retry)
    assert not (run_dir / ".attempts").exists(), "the retry started afresh instead of resuming"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["global_step"] == SMALL["max_steps"]
