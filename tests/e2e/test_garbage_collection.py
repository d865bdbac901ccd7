"""Garbage collection: a namespace takes its Jobs and pods with it, a Job takes its pods."""

from __future__ import annotations

from kubernetes.client.rest import ApiException

from e2e_support import KWOK_PLACEMENT, container_pid, job, job_pods, new_namespace, pid_alive, wait_for


def sleeper(image: str) -> dict:
    return {"name": "main", "image": image, "imagePullPolicy": "Never",
            "command": ["python", "-c", "import time; time.sleep(600)"]}


def running_pods(core, ns: str, job_name: str):
    return [p for p in job_pods(core, ns, job_name) if p.status.phase == "Running"]


def namespace_gone(core, ns: str) -> bool:
    try:
        core.read_namespace(ns)
        return False
    except ApiException as e:
        if e.status == 404:
            return True
        raise


def test_deleting_a_namespace_removes_its_jobs_and_pods(cluster, core, batch, images):
    ns = new_namespace(core, "gc-namespace")
    batch.create_namespaced_job(ns, job("fake", {**KWOK_PLACEMENT, "containers": [{"name": "m", "image": "x"}]},
                                        {"kwok.seqmodel.dev/run-for": "10m"}))
    batch.create_namespaced_job(ns, job("real", {"containers": [sleeper(images["trainer"])]}))  # on node-0
    wait_for(lambda: running_pods(core, ns, "fake") and running_pods(core, ns, "real"), 60, "both pods Running")
    pid = container_pid(running_pods(core, ns, "real")[0], cluster.containerd)

    core.delete_namespace(ns)

    wait_for(lambda: namespace_gone(core, ns), 120, f"namespace {ns} to be deleted")
    assert not [j for j in batch.list_job_for_all_namespaces().items if j.metadata.namespace == ns]
    assert not core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={ns}").items
    wait_for(lambda: not pid_alive(pid), 30, "the container's process to end")


def test_deleting_a_job_cascades_to_its_pods(core, batch, namespace):
    batch.create_namespaced_job(namespace, job("fake", {**KWOK_PLACEMENT, "containers": [{"name": "m", "image": "x"}]},
                                               {"kwok.seqmodel.dev/run-for": "10m"}, parallelism=3, completions=3))
    pods = wait_for(lambda: len(r := running_pods(core, namespace, "fake")) == 3 and r, 60, "3 pods Running")
    assert all(p.metadata.owner_references[0].kind == "Job" for p in pods)

    batch.delete_namespaced_job("fake", namespace, propagation_policy="Background")

    wait_for(lambda: not core.list_namespaced_pod(namespace).items, 60, "the garbage collector to delete the pods")
