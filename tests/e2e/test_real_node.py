"""The real node `node-0`: a kubelet with containerd and runc, CoreDNS, kube-proxy, our images.

What a platform engineer would check first: the node is Ready on containerd, the trainer image runs with
its securityContext enforced by the runtime (not only written in the YAML), `kubectl logs` and `exec`
work, pods resolve cluster names and reach the apiserver through its Service, and nothing resolves or
routes outside the cluster.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

from kubernetes import client

from e2e_support import wait_for
from localcluster.control import State
from localcluster.nodeconfig import NODE_NAME

# As the operator renders its pods, user and group by number: a runAsUser the kubelet takes from the image's
# USER comes without the image's group (the gid would be 0), and containerd refuses a group without a user.
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]}}


def python_pod(name: str, image: str, script: str, **spec) -> dict:
    """A pod on node-0 that runs `script` with the image's python, restricted as the operator's pods are."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": RESTRICTED_POD,
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "Never",
                "command": ["python", "-c", textwrap.dedent(script)],
                "securityContext": RESTRICTED_CONTAINER,
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            **spec,
        },
    }


def run_to_end(core: client.CoreV1Api, ns: str, pod: dict, timeout: float = 120) -> tuple[str, str]:
    """Create the pod, wait until it ends; return (phase, its log as `kubectl logs` serves it)."""
    core.create_namespaced_pod(ns, pod)
    name = pod["metadata"]["name"]
    phase = wait_for(lambda: (p := core.read_namespaced_pod(name, ns).status.phase) in ("Succeeded", "Failed") and p,
                     timeout, f"pod {ns}/{name} to end")
    return phase, core.read_namespaced_pod_log(name, ns)


def test_node_0_is_ready_on_containerd_with_a_routable_address(core):
    node = core.read_node(NODE_NAME)
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    addresses = {a.type: a.address for a in node.status.addresses}
    assert addresses["InternalIP"].startswith("10.250.") and addresses["Hostname"] == NODE_NAME
    assert node.status.capacity["nvidia.com/gpu"] == "1"


def test_the_trainer_image_runs_with_its_security_context_enforced(core, namespace, images, cluster):
    script = """
        import errno, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
        print("euid", os.geteuid(), "egid", os.getegid())
        print("CapEff", status["CapEff"].strip(), "NoNewPrivs", status["NoNewPrivs"].strip(),
              "Seccomp", status["Seccomp"].strip())
        try:
            open("/written-to-root", "w")
            print("root write: ok")
        except OSError as e:
            print("root write:", errno.errorcode[e.errno])
        with open("/scratch/ok", "w") as f:
            f.write("x")
        print("scratch write: ok")
        import torch, seqmodel
        print("torch", torch.__version__, "seqmodel", seqmodel.VERSION)
    """
    phase, log = run_to_end(core, namespace, python_pod("restricted", images["trainer"], script))
    assert phase == "Succeeded", log
    lines = log.splitlines()
    assert "euid 1000 egid 1000" in lines  # enforced by runc
    assert "CapEff 0000000000000000 NoNewPrivs 1 Seccomp 2" in lines  # no capabilities, RuntimeDefault filter
    assert "root write: EROFS" in lines
    assert "scratch write: ok" in lines
    # The same log through kubectl (apiserver -> kubelet API on the node's address).
    res = cluster.kubectl("logs", "-n", namespace, "restricted")
    assert res.stdout.splitlines() == lines


def test_kubectl_exec_runs_in_the_container(core, namespace, images, cluster):
    pod = python_pod("sleeper", images["operator"], "import time; time.sleep(300)")
    pod["spec"]["terminationGracePeriodSeconds"] = 1
    core.create_namespaced_pod(namespace, pod)
    wait_for(lambda: core.read_namespaced_pod("sleeper", namespace).status.phase == "Running", 120, "sleeper Running")
    res = cluster.kubectl("exec", "-n", namespace, "sleeper", "--", "python", "-c",
                          "import os; print(os.getuid(), os.uname().nodename)")
    assert res.stdout.split() == ["1000", "sleeper"]


def test_pods_resolve_cluster_names_reach_the_apiserver_and_nothing_outside(core, namespace, images):
    script = """
        import json, socket, ssl, urllib.request
        out = {}
        out["kubernetes"] = socket.gethostbyname("kubernetes.default.svc.cluster.local")
        out["short"] = socket.gethostbyname("kubernetes.default")
        try:
            out["outside"] = socket.gethostbyname("pypi.org")
        except socket.gaierror as e:
            out["outside"] = "unresolved"
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
        req = urllib.request.Request("https://kubernetes.default.svc/version",
                                     headers={"Authorization": "Bearer " + open(sa + "/token").read()})
        out["version"] = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["gitVersion"]
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=3)
            out["route"] = "connected"
        except OSError as e:
            out["route"] = type(e).__name__
        print(json.dumps(out))
    """
    phase, log = run_to_end(core, namespace, python_pod("dns", images["operator"], script))
    assert phase == "Succeeded", log
    out = json.loads(log.strip().splitlines()[-1])
    assert out["kubernetes"] == out["short"] == "10.96.0.1"
    assert out["version"].startswith("v1.")  # TLS to the Service IP, checked against the cluster CA
    assert out["outside"] == "unresolved"  # CoreDNS forwards nowhere
    assert out["route"] != "connected"  # no route from the node's namespace to the machine's network


def test_a_gpu_requesting_pod_schedules_on_node_0_and_runs_on_the_cpu(core, namespace, images):
    pod = python_pod("gpu", images["operator"], "print('ran')")
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    phase, log = run_to_end(core, namespace, pod)
    assert (phase, log.strip()) == ("Succeeded", "ran")
    assert core.read_namespaced_pod("gpu", namespace).spec.node_name == NODE_NAME


def test_every_listener_is_on_loopback_or_the_clusters_own_addresses(cluster):
    """Nothing of the cluster listens on all interfaces: in the node's namespace only its loopback and the
    node's address; on the host only loopback and the host's end of the node's link."""
    state = State.load(cluster.layout)

    def listeners(*prefix: str) -> list[str]:
        out = subprocess.run([*prefix, "ss", "-Htuln"], capture_output=True, text=True, check=True).stdout
        return [line.split()[4] for line in out.splitlines()]  # Local Address:Port

    inside = listeners(*state.net.enter())
    assert len(inside) >= 3, inside  # the kubelet's API and healthz, kube-proxy's healthz and metrics, ...
    assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", state.net.node_ip) for a in inside), inside
    ports = {p for p in vars(state.ports).values() if isinstance(p, int)}
    host = [a for a in listeners() if int(a.rsplit(":", 1)[1]) in ports]
    assert len(host) >= len(ports), host
    assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", state.net.host_ip) for a in host), host
