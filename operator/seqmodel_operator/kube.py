"""The one module that talks to the API server: the official client, raw JSON dicts, a rate limit.

Handlers run in kopf's thread pool, so this is synchronous and thread-safe. Every request passes one
token bucket (Settings.api_qps / api_burst), so a burst of thousands of objects cannot flood the API server.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from kubernetes import client, config as kube_config
from kubernetes.client.rest import ApiException

from seqmodel_operator import constants as C


class TokenBucket:
    """At most `rate` calls per second on average, `burst` at once; rate 0 means no limit."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self.tokens, self.stamp = float(self.burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= 1
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait:
            time.sleep(wait)


def load_client(pool_size: int = 10) -> client.ApiClient:
    """In-cluster credentials in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config).

    `pool_size` connections are kept open: one per handler thread (Settings.worker_limit), because a
    thread that finds the pool full opens a new TLS connection for every request and throws it away."""
    conf = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=conf)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=conf)
    conf.connection_pool_maxsize = pool_size
    return client.ApiClient(conf)


def is_status(err: Exception, *codes: int) -> bool:
    return isinstance(err, ApiException) and err.status in codes


class Kube:
    def __init__(self, api: client.ApiClient, bucket: TokenBucket) -> None:
        self.api, self.bucket = api, bucket
        self.core, self.batch, self.custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One request; the response as a dict (raw JSON: the client's models are slow and lossy)."""
        self.bucket.take()
        response = fn(*args, _preload_content=False, **kwargs)
        return json.loads(response.data or b"null")

    def _unless(self, status: int, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`_call`, or None when the API server answers `status` (404: not there; 409: exists already,
        which deterministic names make the answer to a repeated create)."""
        try:
            return self._call(fn, *args, **kwargs)
        except ApiException as err:
            if err.status == status:
                return None
            raise

    # SeqTrainingJobs
    def get_training_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._unless(404, self.custom.get_namespaced_custom_object, C.GROUP, C.VERSION, namespace,
                            C.JOB_PLURAL, name)

    def patch_training_job_status(self, namespace: str, name: str, status: dict[str, Any],
                                  resource_version: str) -> dict[str, Any]:
        """A merge patch of status that fails with 409 when the object changed since `resource_version`."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        return self._call(self.custom.patch_namespaced_custom_object_status, C.GROUP, C.VERSION, namespace,
                          C.JOB_PLURAL, name, body)

    def create_training_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create a sweep's trial; None when it exists already (trial names are deterministic)."""
        return self._unless(409, self.custom.create_namespaced_custom_object, C.GROUP, C.VERSION, namespace,
                            C.JOB_PLURAL, body)

    def sweep_runs(self, namespace: str, sweep_uid: str) -> list[dict[str, Any]]:
        """A sweep's runs as the API server holds them now: one consistent snapshot."""
        return self._call(self.custom.list_namespaced_custom_object, C.GROUP, C.VERSION, namespace, C.JOB_PLURAL,
                          label_selector=f"{C.LABEL_SWEEP_UID}={sweep_uid}")["items"]

    # SeqSweeps
    def patch_sweep_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of status. No resourceVersion: one reconcile of a sweep runs at a time, and it
        computes the status whole from the trials."""
        return self._call(self.custom.patch_namespaced_custom_object_status, C.GROUP, C.VERSION, namespace,
                          C.SWEEP_PLURAL, name, {"status": status})

    # child Jobs and their pods
    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create; the created Job, or None when it exists already (deterministic names make retries
        idempotent)."""
        return self._unless(409, self.batch.create_namespaced_job, namespace, body)

    def child_jobs(self, namespace: str, parent_uid: str) -> list[dict[str, Any]]:
        return self._call(self.batch.list_namespaced_job, namespace,
                          label_selector=f"{C.LABEL_PARENT_UID}={parent_uid}")["items"]

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self._call(self.batch.patch_namespaced_job, name, namespace, {"spec": {"suspend": suspend}})

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return self._call(self.core.list_namespaced_pod, namespace,
                          label_selector=f"batch.kubernetes.io/job-name={job_name}")["items"]

    # version counters
    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._unless(404, self.core.read_namespaced_config_map, name, namespace)

    def create_config_map(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.core.create_namespaced_config_map, namespace, body)

    def replace_config_map(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Fails with 409 when `body.metadata.resourceVersion` is not the current one."""
        return self._call(self.core.replace_namespaced_config_map, name, namespace, body)
