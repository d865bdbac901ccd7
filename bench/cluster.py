"""The local cluster of the benchmarks that need one: started fresh in .cluster/bench and stopped at the end,
or, with SEQMODEL_BENCH_KUBECONFIG set, a running cluster that is left as it is.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "hack"))

from kubernetes import client, config  # noqa: E402

from localcluster.bootstrap import default_sa_exists  # noqa: E402
from localcluster.control import Options, down, up  # noqa: E402
from localcluster.layout import Layout  # noqa: E402
from localcluster.procs import free_ports  # noqa: E402

BENCH_DIR = REPO / ".cluster" / "bench"

__all__ = ["BENCH_DIR", "Cluster", "Options", "REPO", "admin_client", "bench_cluster", "free_ports", "new_namespace"]


@dataclass(frozen=True)
class Cluster:
    kubeconfig: str  # admin (system:masters)
    start_s: float | None  # seconds `up` took; None when SEQMODEL_BENCH_KUBECONFIG named a running cluster
    logs: Path  # where a benchmark puts the logs of processes it starts


@contextmanager
def bench_cluster(options: Options) -> Iterator[Cluster]:
    """A fresh cluster in .cluster/bench (a stale one there is stopped first), stopped on exit."""
    kubeconfig = os.environ.get("SEQMODEL_BENCH_KUBECONFIG")
    if kubeconfig:
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        yield Cluster(kubeconfig, None, BENCH_DIR)
        return
    lay = Layout(BENCH_DIR)
    down(lay, say=lambda _: None)
    start_s = up(lay, options, say=lambda m: print(f"bench: {m}", file=sys.stderr))
    try:
        yield Cluster(str(lay.kubeconfig), start_s, lay.logs)
    finally:
        down(lay, say=lambda _: None)


def admin_client(kubeconfig: str, threads: int = 8) -> client.ApiClient:
    """An ApiClient with one pooled connection per client thread (and some for watches)."""
    conf = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    conf.connection_pool_maxsize = threads * 2
    return client.ApiClient(conf)


def new_namespace(api: client.ApiClient, prefix: str, timeout: float = 60.0) -> str:
    """A fresh namespace `<prefix>-<random>`, returned once its default ServiceAccount exists."""
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    deadline = time.monotonic() + timeout
    while not default_sa_exists(api, ns):
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: no ServiceAccount {ns}/default after {timeout:.0f} s")
        time.sleep(0.2)
    return ns
