"""kopf wiring only: settings at start-up, and which handler runs on which event.

The reconcilers live in kopf's memo (`memo.job_reconciler`, `memo.sweep_reconciler`), made by the startup
handler: every handler gets them from there, and no module state changes after import."""

from __future__ import annotations

import copy
import functools
import logging
from typing import Any

import kopf

from seqmodel.contract.sweep_status import Trial
from seqmodel_operator import constants as C
from seqmodel_operator.kube import Kube, TokenBucket, load_client
from seqmodel_operator.reconcilers.sweep import SweepReconciler, trial_of
from seqmodel_operator.reconcilers.training_job import Reconciler
from seqmodel_operator.settings import Settings

STJ = dict(group=C.GROUP, version=C.VERSION, plural=C.JOB_PLURAL)
SWEEP = dict(group=C.GROUP, version=C.VERSION, plural=C.SWEEP_PLURAL)
TRIAL = dict(STJ, labels={C.LABEL_SWEEP_UID: kopf.PRESENT})
OBJECT_WORKERS = 1000  # kopf's per-object workers per resource kind (asyncio tasks, a few KiB each)
RETRY_DELAY = 5.0


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    config = Settings.from_env()
    # Status, not annotations: no 256 KiB annotation limit, and users' annotations stay theirs.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = DiffBaseWithFirstStatus(field="status.kopf.diffbase")
    settings.posting.level = logging.WARNING  # our Events say what happened; kopf's INFO logs would flood
    settings.posting.reporting_component = "seqmodel-operator"
    # Handlers running at once are the thread pool's size: they are all synchronous. kopf's queueing
    # worker limit counts per-object workers instead, and each one stays for idle_timeout (5 s) after
    # the object's last event: limited to worker_limit, a burst of new objects waited for idle workers
    # to leave (4 objects/s with 20). Those workers are small asyncio tasks; the bound stays, higher.
    settings.execution.max_workers = config.worker_limit
    settings.queueing.worker_limit = OBJECT_WORKERS
    settings.watching.server_timeout = config.watch_timeout
    settings.watching.client_timeout = config.watch_timeout + 10
    settings.watching.inactivity_timeout = config.watch_timeout
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # One connection per handler thread and per thread that creates a sweep's trials (SweepReconciler.pool).
    kube = Kube(load_client(pool_size=2 * config.worker_limit), TokenBucket(config.api_qps, config.api_burst))
    memo.job_reconciler = Reconciler(kube, config)
    memo.sweep_reconciler = SweepReconciler(kube, config)
    logger.info("seqmodel operator configured: %s", config)


# A failed attempt (the API server unreachable, a conflict) is retried after RETRY_DELAY seconds, not
# kopf's default minute: a job should not sit unstarted for a transient error.
@kopf.on.resume(**STJ, backoff=RETRY_DELAY)
@kopf.on.create(**STJ, backoff=RETRY_DELAY)
@kopf.on.update(**STJ, field="spec.suspend", backoff=RETRY_DELAY)
def ensure(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    def hand_over(status: dict[str, Any]) -> None:
        patch.fns.append(functools.partial(_first_status, status))

    memo.job_reconciler.ensure(body, first_status=hand_over)


def _first_status(status: dict[str, Any], raw: dict[str, Any]) -> None:
    """A transformation function for kopf's patch (a JSON patch with a resourceVersion test): the status
    `ensure` computed for a new object, unless a sync has written one meanwhile (that one is newer)."""
    current = raw.setdefault("status", {})
    if not current.get("phase"):
        current.update(status)


class DiffBaseWithFirstStatus(kopf.StatusDiffBaseStorage):
    """kopf's last-handled configuration in status.kopf.diffbase. After `ensure` handed over a new
    object's first status (a transformation function), it goes into the same JSON patch instead of a
    merge patch of its own: one status write instead of two for every new object. Otherwise it is kopf's
    usual merge patch."""

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        if not patch.fns:
            super().store(body=body, patch=patch, essence=essence)
            return
        scratch = kopf.Patch()
        super().store(body=body, patch=scratch, essence=essence)
        patch.fns.append(functools.partial(_merge, copy.deepcopy(dict(scratch))))


def _merge(src: dict[str, Any], dst: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(value, dst[key])
        else:
            dst[key] = value


@kopf.index(**STJ)
def checkpoint_users(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], str] | None:
    """(namespace, source job) -> the jobs that take their checkpoint from it."""
    source = (spec.get("checkpoint") or {}).get("fromJob")
    return {(namespace, source): name} if source else None


@kopf.on.event(**STJ, when=lambda status, **_: status.get("phase") in ("Succeeded", "Failed"))
def job_finished(namespace: str, name: str, checkpoint_users: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    users = checkpoint_users.get((namespace, name))
    if users:
        memo.job_reconciler.source_finished(namespace, list(users))


@kopf.on.event("batch", "v1", "jobs", labels={C.LABEL_PARENT_UID: kopf.PRESENT})
def child_job_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.job_reconciler.job_changed(body, deleted=type == "DELETED")


# --- SeqSweeps ------------------------------------------------------------------------------------
# Everything a sweep's reconcile needs is in these two indexes (kopf lists them fully before any handler
# runs after a restart); each event of a sweep or a trial pokes the sweep's reconcile.
@kopf.index(**SWEEP)
def sweep_bodies(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the sweep (a copy: kopf's body is a view of the latest event)."""
    plain = copy.deepcopy(dict(body))
    plain.get("metadata", {}).pop("managedFields", None)
    return {(namespace, name): plain}


@kopf.index(**TRIAL)
def sweep_trials(namespace: str, name: str, labels: kopf.Labels, annotations: kopf.Annotations, status: kopf.Status,
                 **_: Any) -> dict[tuple[str, str], Trial]:
    """(namespace, sweep uid) -> a summary of each trial's run."""
    return {(namespace, labels[C.LABEL_SWEEP_UID]): trial_of(name, labels, annotations, status)}


def _sweeper(memo: kopf.Memo, sweep_bodies: kopf.Index, sweep_trials: kopf.Index) -> SweepReconciler:
    """The sweep reconciler, reading the indexes (kopf hands them only to handlers: the same two objects
    every time, so the first hand-over is the only one that changes anything)."""
    sweeper: SweepReconciler = memo.sweep_reconciler
    sweeper.read_from(sweep_bodies, sweep_trials)
    return sweeper


@kopf.on.event(**SWEEP)
def sweep_changed(type: str | None, namespace: str, name: str, uid: str, sweep_bodies: kopf.Index,
                  sweep_trials: kopf.Index, memo: kopf.Memo, **_: Any) -> None:
    if type == "DELETED":
        _sweeper(memo, sweep_bodies, sweep_trials).forget((namespace, name), uid)
    else:
        _sweeper(memo, sweep_bodies, sweep_trials).poke((namespace, name))


@kopf.on.event(**TRIAL)
def trial_changed(namespace: str, labels: kopf.Labels, sweep_bodies: kopf.Index, sweep_trials: kopf.Index,
                  memo: kopf.Memo, **_: Any) -> None:
    _sweeper(memo, sweep_bodies, sweep_trials).poke((namespace, labels[C.LABEL_SWEEP]))
