"""Where a local cluster keeps its files, and where the built binaries live.

One directory holds one cluster (default `<repo>/.cluster`, or `$SEQMODEL_CLUSTER_DIR`), so two
clusters on one machine only need two directories: ports are picked at start and saved in the state.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubelet", "kube-proxy",
            "coredns", "pause")


class ClusterError(RuntimeError):
    """A one-line, user-facing reason why a cluster command cannot go on."""


@dataclass(frozen=True)
class Layout:
    """Paths inside one cluster directory. Volumes and logs survive `down`; etcd data does not."""

    root: Path

    @classmethod
    def default(cls) -> "Layout":
        return cls(Path(os.environ.get("SEQMODEL_CLUSTER_DIR") or REPO / ".cluster").resolve())

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (user `admin`, group system:masters)."""
        return self.root / "kubeconfig"

    @property
    def kubeconfigs(self) -> Path:
        """Per-component kubeconfigs, each with its own token and identity."""
        return self.root / "kubeconfigs"

    def kubeconfig_of(self, identity: str) -> Path:
        """The kubeconfig `up` writes for a pki.Identity name: `admin` is the admin kubeconfig."""
        return self.kubeconfig if identity == "admin" else self.kubeconfigs / f"{identity}.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def volumes(self) -> Path:
        """PersistentVolumeClaim `<claim>` of any namespace is the host directory `volumes/<claim>`."""
        return self.root / "volumes"

    @property
    def node(self) -> Path:
        """The real node: containerd's images (kept across down/up), its state, the kubelet's directory."""
        return self.root / "node"

    @property
    def config(self) -> Path:
        """Generated component configuration (scheduler config, kwok config)."""
        return self.root / "config"


@dataclass(frozen=True)
class Versions:
    """Pinned versions and the binary cache, read from hack/versions.sh (the one source of truth)."""

    k8s: str
    etcd: str
    kwok: str
    helm: str
    coredns: str
    bin_dir: Path

    @classmethod
    def load(cls) -> "Versions":
        script = (
            f'source "{HACK / "versions.sh"}" && printf "%s\\n" "$K8S_VERSION" "$ETCD_VERSION" '
            '"$KWOK_VERSION" "$HELM_VERSION" "$COREDNS_VERSION" "$SEQMODEL_K8S_BIN"'
        )
        out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True).stdout.split("\n")
        return cls(*out[:5], Path(out[5]))

    def binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not os.access(path, os.X_OK):
            raise ClusterError(f"{name} not found in {self.bin_dir}: run `make binaries`")
        return path

    def check(self) -> None:
        missing = [b for b in BINARIES if not os.access(self.bin_dir / b, os.X_OK)]
        if missing:
            raise ClusterError(f"missing {', '.join(missing)} in {self.bin_dir}: run `make binaries`")
