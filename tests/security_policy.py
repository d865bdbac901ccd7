"""What the shipped operator may do, and what every pod it ships or creates must be: one definition for the
unit tests (rendered chart, manifests/) and the e2e tests (`kubectl auth can-i --list`, live pods).

The chart's rules (charts/seqmodel-operator/templates/_helpers.tpl) say for each one which code needs it;
change both together.
"""

from __future__ import annotations

from typing import Any, Iterator

from seqmodel_operator import constants as C

Permission = tuple[str, str, str]  # (API group, resource, verb)

# Rules on namespaced resources: a ClusterRole's when the operator watches every namespace, a Role's in
# each watched namespace otherwise.
NAMESPACED_PERMISSIONS: frozenset[Permission] = frozenset({
    # kopf watches SeqTrainingJobs (handlers.py); kube.get_training_job
    *((C.GROUP, "seqtrainingjobs", v) for v in ("get", "list", "watch")),
    # kube.patch_training_job_status; kopf's status progress and diff-base storage
    (C.GROUP, "seqtrainingjobs/status", "patch"),
    # the SeqSweep controller creates trials (deletion is the garbage collector's, by ownerReferences)
    (C.GROUP, "seqtrainingjobs", "create"),
    # kopf watches SeqSweeps; the sweep handlers read one
    *((C.GROUP, "seqsweeps", v) for v in ("get", "list", "watch")),
    # the sweep's status; kopf's status storages
    (C.GROUP, "seqsweeps/status", "patch"),
    # kopf watches child Jobs (main.child_job_changed); kube.child_jobs, create_job, set_job_suspend
    *(("batch", "jobs", v) for v in ("list", "watch", "create", "patch")),
    # kube.job_pods: termination messages
    ("", "pods", "list"),
    # versions.py through kube.get/create/replace_config_map
    *(("", "configmaps", v) for v in ("get", "create", "update")),
    # kopf.event and kopf's log posting: core v1 Events, POST only (kopf/_cogs/clients/events.py)
    ("", "events", "create"),
})
# Rules on cluster-scoped resources: always a ClusterRole's. kopf's resource observer watches CRDs.
CRD_PERMISSIONS: frozenset[Permission] = frozenset(
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch"))
# The operator's ClusterRole when it watches every namespace: everything.
OPERATOR_PERMISSIONS = NAMESPACED_PERMISSIONS | CRD_PERMISSIONS
# Its ClusterRole when it watches listed namespaces (`--namespace`): the CRD watch, and kopf's namespace
# observer, which lists and watches namespaces then (and only then); refused, it retries each request
# for about a minute before it falls back to the names given.
SCOPED_CLUSTER_PERMISSIONS = CRD_PERMISSIONS | frozenset(("", "namespaces", v) for v in ("list", "watch"))


def rule_triples(role: dict[str, Any]) -> set[Permission]:
    """A Role's or ClusterRole's rules as (group, resource, verb) triples."""
    return {(g, r, v) for rule in role["rules"] for g in rule.get("apiGroups", [])
            for r in rule.get("resources", []) for v in rule["verbs"]}


ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret"}


def restricted_violations(pod: dict[str, Any]) -> Iterator[str]:
    """The Pod Security Standards' `restricted` profile, plus a read-only root filesystem, for a pod spec
    in the API's camelCase form (a manifest, or a live pod read as raw JSON)."""
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if pod.get(key) is (key != "hostUsers"):
            yield f"spec.{key}"
    for volume in pod.get("volumes") or []:
        if not set(volume) - {"name"} <= ALLOWED_VOLUMES:
            yield f"volume {volume['name']} is {sorted(set(volume) - {'name'})}"
    for c in (pod.get("initContainers") or []) + pod["containers"]:
        sc, name = c.get("securityContext") or {}, c["name"]
        if sc.get("privileged"):
            yield f"{name}: privileged"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"{name}: allowPrivilegeEscalation must be false"
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []) or not set(caps.get("add") or []) <= {"NET_BIND_SERVICE"}:
            yield f"{name}: capabilities must drop ALL and add at most NET_BIND_SERVICE"
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
            yield f"{name}: runAsNonRoot must be true"
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            yield f"{name}: runAsUser 0"
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{name}: seccompProfile must be RuntimeDefault or Localhost"
        if sc.get("readOnlyRootFilesystem") is not True:
            yield f"{name}: readOnlyRootFilesystem must be true"
        if any("hostPort" in p for p in c.get("ports") or []):
            yield f"{name}: hostPort"
