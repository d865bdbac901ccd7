"""The real node `node-0`: containerd, a kubelet and kube-proxy in the node's network namespace, CoreDNS.

control.py calls these in order: claim_network, prepare_host, start, create_objects, advertise_gpus,
dns_ready; and on the way down remove_containers, then restore_host.
"""

from __future__ import annotations

import shutil
import subprocess
import zlib
from typing import Callable

from kubernetes import client, utils

from . import addons, components, hoststate, images, nodeconfig, nodeimages, nodenet
from .layout import ClusterError, Layout, Versions
from .nodeconfig import NODE_NAME, NodePaths
from .nodenet import NodeNet
from .procs import Proc

__all__ = ["AGENTS", "NODE_NAME", "advertise_gpus", "claim_network", "create_objects", "dns_ready",
           "prepare_host", "remove_containers", "restore_host", "start"]

AGENTS = ("kubelet", "kube-proxy")  # stopped before containerd, so nothing restarts the containers
SOCKET_MAX = 107  # sun_path


def claim_network(lay: Layout) -> NodeNet:
    """A free cluster index; the same one for a directory whenever it is free (its certificates name it)."""
    return nodenet.pick(zlib.crc32(str(lay.root).encode()) % 256)


def prepare_host(net: NodeNet) -> None:
    """The network namespace, the record of the sysctls the kubelet changes, and the kubelet's cgroup root."""
    nodenet.create(net)
    hoststate.save_sysctls()
    hoststate.create_cgroups(net.cgroup_root)


def start(lay: Layout, v: Versions, net: NodeNet, launch: Callable[[str, list[str]], None],
          wait: Callable[[str, Callable[[], bool]], None], say: Callable[[str], None]) -> None:
    """containerd, then its images, then the kubelet and kube-proxy, all inside the node's namespace."""
    paths = NodePaths(lay.node)
    if len(str(paths.containerd_socket)) > SOCKET_MAX:
        raise ClusterError(f"containerd socket path {paths.containerd_socket} is longer than {SOCKET_MAX} "
                           "characters: use a shorter cluster directory (--dir)")
    for d in (paths.containerd_state, paths.kubelet_root):
        shutil.rmtree(d, ignore_errors=True)
    nodeconfig.write(net, paths, lay.pki, lay.kubeconfig_of("kube-proxy"))
    launch("containerd", [*net.enter(), *components.containerd(paths)])
    wait("containerd", lambda: _containerd_up(paths))
    nodeimages.ensure(paths, v, v.bin_dir.parent / "node-images")
    launch("kubelet", [*net.enter(), *components.kubelet(v, lay, net, paths)])
    launch("kube-proxy", [*net.enter(), *components.kube_proxy(v, paths)])
    say(f"node {NODE_NAME} starting: containerd {paths.containerd_socket}, node IP {net.node_ip}")


def _containerd_up(paths: NodePaths) -> bool:
    if not paths.containerd_socket.exists():
        return False
    return subprocess.run(nodeimages.ctr(paths, "version"), capture_output=True).returncode == 0


def create_objects(api: client.ApiClient, v: Versions) -> None:
    """CoreDNS and the apiserver's access to the kubelet API; AlreadyExists is fine (a repeated `up`)."""
    for obj in [*addons.kubelet_api_access(), *addons.coredns(v.coredns)]:
        try:
            utils.create_from_dict(api, obj)
        except utils.FailToCreateError as e:
            if any(err.status != 409 for err in e.api_exceptions):
                raise


def advertise_gpus(api: client.ApiClient, gpus: int) -> None:
    client.CoreV1Api(api).patch_node_status(NODE_NAME, addons.gpu_capacity(gpus))


def dns_ready(api: client.ApiClient) -> bool:
    dep = client.AppsV1Api(api).read_namespaced_deployment("coredns", addons.NS)
    return (dep.status.available_replicas or 0) >= 1


def remove_containers(lay: Layout, net: NodeNet, containerd: list[Proc]) -> list[str]:
    """Kill every container of the node, then delete them from containerd while it still runs.

    Deleted, not only stopped: containerd keeps its metadata across down/up (with the images), and the
    next kubelet would find the old pods' sandboxes there.
    """
    hoststate.kill_cgroup_procs(net.cgroup_root)
    paths = NodePaths(lay.node)
    if not any(p.alive() for p in containerd):
        return []

    def ids(kind: str) -> list[str]:
        return subprocess.run(nodeimages.ctr(paths, kind, "ls", "-q"), capture_output=True, text=True).stdout.split()

    containers = ids("containers")
    # containerd's CRI plugin deletes the tasks of killed containers itself; whatever it has not yet
    # deleted goes here ("not found" from a task it just deleted is fine).
    for cid in ids("tasks"):
        subprocess.run(nodeimages.ctr(paths, "tasks", "delete", "--force", cid), capture_output=True)
    for cid in containers:
        subprocess.run(nodeimages.ctr(paths, "containers", "delete", cid), capture_output=True)
    # A killed shim leaves its socket behind.
    hoststate.remove_files([hoststate.shim_socket(paths.containerd_socket, images.NAMESPACE, c)
                            for c in containers])
    return [f"containerd container {cid}" for cid in ids("containers")]


def restore_host(lay: Layout, net: NodeNet) -> list[str]:
    """After every process is stopped: shims, mounts, cgroups, the network, sysctls. Returns what stayed."""
    paths = NodePaths(lay.node)
    hoststate.kill_cgroup_procs(net.cgroup_root)
    hoststate.kill_matching(str(paths.containerd_socket))  # shims of containers containerd could not delete
    left = [f"mount {m}" for m in hoststate.unmount_under(lay.node)]
    hoststate.remove_files(hoststate.log_links_into(paths.pod_logs))
    for d in (paths.containerd_state, paths.kubelet_root):
        shutil.rmtree(d, ignore_errors=True)
    left += [f"cgroup {d}" for d in hoststate.remove_cgroups(net.cgroup_root)]
    nodenet.delete(net)
    hoststate.restore_sysctls()
    hoststate.release_netns_dir()
    return left
