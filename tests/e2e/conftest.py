"""End-to-end fixtures: one local cluster per test session, a fresh namespace and clients per test.

The session starts its own cluster in `.cluster/e2e/` (never touching a cluster you started with
`make cluster-up`) and stops it at the end. To run against a cluster that is already up, set
`SEQMODEL_TEST_KUBECONFIG` to its kubeconfig (e.g. `.cluster/kubeconfig`); it is then left running.
Every test under tests/e2e is marked `e2e`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from e2e_support import REPO, UP_TIMEOUT, new_namespace, run_cli
from localcluster.layout import Layout


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Cluster:
    """A running local cluster as the tests see it."""

    kubeconfig: Path
    layout: Layout  # where its volumes, logs and state live
    started_here: bool

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args], capture_output=True,
                              text=True, check=check, timeout=timeout)

    def cli(self, *args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess:
        """`hack/cluster.py <args> --dir <this cluster>`."""
        return run_cli(*args, "--dir", str(self.layout.root), timeout=timeout)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    external = os.environ.get("SEQMODEL_TEST_KUBECONFIG")
    if external:
        kubeconfig = Path(external).resolve()
        if not (kubeconfig.parent / "state.json").exists():
            pytest.fail(f"SEQMODEL_TEST_KUBECONFIG={external} is not the kubeconfig of a local cluster "
                        "(no state.json next to it); these tests need the process node's host directories")
        yield Cluster(kubeconfig, Layout(kubeconfig.parent), started_here=False)
        return
    lay = Layout(REPO / ".cluster" / "e2e")
    with _only_session(lay), _sigterm_interrupts():
        run_cli("down", "--dir", str(lay.root))  # a cluster left by a killed session is stale
        try:
            res = run_cli("up", "--dir", str(lay.root))
            if res.returncode != 0:
                pytest.fail(f"cluster up failed: {res.stderr.strip() or res.stdout.strip()}")
            yield Cluster(lay.kubeconfig, lay, started_here=True)
        finally:
            run_cli("down", "--dir", str(lay.root))


@contextlib.contextmanager
def _only_session(lay: Layout) -> Iterator[None]:
    """Fail at once when another test session holds the cluster: its first `down` would stop that one's."""
    lay.root.mkdir(parents=True, exist_ok=True)
    with open(lay.root / "session.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail(f"another test session is using the cluster in {lay.root}; wait for it to finish")
        yield


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (`timeout`, CI cancel) ends the session like Ctrl-C, so the teardown still stops the cluster.

    Its processes run in their own sessions and would otherwise outlive a killed pytest.
    """
    def interrupt(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the teardown finish
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def api(cluster: Cluster) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    name = new_namespace(core, request.node.name)
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise
