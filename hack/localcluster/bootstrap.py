"""The cluster's own API objects: kwok GPU nodes, the default StorageClass and the provisioner's RBAC.

Created by `up` with the admin credentials; every call tolerates AlreadyExists so it can be repeated.
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from . import components
from .provisioner import PROVISIONER

STORAGE_CLASS = "local-path"
PROVISIONER_USER = "seqmodel:local-path-provisioner"


def admin_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def kwok_node_names(opts) -> list[str]:
    return [f"kwok-gpu-{i}" for i in range(opts.kwok_nodes)]


def _create(fn, body: dict) -> None:
    try:
        fn(body=body)
    except ApiException as e:
        if e.status != 409:
            raise


def create_objects(api: client.ApiClient, opts) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    _create(rbac.create_cluster_role, {
        "metadata": {"name": PROVISIONER_USER},
        "rules": [
            {"apiGroups": [""], "resources": ["persistentvolumes"],
             "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    })
    _create(rbac.create_cluster_role_binding, {
        "metadata": {"name": PROVISIONER_USER},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": PROVISIONER_USER},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": PROVISIONER_USER}],
    })
    # Immediate binding: a claim is bound as soon as it exists, so pods on any node (kwok too) schedule.
    _create(client.StorageV1Api(api).create_storage_class, {
        "metadata": {"name": STORAGE_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    })
    core = client.CoreV1Api(api)
    for name in kwok_node_names(opts):
        _create(core.create_node, components.kwok_node(name, opts.kwok_gpus, opts.gpu_product))


def nodes_ready(api: client.ApiClient, names: list[str]) -> bool:
    ready = {n for n, cond in node_conditions(api) if cond == "True"}
    return set(names) <= ready


def node_conditions(api: client.ApiClient) -> list[tuple[str, str]]:
    """(node name, status of its Ready condition) for every node."""
    out = []
    for node in client.CoreV1Api(api).list_node().items:
        cond = next((c.status for c in (node.status.conditions or []) if c.type == "Ready"), "Unknown")
        out.append((node.metadata.name, cond))
    return out


def default_sa_exists(api: client.ApiClient, namespace: str = "default") -> bool:
    """Whether `namespace` has its ServiceAccount `default` yet (pods are refused until it does)."""
    try:
        client.CoreV1Api(api).read_namespaced_service_account("default", namespace)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise
