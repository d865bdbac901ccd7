"""The Helm chart charts/seqmodel-operator, rendered by the helm that `make binaries` builds (no cluster).

Lint, the default and the namespace-scoped renders, the schema refusing bad values by name, restricted
pods, settings that reach the operator's Settings, job template overrides the operator really loads, and
the one source: manifests/rbac/ and manifests/operator/ are the chart's render, its crds/ the generator's.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from operator_support import example
from seqmodel import VERSION
from seqmodel_operator import crd
from seqmodel_operator.plan import make_plan
from seqmodel_operator.render import JOB_TEMPLATE, PACKAGE_TEMPLATES, Replicate, render_job
from seqmodel_operator.settings import PREFIX, Settings
from security_policy import (NAMESPACED_PERMISSIONS, OPERATOR_PERMISSIONS, SCOPED_CLUSTER_PERMISSIONS,
                             restricted_violations, rule_triples)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "seqmodel-operator"
sys.path.insert(0, str(ROOT / "hack"))
from localcluster.layout import Versions  # noqa: E402

RELEASE, NAMESPACE = "seqmodel-operator", "seqmodel-system"
NAMESPACED = {"team-a", "team-b"}
# Settings fields the chart sets from values other than `settings` (each key of settings is a field).
NOT_IN_SETTINGS = {"image": "trainerImage", "image_pull_policy": "trainerImage.pullPolicy",
                   "templates_dir": "jobTemplates"}


@pytest.fixture(scope="module")
def helm() -> Path:
    return Versions.load().binary("helm")  # fails naming `make binaries` when it is not built


def run_helm(helm: Path, *args: str, values: dict[str, Any] | None = None,
             release: str = RELEASE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), "template", release, str(CHART), "--namespace", NAMESPACE, "--values", "-",
                           *args], input=json.dumps(values or {}), capture_output=True, text=True, timeout=60)


def render(helm: Path, values: dict[str, Any] | None = None, release: str = RELEASE) -> list[dict[str, Any]]:
    res = run_helm(helm, values=values, release=release)
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = find(docs, "Deployment")
    return found


def settings_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    (found,) = find(docs, "ConfigMap", RELEASE)
    return found["data"]


# --- lint and metadata -----------------------------------------------------------------------------------
LINT_VALUES = {
    "defaults": {},
    "manifests": yaml.safe_load((CHART / "ci" / "manifests-values.yaml").read_text()),
    "namespaced": {"watchNamespaces": ["team-a"], "replicas": 0, "settings": {"outputClaim": "runs"},
                   "outputClaim": {"create": True}, "jobTemplates": {JOB_TEMPLATE: "x"}},
}


@pytest.mark.parametrize("variant", LINT_VALUES)
def test_lint_is_clean_and_strict(helm: Path, tmp_path: Path, variant: str) -> None:
    """Templates, NOTES.txt included, render cleanly for each kind of install."""
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(LINT_VALUES[variant]))
    res = subprocess.run([str(helm), "lint", "--strict", str(CHART), "--values", str(values)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 chart(s) failed" in res.stdout and "[WARNING]" not in res.stdout and "[ERROR]" not in res.stdout


def test_chart_metadata_is_seqmodels_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "seqmodel-operator" and chart["type"] == "application"
    assert chart["appVersion"] == VERSION and chart["version"] == VERSION
    assert chart["kubeVersion"] == ">=1.30.0-0"


# --- one source ------------------------------------------------------------------------------------------
def test_the_charts_crds_are_the_generated_ones() -> None:
    assert crd.CHART_CRDS == CHART / "crds"
    assert crd.main(["--check"]) == 0  # manifests/crd/ and the chart's crds/ alike
    names = {p.name for p in (CHART / "crds").iterdir()}
    assert names == set(crd.all_crds()) == {p.name for p in crd.MANIFESTS.glob("*.yaml")}
    for name in names:
        assert (CHART / "crds" / name).read_bytes() == (crd.MANIFESTS / name).read_bytes(), name


def manifests_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "hack" / "manifests.py"), "--check", *args],
                          capture_output=True, text=True, timeout=120)


def test_manifests_are_the_charts_render(helm: Path) -> None:
    res = manifests_check()
    assert res.returncode == 0, res.stderr


def test_the_drift_check_names_every_stale_file(helm: Path, tmp_path: Path) -> None:
    for directory in ("rbac", "operator"):
        (tmp_path / directory).mkdir()
        for path in (ROOT / "manifests" / directory).glob("*.yaml"):
            (tmp_path / directory / path.name).write_text(path.read_text())
    assert manifests_check("--out", str(tmp_path)).returncode == 0
    role = tmp_path / "rbac" / "role.yaml"
    role.write_text(role.read_text().replace("verbs: [list]", "verbs: [list, get]"))
    (tmp_path / "operator" / "configmap.yaml").unlink()
    (tmp_path / "rbac" / "left_over.yaml").write_text("kind: Role\n")
    res = manifests_check("--out", str(tmp_path))
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1
    for name in ("rbac/role.yaml", "operator/configmap.yaml", "rbac/left_over.yaml", "make manifests"):
        assert name in res.stderr, name


# --- renders ---------------------------------------------------------------------------------------------
STANDARD_LABELS = ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of")
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace", "CustomResourceDefinition"}


def test_the_default_render_watches_every_namespace(helm: Path) -> None:
    docs = render(helm)
    assert {d["kind"] for d in docs} == {"ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
                                         "Deployment"}
    for d in docs:
        labels = d["metadata"]["labels"]
        assert all(k in labels for k in STANDARD_LABELS), (d["kind"], d["metadata"]["name"])
        assert labels["app.kubernetes.io/version"] == VERSION and labels["helm.sh/chart"] == f"seqmodel-operator-{VERSION}"
        assert (d["metadata"].get("namespace") is None) == (d["kind"] in CLUSTER_SCOPED)
        assert d["metadata"].get("namespace") in (None, NAMESPACE)
    assert rule_triples(find(docs, "ClusterRole", RELEASE)[0]) == OPERATOR_PERMISSIONS
    args = deployment(docs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and "--namespace" not in args
    (sa,) = find(docs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False  # only the operator's pod mounts its token


def test_a_namespace_scoped_install_gets_roles_per_namespace(helm: Path) -> None:
    docs = render(helm, {"watchNamespaces": sorted(NAMESPACED)})
    roles, bindings = find(docs, "Role"), find(docs, "RoleBinding")
    assert {r["metadata"]["namespace"] for r in roles} == {b["metadata"]["namespace"] for b in bindings} == NAMESPACED
    for role in roles:
        assert rule_triples(role) == NAMESPACED_PERMISSIONS
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]
    # Only cluster-scoped reads (CRDs, namespaces) stay in a ClusterRole: nothing on jobs, pods or
    # configmaps cluster-wide.
    assert rule_triples(find(docs, "ClusterRole", RELEASE)[0]) == SCOPED_CLUSTER_PERMISSIONS
    args = deployment(docs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" not in args
    assert {args[i + 1] for i, a in enumerate(args) if a == "--namespace"} == NAMESPACED


def test_a_pattern_scoped_install_is_granted_cluster_wide_and_runs_with_the_patterns(helm: Path) -> None:
    """A Role cannot wait for a namespace that does not exist yet: patterns get the rules cluster-wide, and
    the namespace watch that follows matching namespaces as they come."""
    patterns = ["e2e-op-*", "!*-scratch,lab-?"]
    docs = render(helm, {"watchNamespacePatterns": patterns})
    assert not find(docs, "Role") and not find(docs, "RoleBinding")
    assert rule_triples(find(docs, "ClusterRole", RELEASE)[0]) == OPERATOR_PERMISSIONS | SCOPED_CLUSTER_PERMISSIONS
    args = deployment(docs)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" not in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == patterns  # strings, not YAML


def test_names_and_patterns_exclude_each_other(helm: Path) -> None:
    res = run_helm(helm, values={"watchNamespaces": ["team-a"], "watchNamespacePatterns": ["team-*"]})
    assert res.returncode != 0 and "watchNamespaces and watchNamespacePatterns exclude each other" in res.stderr


def test_two_releases_share_no_cluster_scoped_name(helm: Path) -> None:
    names = [{d["metadata"]["name"] for d in render(helm, release=r) if d["kind"] in CLUSTER_SCOPED}
             for r in ("lab-a", "lab-b")]
    assert names[0] and not names[0] & names[1]


@pytest.mark.parametrize("values,key", [
    ({"replcas": 1}, "replcas"),
    ({"replicas": 2}, "/replicas"),
    ({"replicas": "one"}, "/replicas"),
    ({"image": "seqmodel-operator:1.3.0"}, "/image"),
    ({"image": {"tag": 1.3}}, "/image/tag"),
    ({"settings": {"gpuResorce": "amd.com/gpu"}}, "gpuResorce"),
    ({"settings": {"runAsUser": 0}}, "/settings/runAsUser"),
    ({"settings": {"workerLimit": "many"}}, "/settings/workerLimit"),
    ({"watchNamespaces": ["team-*"]}, "/watchNamespaces/0"),
    ({"watchNamespacePatterns": ["team-*\n- --all-namespaces"]}, "/watchNamespacePatterns/0"),
    ({"watchNamespacePatterns": ["Team_*"]}, "/watchNamespacePatterns/0"),
    ({"healthPort": 80}, "/healthPort"),
    ({"jobTemplates": {"job.yaml": "x"}}, "job.yaml"),
    ({"outputClaim": {"accessModes": ["ReadWriteAll"]}}, "/outputClaim/accessModes/0"),
])
def test_bad_values_are_refused_naming_the_key(helm: Path, values: dict[str, Any], key: str) -> None:
    res = run_helm(helm, values=values)
    assert res.returncode != 0
    assert "values don't meet the specifications of the schema" in res.stderr and key in res.stderr, res.stderr


def test_a_created_output_claim_needs_its_name(helm: Path) -> None:
    res = run_helm(helm, values={"outputClaim": {"create": True}})
    assert res.returncode != 0 and "outputClaim.create needs settings.outputClaim" in res.stderr, res.stderr


# --- pods ------------------------------------------------------------------------------------------------
VARIANTS = {
    "defaults": {},
    "namespaced": {"watchNamespaces": sorted(NAMESPACED)},
    "patterns": {"watchNamespacePatterns": ["team-*"]},
    "stopped": {"replicas": 0},
    "templates": {"jobTemplates": {JOB_TEMPLATE: "x"}, "podAnnotations": {"a": "b"}, "priorityClassName": "high"},
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_pod_is_restricted(helm: Path, variant: str) -> None:
    pods = [d["spec"]["template"]["spec"] for d in render(helm, VARIANTS[variant])
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]
    assert pods
    for pod in pods:
        assert list(restricted_violations(pod)) == []
        assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == RELEASE


def test_one_operator_at_most_replaced_not_overlapped(helm: Path) -> None:
    for replicas in (0, 1):
        spec = deployment(render(helm, {"replicas": replicas}))["spec"]
        assert spec["replicas"] == replicas and spec["strategy"] == {"type": "Recreate"}


# --- settings --------------------------------------------------------------------------------------------
def snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def test_every_operator_setting_is_a_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert {snake(k) for k in values["settings"]} | set(NOT_IN_SETTINGS) == fields


def test_the_default_settings_are_the_operators_defaults(helm: Path) -> None:
    data = settings_data(render(helm))
    assert all(k.startswith(PREFIX) for k in data)
    assert Settings.from_env(data) == Settings()


def test_changed_values_reach_the_operators_config(helm: Path) -> None:
    values = {
        "trainerImage": {"repository": "registry.example/seqmodel-trainer", "tag": "1.3.0-cu13", "pullPolicy": "Always"},
        "settings": {"gpuResource": "amd.com/gpu", "gpuTypeLabel": "amd.com/gpu.product",
                     "tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoExecute"}],
                     "nodeSelector": {"pool": "gpu"}, "scratchStorageClass": "local-nvme", "scratchSize": "200Gi",
                     "outputClaim": "team-output", "runAsUser": 2000, "workerLimit": 1_000_000, "apiQps": 2.5,
                     "apiBurst": 10, "watchTimeout": 30, "sweepTrialRate": 0.5, "sweepStatusInterval": 2},
        "jobTemplates": {JOB_TEMPLATE: "x"},
    }
    docs = render(helm, values)
    config = Settings.from_env(settings_data(docs))
    s = values["settings"]
    expected = Settings(image="registry.example/seqmodel-trainer:1.3.0-cu13", image_pull_policy="Always",
                      templates_dir="/etc/seqmodel-operator/templates",
                      tolerations=tuple(s["tolerations"]),
                      **{snake(k): v for k, v in s.items() if k != "tolerations"})
    assert config == expected
    before = deployment(render(helm))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    after = deployment(docs)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert before != after  # `helm upgrade` restarts the operator with its new settings


def test_job_template_overrides_are_what_the_operator_renders(helm: Path, tmp_path: Path) -> None:
    """An override passed as a value ends up as a file the operator loads: a Job with its annotation."""
    packaged = (PACKAGE_TEMPLATES / JOB_TEMPLATE).read_text()
    override = packaged.replace("  annotations: {{ annotations|tojson }}\n    spec:",
                                "  annotations: {{ dict(annotations, **{'example.org/team': 'genomics'})|tojson }}\n"
                                "    spec:")
    assert override != packaged
    docs = render(helm, {"jobTemplates": {JOB_TEMPLATE: override}})
    (templates,) = find(docs, "ConfigMap", f"{RELEASE}-job-templates")
    assert set(templates["data"]) == {JOB_TEMPLATE}
    directory = settings_data(docs)[f"{PREFIX}TEMPLATES_DIR"]
    pod = deployment(docs)["spec"]["template"]["spec"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == directory]
    assert mount["readOnly"] is True
    assert {v["name"]: v for v in pod["volumes"]}[mount["name"]]["configMap"]["name"] == templates["metadata"]["name"]
    for name, text in templates["data"].items():  # the mounted directory, as the kubelet writes it
        (tmp_path / name).write_text(text)
    config = Settings(templates_dir=str(tmp_path))
    job = render_job(make_plan(example("job.yaml"), config), Replicate(0, 0), config)
    assert job["spec"]["template"]["metadata"]["annotations"]["example.org/team"] == "genomics"


def test_the_output_claim_is_made_in_each_watched_namespace_and_kept(helm: Path) -> None:
    docs = render(helm, {"watchNamespaces": sorted(NAMESPACED), "settings": {"outputClaim": "runs"},
                         "outputClaim": {"create": True, "size": "5Ti", "storageClassName": "shared"}})
    claims = find(docs, "PersistentVolumeClaim", "runs")
    assert {c["metadata"]["namespace"] for c in claims} == NAMESPACED
    for claim in claims:
        assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # helm uninstall keeps it
        assert claim["spec"]["resources"]["requests"]["storage"] == "5Ti"
    assert Settings.from_env(settings_data(docs)).output_claim == "runs"
    assert [c["metadata"]["namespace"] for c in find(render(helm, {"settings": {"outputClaim": "runs"},
                                                                   "outputClaim": {"create": True}}),
                                                     "PersistentVolumeClaim")] == [NAMESPACE]


# --- values.yaml and values.schema.json ------------------------------------------------------------------
def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def object_nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    node = resolve(node)
    if node.get("type") == "object":
        yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from object_nodes(child, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from object_nodes(node[key], f"{path}[]")
    for alternative in node.get("anyOf", []) + node.get("oneOf", []):
        yield from object_nodes(alternative, path)


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    nodes = list(object_nodes(schema(), "values"))
    assert len(nodes) > 10
    for path, node in nodes:
        extra = node.get("additionalProperties")
        assert extra is False or isinstance(extra, dict) and extra, f"{path}: additionalProperties must be " \
                                                                    "false, or a schema for a map's values"
        assert extra is False or "properties" not in node, f"{path}: fixed keys and a map at once"


def value_lines() -> dict[str, int]:
    """Dotted key path -> line index in values.yaml, for every mapping key (list items are values)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    paths: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z][A-Za-z0-9]*):", line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        paths[".".join(k for _, k in stack)] = i
    return paths


def schema_paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the schema's fixed keys (maps' contents are the user's)."""
    for key, child in (resolve(node).get("properties") or {}).items():
        path = f"{prefix}{key}"
        yield path
        if resolve(child).get("additionalProperties") is False:
            yield from schema_paths(child, f"{path}.")


def test_every_value_has_a_default_a_type_and_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    found = value_lines()
    documented = set(schema_paths(schema()))
    assert documented <= set(found), f"in the schema, not in values.yaml: {sorted(documented - set(found))}"
    top = set(yaml.safe_load((CHART / "values.yaml").read_text()))
    assert top == set(schema()["properties"])
    for path in documented:
        above = lines[found[path] - 1].strip()
        assert above.startswith("#"), f"values.yaml: {path} has no comment above it"
