"""kwok GPU nodes: Jobs that succeed after a delay, fail with a chosen exit code and message, and GPU fit."""

from __future__ import annotations

from datetime import timedelta

from e2e_support import KWOK_PLACEMENT, job, job_condition, job_pods, wait_for

FAKE = {"name": "main", "image": "seqmodel-trainer:never-pulled"}


def test_job_on_a_kwok_node_runs_for_the_requested_time_then_succeeds(core, batch, namespace):
    spec = {**KWOK_PLACEMENT, "containers": [{**FAKE, "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    batch.create_namespaced_job(namespace, job("train", spec, {"kwok.seqmodel.dev/run-for": "3s"}))

    running = wait_for(lambda: [p for p in job_pods(core, namespace, "train") if p.status.phase == "Running"],
                       60, "the kwok pod to be Running")
    assert running[0].spec.node_name.startswith("kwok-")
    assert wait_for(lambda: job_condition(batch, namespace, "train"), 60, "the Job to finish") == "Complete"
    pod = job_pods(core, namespace, "train")[0]
    assert pod.status.phase == "Succeeded"
    term = pod.status.container_statuses[0].state.terminated
    assert term.exit_code == 0 and term.reason == "Completed"
    assert term.finished_at - pod.status.start_time >= timedelta(seconds=2)


def test_job_made_to_fail_reports_the_chosen_exit_code_and_message(core, batch, namespace):
    message = '{"error": "CUDA out of memory", "step": 1200}'
    annotations = {"kwok.seqmodel.dev/exit-code": "42", "kwok.seqmodel.dev/message": message}
    batch.create_namespaced_job(namespace, job("oom", {**KWOK_PLACEMENT, "containers": [FAKE]}, annotations))

    assert wait_for(lambda: job_condition(batch, namespace, "oom"), 60, "the Job to finish") == "Failed"
    pod = job_pods(core, namespace, "oom")[0]
    assert pod.status.phase == "Failed"
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason, term.message) == (42, "Error", message)


def test_pod_failure_policy_sees_the_exit_code(batch, namespace):
    annotations = {"kwok.seqmodel.dev/exit-code": "3"}
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}]}
    body = job("bad-hparams", {**KWOK_PLACEMENT, "containers": [FAKE]}, annotations, backoff_limit=5,
               podFailurePolicy=policy)
    batch.create_namespaced_job(namespace, body)

    assert wait_for(lambda: job_condition(batch, namespace, "bad-hparams"), 60, "the Job to fail") == "Failed"
    status = batch.read_namespaced_job_status("bad-hparams", namespace).status
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "PodFailurePolicy"
    assert status.failed == 1  # failed at once, without the 5 retries backoffLimit allows


def test_gpu_requests_fill_the_kwok_nodes_and_the_rest_stays_pending(core, namespace):
    nodes = [n for n in core.list_node(label_selector="type=kwok").items]
    per_node = int(nodes[0].status.allocatable["nvidia.com/gpu"])
    pod_spec = {**KWOK_PLACEMENT, "restartPolicy": "Always",
                "containers": [{**FAKE, "resources": {"limits": {"nvidia.com/gpu": str(per_node)}}}]}
    for i in range(len(nodes) + 1):
        core.create_namespaced_pod(namespace, {"metadata": {"name": f"gpu-{i}"}, "spec": pod_spec})

    def settled():
        pods = core.list_namespaced_pod(namespace).items
        running = [p for p in pods if p.status.phase == "Running"]
        pending = [p for p in pods if any(c.type == "PodScheduled" and c.reason == "Unschedulable"
                                          for c in p.status.conditions or [])]
        return (running, pending) if len(running) == len(nodes) and pending else None

    running, pending = wait_for(settled, 60, "every kwok node to hold one full-GPU pod")
    assert len({p.spec.node_name for p in running}) == len(nodes)
    assert len(pending) == 1
    message = next(c.message for c in pending[0].status.conditions if c.type == "PodScheduled")
    assert "nvidia.com/gpu" in message
