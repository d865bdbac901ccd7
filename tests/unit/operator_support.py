"""Builders shared by the operator's unit tests: SeqTrainingJob bodies, child Jobs, pods, a fake Kube."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml
from kubernetes.client.rest import ApiException

from seqmodel_operator import constants as C

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
NAMESPACE = "research"


def example(name: str, uid: str = "uid-1", namespace: str = NAMESPACE) -> dict[str, Any]:
    """An example manifest as the API server would hand it over (namespace and uid set)."""
    body = yaml.safe_load((EXAMPLES / name).read_text())
    body["metadata"].update(namespace=namespace, uid=uid)
    return body


def job_body(name: str = "demo", uid: str = "uid-1", **spec: Any) -> dict[str, Any]:
    """A minimal SeqTrainingJob; `spec` keys replace the defaults (an output claim and two hparams)."""
    full: dict[str, Any] = {"hparams": {"d_model": 64, "seq_file": "genome/genome.fa.gz"},
                            "output": {"claim": "out"}}
    full.update(spec)
    return {"apiVersion": C.API_VERSION, "kind": C.JOB_KIND,
            "metadata": {"name": name, "namespace": NAMESPACE, "uid": uid, "generation": 1},
            "spec": full}


def with_replicates(source: dict[str, Any], *paths: str) -> dict[str, Any]:
    """A succeeded checkpoint source whose replicate i wrote to paths[i]."""
    out = copy.deepcopy(source)
    out["status"] = {"phase": "Succeeded", "replicates": [
        {"index": i, "version": i, "outputPath": p, "phase": "Succeeded"} for i, p in enumerate(paths)]}
    return out


# --- child Jobs and pods, as the API server returns them -------------------------------------------------
def child_job(replicate: int, version: int, *, parent: str = "demo", complete: bool = False,
              failed: str | None = None, active: int = 0, ready: int = 0, suspend: bool = False,
              start: bool = False, failures: int = 0, interim: str | None = None) -> dict[str, Any]:
    """A child Job; `failed` is the reason of its Failed condition (e.g. BackoffLimitExceeded), `interim`
    a condition the Job controller sets before Complete or Failed (SuccessCriteriaMet, FailureTarget)."""
    name = f"{parent}-{replicate}-v{version}"
    conditions = []
    if complete:
        conditions.append({"type": "Complete", "status": "True"})
    if failed:
        conditions.append({"type": "Failed", "status": "True", "reason": failed, "message": "Job failed"})
    if interim:
        conditions.append({"type": interim, "status": "True"})
    status: dict[str, Any] = {"conditions": conditions}
    if active:
        status["active"] = active
    if ready:
        status["ready"] = ready
    if start:
        status["startTime"] = "2025-01-01T00:00:00Z"
    if failures:
        status["failed"] = failures
    return {"metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {C.LABEL_REPLICATE: str(replicate), C.LABEL_VERSION: str(version)},
                         "annotations": {C.ANNOTATION_OUTPUT: f"runs/x/version_{version}",
                                         C.ANNOTATION_CANONICAL: "x"}},
            "spec": {"suspend": suspend}, "status": status}


def terminated(exit_code: int, message: str | Mapping[str, Any] | None = None, reason: str | None = None,
               last: bool = False) -> dict[str, Any]:
    """A container status that terminated (in `lastState` when `last`, as after a restart)."""
    term: dict[str, Any] = {"exitCode": exit_code}
    if message is not None:
        term["message"] = message if isinstance(message, str) else json.dumps(message)
    if reason:
        term["reason"] = reason
    return {"lastState" if last else "state": {"terminated": term}}


def pod(name: str, created: str, phase: str, *, init: Mapping[str, dict] | None = None,
        containers: Mapping[str, dict] | None = None, **status: Any) -> dict[str, Any]:
    """A pod of a child Job; `init` and `containers` map container names to `terminated(...)` states."""
    def statuses(states: Mapping[str, dict] | None) -> list[dict[str, Any]]:
        return [{"name": n, **s} for n, s in (states or {}).items()]

    return {"metadata": {"name": name, "creationTimestamp": created},
            "status": {"phase": phase, "initContainerStatuses": statuses(init),
                       "containerStatuses": statuses(containers), **status}}


class PodsOf:
    """A `pods_of` callable that serves canned pods per Job name and counts the calls."""

    def __init__(self, pods: Mapping[str, list[dict[str, Any]]]) -> None:
        self.pods = dict(pods)
        self.calls: list[str] = []

    def __call__(self, job_name: str) -> list[dict[str, Any]]:
        self.calls.append(job_name)
        return self.pods.get(job_name, [])


# --- a fake of the ConfigMap methods of Kube ------------------------------------------------------------
class FakeKube:
    """ConfigMaps in memory with the API server's optimistic concurrency: create of an existing object
    and replace with a stale resourceVersion raise 409. `before_write` runs once before the next write
    (create or replace), to let another writer in between a read and a write."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.revision = 0
        self.before_write: Callable[[], None] | None = None
        self.writes = 0

    def _hook(self) -> None:
        self.writes += 1
        hook, self.before_write = self.before_write, None
        if hook:
            hook()

    def _store(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.revision += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[(namespace, name)] = stored
        return copy.deepcopy(stored)

    def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def create_config_map(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._hook()
        name = body["metadata"]["name"]
        if (namespace, name) in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(namespace, name, body)

    def replace_config_map(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._hook()
        current = self.objects.get((namespace, name))
        if current is None:
            raise ApiException(status=404, reason="NotFound")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        return self._store(namespace, name, body)
