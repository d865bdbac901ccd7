"""kopf wiring only: settings at start-up, and which handler runs on which event."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from seqmodel_operator import constants as C
from seqmodel_operator.handlers.training_job import Reconciler
from seqmodel_operator.kube import Kube, TokenBucket, load_client
from seqmodel_operator.settings import Config

STJ = dict(group=C.GROUP, version=C.VERSION, plural=C.JOB_PLURAL)
reconciler: Reconciler | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: logging.Logger, **_: Any) -> None:
    global reconciler
    config = Config.from_env()
    # Status, not annotations: no 256 KiB annotation limit, and users' annotations stay theirs.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(field="status.kopf.diffbase")
    settings.posting.level = logging.WARNING  # our Events say what happened; kopf's INFO logs would flood
    settings.posting.reporting_component = "seqmodel-operator"
    settings.queueing.worker_limit = config.worker_limit
    settings.execution.max_workers = config.worker_limit
    settings.watching.server_timeout = config.watch_timeout
    settings.watching.client_timeout = config.watch_timeout + 10
    settings.watching.inactivity_timeout = config.watch_timeout
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    reconciler = Reconciler(Kube(load_client(), TokenBucket(config.api_qps, config.api_burst)), config)
    logger.info("seqmodel operator configured: %s", config)


def _reconciler() -> Reconciler:
    assert reconciler is not None, "the startup handler has not run"
    return reconciler


@kopf.on.resume(**STJ)
@kopf.on.create(**STJ)
@kopf.on.update(**STJ, field="spec.suspend")
def ensure(body: kopf.Body, **_: Any) -> None:
    _reconciler().ensure(body)


@kopf.index(**STJ)
def checkpoint_users(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str] | None:
    """(namespace, source job) -> the jobs that take their checkpoint from it."""
    source = (spec.get("checkpoint") or {}).get("fromJob")
    return {(namespace, source): name} if source else None


@kopf.on.event(**STJ, when=lambda status, **_: status.get("phase") in ("Succeeded", "Failed"))
def job_finished(namespace: str, name: str, checkpoint_users: kopf.Index, **_: Any) -> None:
    users = checkpoint_users.get((namespace, name))
    if users:
        _reconciler().source_finished(namespace, list(users))


@kopf.on.event("batch", "v1", "jobs", labels={C.LABEL_PARENT_UID: kopf.PRESENT})
def child_job_changed(body: kopf.Body, **_: Any) -> None:
    labels = body["metadata"]["labels"]
    _reconciler().sync(body["metadata"]["namespace"], labels[C.LABEL_PARENT], labels[C.LABEL_PARENT_UID])
