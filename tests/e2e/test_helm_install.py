"""`helm install` of charts/seqmodel-operator on the local cluster, and the operator with its identity.

The chart is installed with `replicas: 0` (its Deployment stays, restricted and checked, but runs no pod),
and the operator runs on the host as the chart's ServiceAccount: a token from `kubectl create token` in a
kubeconfig of its own, its settings the chart's ConfigMap (what the Deployment's envFrom gives the pod).
Its log stays a file the tests read for refused requests, and it can be restarted at a chosen moment. So
the example job going to Succeeded on node-0 shows the RBAC is sufficient, and `kubectl auth can-i --list`
against tests/security_policy.py shows it is minimal. The operator's own pod from its image is
test_operator_in_cluster's. Each release has a unique name and lives in the test's namespace; teardown
uninstalls it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from e2e_support import (CHART, RUN_TIMEOUT, SMALL, Claims, OperatorProcess, Release, child_jobs,
                         example_job_succeeds, get_stj, job_pods, kubectl_apply, new_namespace, pid_alive, small_job,
                         trainer_pid, wait_stj_phase)
from seqmodel_operator.crd import all_crds
from security_policy import (NAMESPACED_PERMISSIONS, OPERATOR_PERMISSIONS, SCOPED_CLUSTER_PERMISSIONS,
                             restricted_violations)


@pytest.fixture
def operator_as(cluster, tmp_path: Path) -> Iterator[Callable[[Release, list[str]], OperatorProcess]]:
    """`operator_as(release, namespaces)`: `python -m seqmodel_operator` on the host with the release's
    identity and settings, stopped after the test."""
    started: list[OperatorProcess] = []

    def start(release: Release, namespaces: list[str]) -> OperatorProcess:
        kubeconfig = release.token_kubeconfig(tmp_path / f"{release.name}-{len(started)}.kubeconfig")
        proc = OperatorProcess(kubeconfig, namespaces, cluster.layout.logs / f"operator-{release.name}.log",
                               env=release.settings())
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


def forbidden_lines(log: Path) -> list[str]:
    """Lines of the operator's log about a refused request: kopf retries a 403 and then goes on without
    (a warning, no Event, a namespace assumed), so a job can succeed while something was refused."""
    refused = re.compile(r"\b403\b|[Ff]orbidden|[Nn]ot enough permissions")

    def text(line: str) -> str:  # a JSON record's message: its timestamp and UIDs may hold "403" by chance
        try:
            return str(json.loads(line).get("message", ""))
        except (ValueError, AttributeError):
            return line

    return [line for line in log.read_text().splitlines() if refused.search(text(line))]


def pod_specs(kubectl: Callable[..., subprocess.CompletedProcess], ns: str, selector: str) -> list[dict[str, Any]]:
    """Pod specs as the API server holds them (defaults applied), raw JSON."""
    items = json.loads(kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout)["items"]
    return [p["spec"] for p in items]


# --- RBAC ------------------------------------------------------------------------------------------------
def can_i(kubectl: Callable[..., subprocess.CompletedProcess], user: str, ns: str) -> set[tuple[str, ...]]:
    """`kubectl auth can-i --list --as=USER -n NS`, one entry per (group, resource, verb) or
    ("nonResourceURL", path, verb); a rule limited to resourceNames keeps them as a fourth item."""
    lines = kubectl("auth", "can-i", "--list", f"--as={user}", "-n", ns).stdout.splitlines()
    header = lines[0]
    starts = [header.index(col) for col in ("Resources", "Non-Resource URLs", "Resource Names", "Verbs")]
    bounds = list(zip(starts, starts[1:] + [None]))
    found: set[tuple[str, ...]] = set()
    for line in lines[1:]:
        resource, urls, names, verbs = (line[a:b].strip() for a, b in bounds)
        verb_list = verbs.strip("[]").split()
        for verb in verb_list:
            if resource:
                name, _, sub = resource.partition("/")
                plural, _, group = name.partition(".")
                entry: tuple[str, ...] = (group, plural + (f"/{sub}" if sub else ""), verb)
                found.add(entry + ((names,) if names != "[]" else ()))
            else:
                found |= {("nonResourceURL", url, verb) for url in urls.strip("[]").split()}
    return found


def test_can_i_parsing_reads_resources_groups_and_urls(cluster, namespace) -> None:
    """The parser on the real output for a user with known rights: the namespace's default ServiceAccount
    holds exactly what every authenticated user holds."""
    rights = can_i(cluster.kubectl, f"system:serviceaccount:{namespace}:default", namespace)
    assert ("authorization.k8s.io", "selfsubjectaccessreviews", "create") in rights
    assert ("nonResourceURL", "/version", "get") in rights
    assert not any(r[1] in ("pods", "secrets", "jobs") for r in rights)


def test_the_operators_rights_are_exactly_the_allow_list(cluster, core, namespace, install) -> None:
    """Beyond what every ServiceAccount may do (the namespace's `default` one is the baseline): exactly
    tests/security_policy.py's permissions, in watched namespaces; only cluster-scoped reads (CRDs,
    namespaces) elsewhere when the install is namespace-scoped. No wildcard, no secrets, no
    resourceNames, no URLs: nothing else."""
    other = new_namespace(core, "helm-unwatched")
    try:
        wide = install(namespace)
        scoped = install(namespace, watchNamespaces=[namespace])
        baseline = can_i(cluster.kubectl, f"system:serviceaccount:{namespace}:default", namespace)
        expected = [(wide, namespace, OPERATOR_PERMISSIONS), (wide, other, OPERATOR_PERMISSIONS),
                    (scoped, namespace, NAMESPACED_PERMISSIONS | SCOPED_CLUSTER_PERMISSIONS),
                    (scoped, other, SCOPED_CLUSTER_PERMISSIONS)]
        for release, ns, allowed in expected:
            rights = can_i(cluster.kubectl, release.user, ns)
            assert baseline <= rights
            assert not any("*" in part for entry in rights - baseline for part in entry), rights - baseline
            assert not any(entry[1] in ("secrets", "serviceaccounts/token") for entry in rights)
            extra = rights - baseline
            assert extra == allowed, (release.name, ns, sorted(extra ^ allowed))
    finally:
        core.delete_namespace(other)


# --- the operator with the chart's identity --------------------------------------------------------------
@pytest.mark.slow
def test_the_example_job_succeeds_with_the_charts_identity(cluster, api, batch, namespace, claims, install,
                                                           operator_as) -> None:
    c = claims(namespace)
    release = install(namespace, watchNamespaces=[namespace])
    deploy = release.get("deployment")
    assert deploy["spec"]["replicas"] == 0 and release.get("serviceaccount") is not None
    assert list(restricted_violations(deploy["spec"]["template"]["spec"])) == []  # as the API server holds it
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == release.fullname
    operator = operator_as(release, [namespace])

    _, child = example_job_succeeds(cluster.kubectl, api, batch, namespace, c)
    pods = pod_specs(cluster.kubectl, namespace, f"job-name={child.metadata.name}")
    assert pods
    for pod in pods:  # every pod the operator made
        assert list(restricted_violations(pod)) == []
        assert pod["automountServiceAccountToken"] is False
    assert forbidden_lines(operator.log) == []


@pytest.mark.slow
def test_helm_upgrade_keeps_a_running_job_running(cluster, api, batch, core, namespace, claims, install,
                                                  operator_as) -> None:
    """An upgrade with a changed value restarts the operator (its pod template's checksum changes; here the
    host operator is restarted with the new settings, as Recreate would); the training pod runs on, the
    same pod and process, and finishes without a retry."""
    c = claims(namespace)
    release = install(namespace, watchNamespaces=[namespace])
    operator = operator_as(release, [namespace])
    job = small_job("upgrade", c, hparams={**SMALL, "max_steps": 600})  # long enough to upgrade mid-run
    assert kubectl_apply(cluster.kubectl, namespace, job).returncode == 0
    obj = wait_stj_phase(api, namespace, "upgrade", "Running", RUN_TIMEOUT)
    (child,) = child_jobs(batch, namespace, obj["metadata"]["uid"])
    pod_name, pid = trainer_pid(core, namespace, child.metadata.name, cluster.containerd)
    pod_uid = core.read_namespaced_pod(pod_name, namespace).metadata.uid
    checksum = release.get("deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    upgraded = release.helm("upgrade", release.name, str(CHART), "--reuse-values", "--wait",
                            values={"settings": {"workerLimit": 7}})
    assert "STATUS: deployed" in upgraded.stdout and "REVISION: 2" in upgraded.stdout
    assert release.settings()["SEQMODEL_OPERATOR_WORKER_LIMIT"] == "7"
    deploy = release.get("deployment")
    assert deploy["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != checksum
    assert deploy["spec"]["replicas"] == 0  # --reuse-values kept it
    operator.stop()
    operator_as(release, [namespace])

    pod = core.read_namespaced_pod(pod_name, namespace)
    assert pod.metadata.uid == pod_uid and pod.status.phase == "Running" and pid_alive(pid)
    assert pod.status.container_statuses[0].restart_count == 0
    done = wait_stj_phase(api, namespace, "upgrade", "Succeeded", RUN_TIMEOUT)
    assert [p.metadata.uid for p in job_pods(core, namespace, child.metadata.name)] == [pod_uid]
    assert done["status"]["replicates"][0]["restarts"] == 0
    assert [j.metadata.uid for j in child_jobs(batch, namespace, obj["metadata"]["uid"])] == [child.metadata.uid]


def test_helm_uninstall_keeps_crds_jobs_and_data(cluster, api, core, namespace, install) -> None:
    """What uninstall removes (the operator's identity, roles, settings, Deployment) and what it keeps:
    the CRDs (Helm never deletes crds/), every SeqTrainingJob, and the output claim with its runs."""
    claim = f"helm-out-{namespace}"
    release = install(namespace, watchNamespaces=[namespace], settings={"outputClaim": claim},
                      outputClaim={"create": True, "size": "1Gi", "accessModes": ["ReadWriteOnce"]})
    claims = Claims("unused-data", claim, cluster.layout.volumes)
    run_file = claims.output_dir / "runs" / "x" / "version_0" / "metrics.csv"  # a run's output, as a stand-in
    run_file.parent.mkdir(parents=True)
    run_file.write_text("step,val/loss\n100,1.1\n")
    try:
        job = small_job("kept", claims, suspend=True)
        assert kubectl_apply(cluster.kubectl, namespace, job).returncode == 0
        uid = get_stj(api, namespace, "kept")["metadata"]["uid"]

        out = release.helm("uninstall", release.name, "--wait").stdout
        assert f'release "{release.name}" uninstalled' in out

        for kind in ("serviceaccount", "configmap", "deployment", "role", "rolebinding", "clusterrole",
                     "clusterrolebinding"):
            assert release.get(kind) is None, f"{kind} {release.fullname} is left"
        for name in (c["metadata"]["name"] for c in all_crds().values()):
            assert cluster.kubectl("get", "crd", name, check=False).returncode == 0, f"CRD {name} was removed"
        assert get_stj(api, namespace, "kept")["metadata"]["uid"] == uid
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
        assert pvc.metadata.deletion_timestamp is None
        assert run_file.read_text() == "step,val/loss\n100,1.1\n"
    finally:
        cluster.kubectl("delete", "stj/kept", f"pvc/{claim}", "-n", namespace, "--wait=false", check=False)
        shutil.rmtree(claims.output_dir, ignore_errors=True)
