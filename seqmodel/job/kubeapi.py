"""The one module of seqmodel that talks to a Kubernetes API server, for backend="kubernetes" and sweeps.

seqmodel otherwise never imports the Kubernetes client (the trainer image need not have it, and the
training library must not depend on a cluster). The official `kubernetes` client (extra `client`) is
imported inside `connect()`, the first time a notebook uses the kubernetes backend: importing seqmodel.job,
or running local jobs, never loads it (tests/unit/test_boundaries.py checks both). Everything else in
seqmodel.job works against `KubeApi`'s few methods with plain dicts, so unit tests use a fake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from seqmodel.errors import UserError
from seqmodel.job.defaults import JobConfig
from seqmodel.contract import GROUP, VERSION

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class Target:
    """The API server and namespace a job config points at, connected on first use, so building a Job or
    a Sweep handle checks its input before any network call."""

    def __init__(self, config: JobConfig, api: Optional["KubeApi"] = None) -> None:
        self.config, self._api = config, api

    @property
    def api(self) -> "KubeApi":
        if self._api is None:
            self._api = connect(self.config.kubeconfig, self.config.context)
        return self._api

    @property
    def namespace(self) -> str:
        return self.config.namespace or self.api.default_namespace


class KubeError(UserError, RuntimeError):
    """The API server refused a request, or cannot be reached; one line saying what and why."""


class KubeApi:
    """Custom objects of group seqmodel.dev and pods, as dicts; API errors become one-line KubeErrors."""

    def __init__(self, api_client: Any, default_namespace: str) -> None:
        from kubernetes import client

        self.api_client, self.default_namespace = api_client, default_namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)

    def create(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create with strict field validation: an unknown field is refused, not silently dropped."""
        what = f"{body.get('kind', plural)} {namespace}/{body['metadata']['name']}"
        with _translated(what):
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, dict(body),
                                                               field_validation="Strict")

    def get(self, plural: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        """The object, or None when it does not exist."""
        with _translated(f"{plural} {namespace}/{name}", missing_ok=True):
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        return None

    def list(self, plural: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        with _translated(f"{plural} in {namespace}"):
            return self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural,
                                                             label_selector=selector)["items"]

    def delete(self, plural: str, namespace: str, name: str) -> bool:
        """Delete (children go with it, in the background); False when it was already gone."""
        with _translated(f"{plural} {namespace}/{name}", missing_ok=True):
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name,
                                                        propagation_policy="Background")
            return True
        return False

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        with _translated(f"pods in {namespace}"):
            items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [self.api_client.sanitize_for_serialization(p) for p in items]

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        with _translated(f"the log of {namespace}/{pod}"):
            return self.core.read_namespaced_pod_log(pod, namespace, container=container)


class _translated:
    """`with _translated(what):` turns an ApiException into a KubeError naming `what`, the status and the
    API server's own message; a 404 is swallowed when `missing_ok`."""

    def __init__(self, what: str, missing_ok: bool = False) -> None:
        self.what, self.missing_ok = what, missing_ok

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        if isinstance(exc, HTTPError):
            raise KubeError(f"{self.what}: cannot reach the API server ({type(exc).__name__})") from None
        if not isinstance(exc, ApiException):
            return False
        if exc.status == 404 and self.missing_ok:
            return True
        raise KubeError(f"{self.what}: {exc.status} {exc.reason}: {_message(exc)}") from None


def _message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message") or exc.body).splitlines()[0]
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or "").splitlines()[0] if exc.body else "no message"


def connect(kubeconfig: Optional[str] = None, context: Optional[str] = None) -> KubeApi:
    """A client from the usual places: `kubeconfig` (or $KUBECONFIG, or ~/.kube/config) when one exists,
    else the service account of the pod this runs in (a notebook server in the cluster)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise KubeError("backend kubernetes needs the Kubernetes client: pip install 'seqmodel[client]'") from None
    path = Path((kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config").split(os.pathsep)[0]).expanduser()
    if path.is_file():
        try:
            contexts, current = config.list_kube_config_contexts(config_file=str(path))
            active = next((c for c in contexts if c["name"] == context), None) if context else current
            if active is None:
                raise KubeError(f"kubeconfig {path}: no context {context!r}")
            api_client = config.new_client_from_config(config_file=str(path), context=context)
        except config.ConfigException as err:
            raise KubeError(f"kubeconfig {path}: {err}") from None
        return KubeApi(api_client, (active.get("context") or {}).get("namespace") or "default")
    if kubeconfig:
        raise KubeError(f"kubeconfig {kubeconfig}: no such file")
    try:
        config.load_incluster_config()
    except config.ConfigException:
        raise KubeError(f"no kubeconfig ({path} does not exist) and not running in a pod: set KUBECONFIG "
                        "or pass kubeconfig=") from None
    namespace = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.is_file() else "default"
    return KubeApi(client.ApiClient(), namespace)
