"""Command lines of the cluster's processes, as pure functions of the layout, versions and ports.

Kept apart from starting them so the flags can be read (and reviewed) in one place.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import yaml

from .layout import HACK, Layout, Versions
from .nodeconfig import NODE_NAME, NodePaths
from .nodenet import NodeNet
from .pki import SERVICE_CIDR

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_LABELS = "type=container,nvidia.com/gpu.present=true"


@dataclass(frozen=True)
class Ports:
    """TCP ports, picked free at `up` and saved in the state file: on 127.0.0.1, but the apiserver's, which
    is on the host's end of the node network so that pods reach it too (nodenet.py)."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    apiserver_host: str

    @property
    def server(self) -> str:
        return f"https://{self.apiserver_host}:{self.apiserver}"


def etcd(v: Versions, lay: Layout, p: Ports) -> list[str]:
    client, peer = f"http://127.0.0.1:{p.etcd_client}", f"http://127.0.0.1:{p.etcd_peer}"
    return [
        str(v.binary("etcd")), "--name=default", f"--data-dir={lay.etcd_data}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}", "--initial-cluster-state=new",
        # A throwaway dev cluster: durability is not worth an fsync per write on a shared disk.
        "--unsafe-no-fsync", "--quota-backend-bytes=4294967296", "--log-level=warn",
    ]


def apiserver(v: Versions, lay: Layout, p: Ports) -> list[str]:
    pki = lay.pki
    return [
        str(v.binary("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
        f"--bind-address={p.apiserver_host}", f"--secure-port={p.apiserver}",
        # The kubernetes Service's endpoint: pods reach the apiserver through kube-proxy's rules.
        f"--advertise-address={p.apiserver_host}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}", f"--token-auth-file={pki / 'tokens.csv'}",
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--authorization-mode=Node,RBAC",
        # ServiceAccount, NamespaceLifecycle, DefaultStorageClass, ... are on by default; NodeRestriction is not.
        "--enable-admission-plugins=NodeRestriction",
        f"--service-account-issuer={SA_ISSUER}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true",
        # logs, exec and port-forward: a client certificate toward kubelets, whose serving certificates are checked.
        f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--cert-dir={pki / 'apiserver-generated'}",
        "--profiling=false", "--event-ttl=1h0m0s",
    ]


def controller_manager(v: Versions, lay: Layout, p: Ports) -> list[str]:
    kc = lay.kubeconfig_of("controller-manager")
    pki = lay.pki
    return [
        str(v.binary("kube-controller-manager")),
        f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1", f"--secure-port={p.controller_manager}",
        "--controllers=*",  # every default controller: garbage collector, job, namespace, serviceaccount(-token), ...
        "--use-service-account-credentials=true",  # each controller acts as its own ServiceAccount (real RBAC)
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--leader-elect=false",  # one instance; skipping the election saves seconds at start
        "--kube-api-qps=200", "--kube-api-burst=400",  # scale tests create thousands of pods
    ]


def scheduler(v: Versions, lay: Layout, p: Ports) -> list[str]:
    kc = lay.kubeconfig_of("scheduler")
    config = lay.config / "scheduler.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kc), "qps": 200, "burst": 400},
        "leaderElection": {"leaderElect": False},
    }))
    return [
        str(v.binary("kube-scheduler")), f"--config={config}",
        f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
        "--bind-address=127.0.0.1", f"--secure-port={p.scheduler}",
    ]


def containerd(node: NodePaths) -> list[str]:
    return ["containerd", f"--config={node.containerd_config}", "--log-level=warn"]


def kubelet(v: Versions, lay: Layout, net: NodeNet, node: NodePaths) -> list[str]:
    return [
        str(v.binary("kubelet")), f"--config={node.kubelet_config}",
        f"--kubeconfig={lay.kubeconfig_of('kubelet')}", f"--root-dir={node.kubelet_root}",
        f"--hostname-override={NODE_NAME}", f"--node-ip={net.node_ip}",
        f"--node-labels={NODE_LABELS}", "--v=1",
    ]


def kube_proxy(v: Versions, node: NodePaths) -> list[str]:
    return [str(v.binary("kube-proxy")), f"--config={node.kube_proxy_config}", "--v=1"]


def kwok(v: Versions, lay: Layout) -> list[str]:
    return [
        str(v.binary("kwok")),
        f"--kubeconfig={lay.kubeconfig_of('kwok')}",
        f"--config={HACK / 'kwok' / 'stages.yaml'}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        "--cidr=10.64.0.0/12",  # room for many thousands of fake pod IPs
        "--node-ip=10.63.0.1",
        "--node-lease-duration-seconds=40",
    ]


def provisioner(lay: Layout) -> list[str]:
    return [sys.executable, str(HACK / "local_path_provisioner.py"),
            f"--kubeconfig={lay.kubeconfig_of('provisioner')}", f"--claims-dir={lay.volumes}"]


def kwok_node(name: str, gpus: int, gpu_product: str) -> dict:
    """A fake GPU node; tainted so that only pods that ask for kwok (toleration) land on it."""
    capacity = {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "1Ti", "pods": "500",
                "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node.kubernetes.io/instance-type": "fake-gpu",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": gpu_product,
                "nvidia.com/gpu.count": str(gpus),
            },
        },
        "spec": {"taints": [{"key": KWOK_NODE_ANNOTATION, "value": "fake", "effect": "NoSchedule"}]},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }

