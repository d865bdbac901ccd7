"""manifests/: every file parses; RBAC is exactly what the operator uses; the operator's pod is restricted;
the examples are valid against the generated CRD schema (as far as an offline check goes).

The API server has the last word (the e2e tests apply these files); this catches the usual mistakes
without a cluster: a wildcard or a secret in a role, a verb kube.py needs but the role lacks, a pod
spec that a `restricted` namespace would refuse, an example with a misspelt hparam.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from seqmodel import VERSION
from seqmodel.hparam import registry
from seqmodel_operator import constants as C
from seqmodel_operator import kube
from seqmodel_operator.plan import checked_hparams
from seqmodel_operator.settings import Settings
from security_policy import OPERATOR_PERMISSIONS, restricted_violations, rule_triples

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
NAMESPACE, NAME = "seqmodel-system", "seqmodel-operator"

# --- loading -------------------------------------------------------------------------------------------
def yaml_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def objects(directory: str) -> list[dict[str, Any]]:
    return [d for p in sorted((MANIFESTS / directory).glob("*.yaml")) for d in documents(p)]


def one(directory: str, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in objects(directory) if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_manifest_parses_into_named_objects(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} holds no object"
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind"), path
        assert doc["metadata"]["name"], path


def test_the_kubebuilder_layout_is_there() -> None:
    for name in ("crd", "rbac", "operator", "examples"):
        assert list((MANIFESTS / name).glob("*.yaml")), f"manifests/{name}/ is empty"


# --- RBAC ----------------------------------------------------------------------------------------------
def roles() -> list[dict[str, Any]]:
    return [d for d in objects("rbac") if d["kind"] in ("Role", "ClusterRole")]


@pytest.mark.parametrize("role", roles(), ids=lambda r: r["metadata"]["name"])
def test_no_role_has_a_wildcard_or_touches_secrets(role: dict[str, Any]) -> None:
    assert role["rules"]
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule, rule
        for key in ("apiGroups", "resources", "verbs"):
            assert rule.get(key) and not any("*" in item for item in rule[key]), f"{key} of {rule}"
        assert not {"secrets", "serviceaccounts/token"} & set(rule["resources"]), rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_no_binding_grants_a_builtin_superuser_role_or_binds_groups() -> None:
    bindings = [d for d in objects("rbac") if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for b in bindings:
        assert b["roleRef"]["name"] not in ("cluster-admin", "admin", "edit"), b["metadata"]["name"]
        assert all(s["kind"] == "ServiceAccount" for s in b["subjects"]), b["subjects"]


def test_the_operator_role_grants_exactly_the_allow_list() -> None:
    role = one("rbac", "ClusterRole", NAME)
    assert rule_triples(role) == OPERATOR_PERMISSIONS


def test_every_rule_of_the_operator_role_says_which_code_needs_it() -> None:
    lines = (MANIFESTS / "rbac" / "role.yaml").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("- apiGroups:")]
    assert len(starts) == len(one("rbac", "ClusterRole", NAME)["rules"])
    for i in starts:
        assert lines[i - 1].startswith("#"), f"role.yaml line {i + 1}: the rule has no comment above it"


def kube_py_requests() -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every client call in kube.py, read from the method names
    (`<verb>_namespaced_<kind>[_status]`, `<verb>_<kind>_for_all_namespaces`); a custom object's resource is
    the `C.<KIND>_PLURAL` constant among the call's arguments."""
    verbs = {"read": "get", "get": "get", "list": "list", "create": "create", "replace": "update",
             "patch": "patch", "delete": "delete"}
    groups = {"core": "", "batch": "batch", "custom": C.GROUP}
    found = set()
    tree = ast.parse(Path(kube.__file__).read_text())
    calls = {id(arg): call for call in ast.walk(tree) if isinstance(call, ast.Call) for arg in (call.func, *call.args)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"
                and node.value.attr in groups):
            continue
        m = re.fullmatch(r"([a-z]+)_(?:namespaced_)?([a-z_]+?)(_status)?(?:_for_all_namespaces)?", node.attr)
        assert m and m.group(1) in verbs, f"kube.py calls {node.value.attr}.{node.attr}: add it to this test"
        if m.group(2) == "custom_object":
            call = calls.get(id(node))
            plurals = [getattr(C, a.attr) for a in (call.args if call else [])
                       if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "C"
                       and a.attr.endswith("_PLURAL")]
            assert len(plurals) == 1, f"kube.py line {node.lineno}: which custom resource does it call?"
            resource = plurals[0]
        else:
            resource = m.group(2).replace("_", "") + "s"
        found.add((groups[node.value.attr], resource + (m.group(3) and "/status" or ""), verbs[m.group(1)]))
    return found


def test_every_request_kube_py_makes_is_granted() -> None:
    requests = kube_py_requests()
    assert ("", "configmaps", "update") in requests and (C.GROUP, "seqtrainingjobs/status", "patch") in requests
    assert (C.GROUP, f"{C.SWEEP_PLURAL}/status", "patch") in requests  # custom resources told apart
    assert requests <= OPERATOR_PERMISSIONS, f"not granted: {sorted(requests - OPERATOR_PERMISSIONS)}"


def test_the_binding_gives_the_operator_role_to_the_deployments_service_account() -> None:
    binding = one("rbac", "ClusterRoleBinding", NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]
    sa = one("rbac", "ServiceAccount", NAME)
    assert sa["metadata"]["namespace"] == NAMESPACE
    one("operator", "Namespace", NAMESPACE)
    pod = one("operator", "Deployment", NAME)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAME and pod["automountServiceAccountToken"] is True


USER_ROLE_KINDS = (C.JOB_PLURAL, C.SWEEP_PLURAL)


@pytest.mark.parametrize("plural", USER_ROLE_KINDS)
@pytest.mark.parametrize("role_kind,aggregate_to,verbs", [
    ("editor", {"admin", "edit"}, {"create", "delete", "get", "list", "patch", "update", "watch"}),
    ("viewer", {"view"}, {"get", "list", "watch"}),
])
def test_per_kind_roles_aggregate_into_the_builtin_roles(plural: str, role_kind: str, aggregate_to: set[str],
                                                         verbs: set[str]) -> None:
    role = one("rbac", "ClusterRole", f"{NAME}-{plural.removesuffix('s')}-{role_kind}")
    labels = role["metadata"]["labels"]
    assert {k.rsplit("-", 1)[1] for k, v in labels.items()
            if k.startswith("rbac.authorization.k8s.io/aggregate-to-") and v == "true"} == aggregate_to
    triples = rule_triples(role)
    assert {v for g, r, v in triples if r == plural} == verbs
    assert {v for g, r, v in triples if r == f"{plural}/status"} == {"get"}  # status is the operator's
    assert {r for g, r, v in triples} == {plural, f"{plural}/status"} and {g for g, r, v in triples} == {C.GROUP}


def test_every_crd_has_user_roles() -> None:
    plurals = {d["spec"]["names"]["plural"] for d in objects("crd")}
    assert plurals <= set(USER_ROLE_KINDS), f"no editor/viewer roles for {sorted(plurals - set(USER_ROLE_KINDS))}"


# --- the operator's Deployment ---------------------------------------------------------------------------
def test_the_restricted_check_catches_what_it_should() -> None:
    bad = {"hostNetwork": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
           "containers": [{"name": "c", "securityContext": {"privileged": True, "runAsUser": 0}}]}
    found = " ".join(restricted_violations(bad))
    for what in ("hostNetwork", "hostPath", "privileged", "allowPrivilegeEscalation", "capabilities",
                 "runAsNonRoot", "runAsUser 0", "seccompProfile", "readOnlyRootFilesystem"):
        assert what in found


def test_the_operator_pod_is_restricted() -> None:
    pod = one("operator", "Deployment", NAME)["spec"]["template"]["spec"]
    assert list(restricted_violations(pod)) == []
    tmp = [m for c in pod["containers"] for m in c.get("volumeMounts") or [] if m["mountPath"] == "/tmp"]
    assert tmp and {v["name"]: v for v in pod["volumes"]}[tmp[0]["name"]].get("emptyDir") is not None


def test_one_operator_at_a_time_with_the_version_of_this_code() -> None:
    deploy = one("operator", "Deployment", NAME)
    assert deploy["metadata"]["namespace"] == NAMESPACE
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"] == {"type": "Recreate"}
    template = deploy["spec"]["template"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    (container,) = template["spec"]["containers"]
    assert container["image"] == f"seqmodel-operator:{VERSION}"
    assert deploy["metadata"]["labels"]["app.kubernetes.io/version"] == VERSION
    res = container["resources"]
    assert res["requests"] == {"cpu": "100m", "memory": "128Mi"} and res["limits"] == {"cpu": "1", "memory": "256Mi"}


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_the_probes_ask_what_the_operator_serves(probe: str) -> None:
    (container,) = one("operator", "Deployment", NAME)["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "--all-namespaces" in args and args[args.index("--log-format") + 1] == "json"
    url = args[args.index("--liveness") + 1]
    m = re.fullmatch(r"http://0\.0\.0\.0:(\d+)(/\S*)", url)
    assert m, url
    get = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert get["path"] == m.group(2) and ports.get(get["port"], get["port"]) == int(m.group(1))


def test_the_settings_are_the_operators_defaults_and_reach_the_pod() -> None:
    """manifests/ hold the chart's defaults, which are the operator's own (a different value belongs in
    the chart's values); no default output claim, so jobs must name theirs."""
    settings = one("operator", "ConfigMap", NAME)
    assert settings["metadata"]["namespace"] == NAMESPACE
    assert Settings.from_env(settings["data"]) == Settings()  # a bad value raises, naming the variable
    assert Settings.from_env(settings["data"]).output_claim is None
    (container,) = one("operator", "Deployment", NAME)["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": NAME}}] and "env" not in container


# --- examples against the generated CRD ------------------------------------------------------------------
def schema_errors(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """The structural-schema subset the CRDs use (types, enums, ranges, patterns, unknown fields);
    CEL rules are left to the API server."""
    if "anyOf" in schema:
        if all(list(schema_errors(value, s, path)) for s in schema["anyOf"]):
            yield f"{path}: matches none of {schema['anyOf']}"
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}
    expected = schema.get("type")
    if expected and (not isinstance(value, types[expected]) or isinstance(value, bool) and expected != "boolean"):
        yield f"{path}: {value!r} is not {expected}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} not in {schema['enum']}"
    if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
        yield f"{path}: {value!r} out of range"
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            yield f"{path}: length {len(value)}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield f"{path}: {value!r} does not match {schema['pattern']}"
    if isinstance(value, (str, int)) and schema.get("x-kubernetes-int-or-string") and "pattern" in schema:
        if not re.search(schema["pattern"], str(value)):
            yield f"{path}: {value!r} does not match {schema['pattern']}"
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            yield f"{path}: more than {schema['maxItems']} items"
        for i, item in enumerate(value):
            yield from schema_errors(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                yield f"{path}.{key}: required"
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                yield from schema_errors(item, props[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                yield from schema_errors(item, schema["additionalProperties"], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                yield f"{path}.{key}: unknown field"


def crd_schema() -> dict[str, Any]:
    (version,) = one("crd", "CustomResourceDefinition", f"{C.JOB_PLURAL}.{C.GROUP}")["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def examples() -> list[dict[str, Any]]:
    return [d for d in objects("examples") if d["kind"] == C.JOB_KIND]


def test_the_schema_check_catches_what_it_should() -> None:
    spec = {"mode": "tune", "replicates": 0, "hparams": {"no_such": 1, "lr": "fast"}, "colour": "red",
            "resources": {"memory": "4 GB"}, "data": {"types": ["Genome"]}}
    found = " ".join(schema_errors(spec, crd_schema()["properties"]["spec"], "spec"))
    for what in ("spec.mode", "spec.replicates", "spec.hparams.no_such: unknown", "spec.hparams.lr",
                 "spec.colour: unknown", "spec.resources.memory", "spec.data.claim: required", "spec.data.types[0]"):
        assert what in found


@pytest.mark.parametrize("example", examples(), ids=lambda d: d["metadata"]["name"])
def test_examples_are_valid_seqtrainingjobs(example: dict[str, Any]) -> None:
    assert example["apiVersion"] == C.API_VERSION
    assert len(example["metadata"]["name"]) <= C.MAX_NAME_CHARS
    spec = example["spec"]
    schema = crd_schema()["properties"]["spec"]
    assert set(spec) <= set(schema["properties"]), f"not in the CRD: {set(spec) - set(schema['properties'])}"
    hparams = spec.get("hparams") or {}
    known = {hp.name for hp in registry()}
    assert set(hparams) <= known - set(C.JOB_OWNED_HPARAMS)
    assert list(schema_errors(spec, schema, "spec")) == []
    checked_hparams(hparams)  # the registry's own parsing (types, choices) accepts every value
    if spec.get("mode") == "test":  # two of the CEL rules
        assert "checkpoint" in spec and spec["checkpoint"].get("use", "weights") == "weights"


def test_examples_only_take_checkpoints_from_examples() -> None:
    names = {d["metadata"]["name"] for d in examples()}
    for d in examples():
        source = (d["spec"].get("checkpoint") or {}).get("fromJob")
        assert source is None or source in names, f"{d['metadata']['name']} waits for {source}, which no example makes"
