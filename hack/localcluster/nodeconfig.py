"""Configuration files of the real node (containerd, CNI, kubelet, kube-proxy, CoreDNS), as pure functions.

Kept apart from starting anything so every setting can be read, reviewed and unit-tested in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .nodenet import NodeNet

NODE_NAME = "node-0"
CLUSTER_DOMAIN = "cluster.local"
DNS_SERVICE_IP = "10.96.0.10"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # the name the kubelet and containerd expect for the sandbox
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
KUBELET_PORT = 10250
# Fixed by containerd 1.6 and the kubelet, whatever their configuration: down removes what is ours there.
SHIM_SOCKET_DIR = Path("/run/containerd/s")
CONTAINER_LOG_LINKS = Path("/var/log/containers")


@dataclass(frozen=True)
class NodePaths:
    """Where the node keeps its files inside one cluster directory."""

    root: Path  # <cluster>/node

    @property
    def containerd_root(self) -> Path:
        """Images and snapshots: kept across down/up, so images are imported once per cluster directory."""
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        """Sockets, task state and pod network namespaces: removed by down."""
        return self.root / "run"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_state / "containerd.sock"

    @property
    def containerd_config(self) -> Path:
        return self.root / "config" / "containerd.toml"

    @property
    def runc_root(self) -> Path:
        return self.containerd_state / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "config" / "cni"

    @property
    def cni_data(self) -> Path:
        """host-local IPAM's leases."""
        return self.containerd_state / "cni"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "config" / "kubelet.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "config" / "kube-proxy.yaml"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"


def containerd(p: NodePaths) -> str:
    """containerd 1.6's config (version 2). TOML written by hand: it is a handful of fixed keys."""
    return f"""\
version = 2
root = {json.dumps(str(p.containerd_root))}
state = {json.dumps(str(p.containerd_state))}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.opt"]  # it would create /opt/containerd

[grpc]
  address = {json.dumps(str(p.containerd_socket))}

[ttrpc]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE here: runc may not lower a container's oom_score_adj below its parent's.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state directory, not /var/run/netns: down removes them with it.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = {json.dumps(str(p.runc_root))}  # not /run/containerd/runc

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {json.dumps(str(CNI_BIN_DIR))}
    conf_dir = {json.dumps(str(p.cni_conf_dir))}
    max_conf_num = 1
"""


def cni(net: NodeNet, p: NodePaths) -> dict:
    """One bridge network: pods on cni0, the node as their gateway, no masquerading."""
    return {
        "cniVersion": "1.0.0",
        "name": "seqmodel",
        "plugins": [{
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": net.pod_cidr, "gateway": net.pod_gateway}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(p.cni_data),
            },
        }],
    }


def kubelet(net: NodeNet, p: NodePaths, pki: Path) -> dict:
    """KubeletConfiguration. Listens on the node address (API) and the namespace's loopback (healthz) only."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": net.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{p.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{net.cgroup_root}",  # removed by down
        "cgroupsPerQOS": True,
        "failCgroupV1": False,  # this machine has cgroup v1 only
        "failSwapOn": False,
        "clusterDNS": [DNS_SERVICE_IP],
        "clusterDomain": CLUSTER_DOMAIN,
        "resolvConf": "",  # pods resolve through CoreDNS only; nothing forwards outside the cluster
        # The disk is shared with the rest of the machine: evict only when it is truly full, and never
        # collect the images imported from local builds (there is no registry to pull them again).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "maxPods": 110,
        "registerNode": True,
        "nodeStatusReportFrequency": "10s",
        "containerLogMaxSize": "50Mi",
        "podLogsDir": str(p.pod_logs),
    }


def kube_proxy(net: NodeNet, kubeconfig: Path) -> dict:
    """KubeProxyConfiguration, iptables mode. Conntrack limits are left as they are (they are machine-wide)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": net.node_ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": ["primary"],  # NodePorts on the node's address only
        "mode": "iptables",
        "clusterCIDR": net.pod_cidr,
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def write(net: NodeNet, p: NodePaths, pki: Path, proxy_kubeconfig: Path) -> None:
    """Write every node config file (regenerated at each `up`: the cluster index may change)."""
    p.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    p.containerd_config.write_text(containerd(p))
    (p.cni_conf_dir / "10-seqmodel.conflist").write_text(json.dumps(cni(net, p), indent=2) + "\n")
    p.kubelet_config.write_text(yaml.safe_dump(kubelet(net, p, pki), sort_keys=False))
    p.kube_proxy_config.write_text(yaml.safe_dump(kube_proxy(net, proxy_kubeconfig), sort_keys=False))
