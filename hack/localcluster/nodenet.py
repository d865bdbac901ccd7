"""The real node's network: its own network namespace, joined to the host by one veth pair.

Everything the node changes in the network (the pods' bridge, kube-proxy's and the kubelet's iptables
rules, per-namespace sysctls) lives inside the namespace, so deleting it undoes them all and several
clusters can run side by side. Addresses, for cluster index k (picked free at `up`):

    host      smh<k>  10.250.<k>.1/30   the apiserver listens here (pods reach it through the kubernetes Service)
    node      eth0    10.250.<k>.2/30   the node's InternalIP: kubelet API (logs, exec), kube-proxy
    pods      cni0    10.244.<k>.1/24   the CNI bridge, gateway of the pod range 10.244.<k>.0/24

The host gets one route, for the pod range through the node; the namespace has no default route, so
nothing from a pod or the node can reach an address outside the cluster.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .layout import ClusterError

NETNS_DIR = Path("/run/netns")
PREFIX = "seqmodel-"


@dataclass(frozen=True)
class NodeNet:
    """The names and addresses of cluster index `index` (0..255)."""

    index: int

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def cgroup_root(self) -> str:
        """The kubelet's cgroup root, in every hierarchy (hoststate makes and removes it)."""
        return f"{PREFIX}{self.index}"

    @property
    def host_link(self) -> str:
        return f"smh{self.index}"

    @property
    def host_ip(self) -> str:
        return f"10.250.{self.index}.1"

    @property
    def node_ip(self) -> str:
        return f"10.250.{self.index}.2"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.244.{self.index}.1"

    def enter(self) -> list[str]:
        """argv prefix that runs a command inside the namespace, sharing the host's mounts.

        Not `ip netns exec`: it gives each command a private mount namespace, and the kubelet and
        containerd must see each other's mounts.
        """
        return ["nsenter", f"--net={self.netns_path}", "--"]


def _ip(*args: str, ns: NodeNet | None = None) -> None:
    argv = [*(ns.enter() if ns else []), "ip", *args]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"`{' '.join(argv)}` failed: {res.stderr.strip()}")


def _sysctl(ns: NodeNet, key: str, value: str) -> None:
    """A per-namespace sysctl, written through /proc/sys as seen from inside the namespace."""
    path = "/proc/sys/" + key.replace(".", "/")
    argv = [*ns.enter(), "sh", "-c", f"echo {value} > {path}"]
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"cannot set {key}={value} in netns {ns.netns}: {res.stderr.strip()}")


def taken() -> set[int]:
    """Indexes in use on this machine by any cluster (ours or another directory's)."""
    used = {int(p.name[len(PREFIX):]) for p in NETNS_DIR.glob(f"{PREFIX}*") if p.name[len(PREFIX):].isdigit()}
    links = Path("/sys/class/net")
    used |= {int(p.name[3:]) for p in links.glob("smh*") if p.name[3:].isdigit()}
    return used


def pick(preferred: int) -> NodeNet:
    """The first free index from `preferred` on (a cluster directory keeps its index when it can)."""
    used = taken()
    for i in range(256):
        k = (preferred + i) % 256
        if k not in used:
            return NodeNet(k)
    raise ClusterError("no free cluster network index: 256 local clusters are running")


def create(net: NodeNet) -> None:
    """The namespace, the veth pair, the bridge and the host route; undone by delete()."""
    if net.netns_path.exists() or Path(f"/sys/class/net/{net.host_link}").exists():
        raise ClusterError(f"network {net.netns} or link {net.host_link} already exists: another cluster?")
    _ip("netns", "add", net.netns)
    try:
        _ip("link", "add", net.host_link, "type", "veth", "peer", "name", "eth0", "netns", net.netns)
        _ip("addr", "add", f"{net.host_ip}/30", "dev", net.host_link)
        _ip("link", "set", net.host_link, "up")
        _ip("link", "set", "lo", "up", ns=net)
        _ip("addr", "add", f"{net.node_ip}/30", "dev", "eth0", ns=net)
        _ip("link", "set", "eth0", "up", ns=net)
        # The CNI bridge plugin reuses an existing bridge; made here so the address plan is in one place.
        _ip("link", "add", "cni0", "type", "bridge", ns=net)
        _ip("addr", "add", f"{net.pod_gateway}/24", "dev", "cni0", ns=net)
        _ip("link", "set", "cni0", "up", ns=net)
        # Host -> pods (replies to pods that call the apiserver, kubectl port-forward): through the node only.
        _ip("route", "add", net.pod_cidr, "via", net.node_ip, "dev", net.host_link)
        _sysctl(net, "net.ipv4.ip_forward", "1")  # the node routes between its pods and the host
        _sysctl(net, "net.bridge.bridge-nf-call-iptables", "1")  # Service NAT for pod-to-pod on the bridge
    except BaseException:
        delete(net)
        raise


def delete(net: NodeNet) -> None:
    """Remove the namespace (its links, rules and sysctls go with it) and the host's end of the pair."""
    if Path(f"/sys/class/net/{net.host_link}").exists():
        subprocess.run(["ip", "link", "del", net.host_link], capture_output=True)
    if net.netns_path.exists():
        subprocess.run(["ip", "netns", "del", net.netns], capture_output=True)
