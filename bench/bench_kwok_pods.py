"""1,000 pods on kwok nodes, from the first create to all Succeeded, on a freshly started local cluster.

What it exercises is the control plane (apiserver + etcd writes, scheduler, kwok's status updates), not
any workload: it is the scale check for the operator's sweeps. The baseline measured in the same run is
the time to create the pod objects alone, so the ratio says what scheduling and status updates add.
Set SEQMODEL_BENCH_KUBECONFIG to use a running local cluster instead of starting one in .cluster/bench.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, watch

from bench.cluster import Options, admin_client, bench_cluster, new_namespace
from bench.report import write_section

PODS = 1000
CLIENT_THREADS = 8
TIMEOUT = 900.0
KWOK_NODES = 4


def pod(i: int) -> dict:
    return {
        "metadata": {"name": f"p-{i:04d}"},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"type": "kwok"},
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "main", "image": "seqmodel-trainer:never-pulled",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
        },
    }


class Tracker(threading.Thread):
    """Watches the namespace and records when each pod was first scheduled, Running and Succeeded."""

    def __init__(self, core: client.CoreV1Api, ns: str, t0: float):
        super().__init__(daemon=True)
        self.core, self.ns, self.t0 = core, ns, t0
        self.scheduled: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.succeeded: dict[str, float] = {}
        self.failed: set[str] = set()
        self.w = watch.Watch()

    def run(self) -> None:
        rv = self.core.list_namespaced_pod(self.ns).metadata.resource_version
        while len(self.succeeded) + len(self.failed) < PODS:
            for ev in self.w.stream(self.core.list_namespaced_pod, self.ns, resource_version=rv, timeout_seconds=60):
                obj = ev["raw_object"]
                rv = obj["metadata"].get("resourceVersion", rv)
                name, now = obj["metadata"]["name"], time.monotonic() - self.t0
                phase = (obj.get("status") or {}).get("phase")
                if obj["spec"].get("nodeName"):
                    self.scheduled.setdefault(name, now)
                if phase in ("Running", "Succeeded"):
                    self.running.setdefault(name, now)
                if phase == "Succeeded":
                    self.succeeded.setdefault(name, now)
                elif phase == "Failed":
                    self.failed.add(name)
                if len(self.succeeded) + len(self.failed) >= PODS:
                    self.w.stop()
                    return


def measure(api: client.ApiClient) -> dict[str, float]:
    core = client.CoreV1Api(api)
    ns = new_namespace(api, "bench-kwok")
    t0 = time.monotonic()
    tracker = Tracker(core, ns, t0)
    tracker.start()
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(lambda i: core.create_namespaced_pod(ns, pod(i)), range(PODS)))
    created = time.monotonic() - t0
    tracker.join(TIMEOUT)
    try:
        if tracker.is_alive() or tracker.failed:
            raise RuntimeError(f"bench kwok_pods: {len(tracker.succeeded)} of {PODS} pods Succeeded, "
                               f"{len(tracker.failed)} Failed within {TIMEOUT:.0f} s")
    finally:
        core.delete_namespace(ns)
    return {"created": created, "scheduled": max(tracker.scheduled.values()),
            "running": max(tracker.running.values()), "succeeded": max(tracker.succeeded.values())}


def main() -> None:
    with bench_cluster(Options(kwok_nodes=KWOK_NODES)) as cluster:
        api = admin_client(cluster.kubeconfig, CLIENT_THREADS)
        try:
            t = measure(api)
        finally:
            api.close()
    start_s = cluster.start_s
    rows = [
        ("create 1,000 pod objects (baseline; 8 client threads)", t["created"], PODS / t["created"]),
        ("all 1,000 scheduled (bound to a kwok node)", t["scheduled"], PODS / t["scheduled"]),
        ("all 1,000 Running", t["running"], PODS / t["running"]),
        ("all 1,000 Succeeded", t["succeeded"], PODS / t["succeeded"]),
    ]
    lines = ["| step (from the first create) | seconds | pods/s |", "|---|---:|---:|"]
    lines += [f"| {name} | {sec:.1f} | {rate:.0f} |" for name, sec, rate in rows]
    lines.append("")
    lines.append(f"Succeeded / create ratio: **{t['succeeded'] / t['created']:.2f}x** (what scheduling and kwok's "
                 f"status updates add to the API writes alone). {KWOK_NODES} kwok nodes, one run.")
    if start_s is not None:
        lines.append(f"Cluster start with warm binaries (`hack/cluster.py up`, same run): {start_s:.1f} s.")
    write_section("kwok_pods", "1,000 pods on kwok nodes to Succeeded", ".venv/bin/python -m bench kwok_pods",
                  "\n".join(lines))
    print(f"bench kwok_pods: 1,000 pods Succeeded in {t['succeeded']:.1f} s", file=sys.stderr)
