"""Small helpers shared by the e2e tests: polling with a clear failure, and manifest builders."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))  # the local cluster's package, localcluster

from localcluster.bootstrap import default_sa_exists  # noqa: E402
from localcluster.procs import process_start_time  # noqa: E402

T = TypeVar("T")
UP_TIMEOUT = 240  # seconds for `cluster.py up`; a warm start takes ~10 s, a loaded CI machine may need more

KWOK_PLACEMENT = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
}
LOCAL_PLACEMENT = {"nodeSelector": {"kubernetes.io/hostname": "local-0"}}


def run_cli(*args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess:
    """`hack/cluster.py <args>` in a subprocess, so the cluster's processes never become pytest's children."""
    return subprocess.run([sys.executable, str(REPO / "hack" / "cluster.py"), *args], capture_output=True,
                          text=True, timeout=timeout)


def wait_for(fn: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `fn` until it returns something truthy and return it; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def job(name: str, pod_spec: dict, annotations: dict | None = None, backoff_limit: int = 0, **spec) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"metadata": {"annotations": annotations or {}},
                         "spec": {"restartPolicy": "Never", **pod_spec}},
            **spec,
        },
    }


def job_condition(batch: client.BatchV1Api, ns: str, name: str) -> str | None:
    """"Complete" or "Failed" once the Job has finished, else None."""
    conds = batch.read_namespaced_job_status(name, ns).status.conditions or []
    for c in conds:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return c.type
    return None


def job_pods(core: client.CoreV1Api, ns: str, name: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items


def pod_phase(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    try:
        return core.read_namespaced_pod(name, ns).status.phase
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def pod_gone(core: client.CoreV1Api, ns: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, ns)
        return False
    except ApiException as e:
        if e.status == 404:
            return True
        raise


def container_pid(pod: client.V1Pod) -> int:
    """The host PID of the pod's first container on the process node (containerID `process://<pid>`)."""
    cid = pod.status.container_statuses[0].container_id
    assert cid and cid.startswith("process://"), cid
    return int(cid.removeprefix("process://"))


def running_pid(core: client.CoreV1Api, ns: str, name: str, timeout: float = 60) -> int:
    """Wait until the pod is Running on the process node and return its container's host PID."""
    def pod_running():
        pod = core.read_namespaced_pod(name, ns)
        statuses = pod.status.container_statuses or []
        return pod.status.phase == "Running" and statuses and statuses[0].container_id and pod

    return container_pid(wait_for(pod_running, timeout, f"pod {ns}/{name} to be Running"))


def pid_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    return process_start_time(pid) is not None


def pvc(name: str, size: str = "1Gi") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}


def new_namespace(core: client.CoreV1Api, hint: str) -> str:
    """Create a namespace and wait for its default ServiceAccount (pods are refused until it exists)."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"seqmodel.dev/e2e": "true"}}})

    wait_for(lambda: default_sa_exists(core.api_client, name), 30, f"ServiceAccount {name}/default")
    return name
