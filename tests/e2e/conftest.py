"""End-to-end fixtures: one local cluster per test session, a fresh namespace and clients per test.

The session starts its own cluster in `.cluster/e2e/` (never touching a cluster you started with
`make cluster-up`) and stops it at the end. To run against a cluster that is already up, set
`SEQMODEL_TEST_KUBECONFIG` to its kubeconfig (e.g. `.cluster/kubeconfig`); it is then left running.
Every test under tests/e2e is marked `e2e`.

Pods run on the real node `node-0` (kubelet, containerd, runc) from the images `make images` built, which
the `images` fixture imports into it; kwok nodes take the pods of scale tests.

Operator tests: `operator` installs the CRDs and the operator for the session as users do, with
`helm install` of the chart: its pod runs on node-0 from the operator image, with the chart's
ServiceAccount and RBAC, and watches namespaces `e2e-op-*` (its log is saved to
<cluster>/logs/operator.log at the end); `op_namespace` makes such a namespace and `claims(ns)` data and
output PVCs with the sample data. Tests that must stop and start an operator at chosen moments run their
own on the host (`e2e_support.OperatorProcess`, the same code) for a namespace outside that glob.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from e2e_support import (CHART, OPERATOR_GLOB, REPO, UP_TIMEOUT, Claims, Release, chart_image, install_crds,
                         make_claims, new_namespace, remove_claim_dirs, run_cli, stop_runs)
from localcluster import images as local_images
from localcluster.layout import Layout, Versions
from localcluster.nodeconfig import NodePaths


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

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60,
                input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args], capture_output=True,
                              text=True, check=check, timeout=timeout, input=input)

    def cli(self, *args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess:
        """`hack/cluster.py <args> --dir <this cluster>`."""
        return run_cli(*args, "--dir", str(self.layout.root), timeout=timeout)

    @property
    def containerd(self) -> Path:
        """node-0's containerd socket."""
        return NodePaths(self.layout.node).containerd_socket


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    external = os.environ.get("SEQMODEL_TEST_KUBECONFIG")
    if external:
        kubeconfig = Path(external).resolve()
        if not (kubeconfig.parent / "state.json").exists():
            pytest.fail(f"SEQMODEL_TEST_KUBECONFIG={external} is not the kubeconfig of a local cluster "
                        "(no state.json next to it); these tests need its node's containerd and volumes")
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


@pytest.fixture(scope="session")
def images(cluster: Cluster) -> dict[str, str]:
    """{"trainer": ref, "operator": ref}: the images of the current sources (`make images` built them, as
    `make test` does first), imported into node-0's containerd."""
    found = local_images.refs()
    missing = [b.ref for b in found.values() if not b.id]
    if missing:
        pytest.fail(f"images of the current sources are not built: run `make images` ({', '.join(missing)})")
    local_images.import_images(str(cluster.containerd), [r for b in found.values() for r in (b.ref, b.plain)],
                               root=NodePaths(cluster.layout.node).containerd_root)
    return {name: b.ref for name, b in found.items()}


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
    _delete_namespace(core, name)


def _delete_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


# --- Helm releases of the chart -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def helm_bin() -> Path:
    return Versions.load().binary("helm")


@pytest.fixture
def install(cluster, helm_bin: Path, images: dict[str, str]) -> Iterator[Callable[..., Release]]:
    """`install(namespace, **values)`: a release of the chart (replicas 0 and the trainer image built here
    unless given), uninstalled after the test."""
    made: list[Release] = []

    def make(namespace: str, **values: Any) -> Release:
        release = Release(f"so-{uuid.uuid4().hex[:6]}", namespace, cluster.kubectl, cluster.kubeconfig, helm_bin)
        release.helm("install", release.name, str(CHART), "--wait", "--timeout=120s",
                     values={"replicas": 0, "trainerImage": chart_image(images["trainer"]), **values})
        made.append(release)
        return release

    yield make
    for release in made:
        release.helm("uninstall", release.name, "--ignore-not-found", check=False)


# --- the operator (issue 4) ------------------------------------------------------------------------
SESSION_OPERATOR_NAMESPACE = "seqmodel-e2e"  # outside the glob it watches
@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    """The SeqTrainingJob CRD (manifests/crd/), applied and Established."""
    install_crds(cluster.kubectl)


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crds: None, images: dict[str, str], helm_bin: Path) -> Iterator[Release]:
    """The session's operator: a release of the chart in namespace `seqmodel-e2e`, in the cluster from the
    images built here, watching namespaces `e2e-op-*` (the `op_namespace` fixture). Tests that kill an
    operator start their own (`OperatorProcess`) for a namespace outside that glob, so this one is never
    disturbed."""
    release = Release("session", SESSION_OPERATOR_NAMESPACE, cluster.kubectl, cluster.kubeconfig, helm_bin)
    release.helm("upgrade", "--install", release.name, str(CHART), "--create-namespace", "--wait", "--timeout=300s",
                 values={"image": chart_image(images["operator"]), "trainerImage": chart_image(images["trainer"]),
                         "watchNamespacePatterns": [OPERATOR_GLOB]})
    try:
        yield release
    finally:
        log = cluster.kubectl("logs", "-n", release.namespace, f"deploy/{release.fullname}", check=False)
        (cluster.layout.logs / "operator.log").write_text(log.stdout + log.stderr)
        release.helm("uninstall", release.name, "--wait", check=False)


@pytest.fixture
def op_namespace(core: client.CoreV1Api, operator: Release, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace the session's operator watches (`e2e-op-...`)."""
    name = new_namespace(core, f"op-{request.node.name}")
    yield name
    _delete_namespace(core, name)


@pytest.fixture
def claims(cluster: Cluster, core: client.CoreV1Api) -> Iterator[Callable[[str], Claims]]:
    """`claims(ns)`: data and output PVCs unique to the test, the data one seeded with data/genome;
    their directories are removed after the test."""
    made: list[tuple[str, Claims]] = []

    def make(ns: str) -> Claims:
        made.append((ns, make_claims(core, cluster.layout.volumes, ns)))
        return made[-1][1]

    yield make
    for ns, c in made:
        stop_runs(core.api_client, ns)  # so no pod writes there again after the directories are gone
        remove_claim_dirs(c)
