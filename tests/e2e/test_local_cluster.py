"""The control plane itself: health, nodes, version, authorization, and the up/down life cycle."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kubernetes import client

from e2e_support import REPO, host_snapshot, run_cli, wait_for
from localcluster.control import State
from localcluster.layout import Layout, Versions
from localcluster.nodeconfig import NODE_NAME
from localcluster.procs import process_start_time


def test_readyz_answers_ok_through_kubectl(cluster):
    res = cluster.kubectl("get", "--raw", "/readyz")
    assert res.stdout.strip() == "ok"


def test_nodes_list_kwok_gpu_nodes_and_the_real_node_only(cluster):
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    by_name = {n["metadata"]["name"]: n for n in nodes}
    kwok = [n for n in nodes if n["metadata"]["labels"].get("type") == "kwok"]
    assert len(kwok) >= 2 and set(by_name) == {NODE_NAME, *(n["metadata"]["name"] for n in kwok)}, sorted(by_name)
    for node in [*kwok, by_name[NODE_NAME]]:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
    for node in kwok:
        cap = node["status"]["allocatable"]
        assert int(cap["nvidia.com/gpu"]) > 0
        assert {"cpu", "memory", "ephemeral-storage", "pods"} <= set(cap)
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"]
        assert {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"} in node["spec"]["taints"]
    real = by_name[NODE_NAME]
    assert not real["spec"].get("taints"), "node-0 is where pods go unless they ask for kwok"
    assert "nvidia.com/gpu" in real["status"]["capacity"]


def test_server_reports_the_pinned_kubernetes_version(cluster):
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == Versions.load().k8s


def test_rbac_and_node_authorizer_are_enforced(cluster, namespace):
    def can_i(*args: str) -> str:
        """"yes" or "no" (kubectl appends the authorizer's reason to a no)."""
        return cluster.kubectl("auth", "can-i", *args, check=False).stdout.strip().split(" ")[0]

    sa = f"system:serviceaccount:{namespace}:default"
    assert can_i("list", "pods", "-n", namespace, f"--as={sa}") == "no"
    assert can_i("list", "pods", "-n", namespace) == "yes"
    node = [f"--as=system:node:{NODE_NAME}", "--as-group=system:nodes"]
    assert can_i("get", "secrets/not-used-by-any-pod", "-n", namespace, *node) == "no"
    assert can_i("create", "serviceaccounts/token", "-n", namespace, *node) == "no"
    assert can_i("get", f"nodes/{NODE_NAME}", *node) == "yes"
    assert can_i("list", "pods", "-n", namespace, *node) == "no"  # only with fieldSelector spec.nodeName


def test_serviceaccount_token_is_signed_for_the_configured_issuer(api, namespace):
    core = client.CoreV1Api(api)
    token = core.create_namespaced_service_account_token("default", namespace, {"spec": {}}).status.token
    review = client.AuthenticationV1Api(api).create_token_review({"spec": {"token": token}})
    assert review.status.authenticated
    assert review.status.user.username == f"system:serviceaccount:{namespace}:default"


def test_up_again_is_a_no_op(cluster):
    before = State.load(cluster.layout)
    res = cluster.cli("up")
    assert res.returncode == 0, res.stderr
    assert "already up" in res.stdout
    after = State.load(cluster.layout)
    assert [(p.name, p.pid) for p in after.procs] == [(p.name, p.pid) for p in before.procs]


def test_a_second_cluster_gets_its_own_ports_and_network_and_down_leaves_the_machine_as_it_was(cluster):
    """The host is compared before `up` and after `down` (e2e_support.host_snapshot): another cluster started
    or stopped on this machine meanwhile (`make demo` beside the tests) shows up as a difference."""
    first = State.load(cluster.layout)
    root = Path(tempfile.mkdtemp(prefix="seqmodel-second-cluster-"))
    second = Layout(root)
    before = host_snapshot(cluster.layout.root)
    try:
        for attempt in range(2):  # up, down, up again: repeated cycles must work
            res = cluster_cli(second, "up", "--kwok-nodes", "1")
            assert res.returncode == 0, res.stderr
            state = State.load(second)
            mine = {p.pid for p in state.procs}
            assert not mine & {p.pid for p in first.procs}
            ports = set(vars(state.ports).values())
            assert not ports & set(vars(first.ports).values())
            assert state.net != first.net
            # CoreDNS runs on the second cluster's node-0 when `up` returns: a sandbox, a container, volume
            # mounts, a shim and cgroups for `down` to clean up.
            dns = subprocess.run(["kubectl", f"--kubeconfig={second.kubeconfig}", "-n", "kube-system", "get",
                                  "deployment/coredns", "-o", "jsonpath={.status.availableReplicas}"],
                                 capture_output=True, text=True)
            assert dns.stdout == "1", dns.stderr
            res = cluster_cli(second, "down")
            assert res.returncode == 0, res.stderr
            assert all(process_start_time(p.pid) != p.start_time for p in state.procs), f"attempt {attempt}"
            assert all(p.alive() for p in first.procs), "stopping the second cluster touched the first"
            assert not second.state.exists()
            after = host_snapshot(cluster.layout.root)
            assert {k: v for k, v in after.items() if v != before[k]} == {}, f"attempt {attempt}"
    finally:
        cluster_cli(second, "down")
        shutil.rmtree(root, ignore_errors=True)
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"


def cluster_cli(lay: Layout, *args: str):
    return run_cli(args[0], "--dir", str(lay.root), *args[1:])


def started_procs(lay: Layout) -> list:
    """The processes a running `up` has recorded so far (saved by atomic rename), once the apiserver is one."""
    state = State.load(lay)
    return state.procs if state and any(p.name == "kube-apiserver" for p in state.procs) else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_an_interrupted_up_leaves_nothing_running_and_the_next_up_starts_clean(tmp_path, sig):
    lay = Layout(tmp_path / "cluster")
    up = subprocess.Popen([sys.executable, str(REPO / "hack" / "cluster.py"), "up", "--dir", str(lay.root),
                           "--kwok-nodes", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        first = wait_for(lambda: started_procs(lay), 120, "`up` to start the apiserver")
        up.send_signal(sig)
        up.wait(timeout=60)
        if sig == signal.SIGTERM:  # `up` cleans up after itself, as on Ctrl-C
            assert up.returncode == 130
            assert not lay.state.exists() and not [p.name for p in first if p.alive()]
        else:  # nobody cleaned up: the next `up` must notice, not report "already up"
            assert run_cli("status", "--dir", str(lay.root)).returncode == 1
        res = run_cli("up", "--dir", str(lay.root), "--kwok-nodes", "1")
        assert res.returncode == 0, res.stderr
        assert "already up" not in res.stdout
        assert not [p.name for p in first if p.alive()]
        assert run_cli("status", "--dir", str(lay.root)).returncode == 0
    finally:
        if up.poll() is None:
            up.kill()
        run_cli("down", "--dir", str(lay.root))
