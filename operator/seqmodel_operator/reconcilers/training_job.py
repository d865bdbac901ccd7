"""SeqTrainingJob reconciliation: make the child Jobs exist as the spec says, and mirror them in status.

`ensure` runs on create, on operator start (resume) and when spec.suspend changes; `sync` runs on each
child Job event that changes what the status shows (`job_changed`). Both are idempotent and read the
current state from the API, so any interleaving (two workers, a restart half-way) converges: child names
are deterministic (a second create meets 409), versions come from `versions.allocate` (the same owner
always gets the same version), and status writes carry the resourceVersion they were computed from (a
stale write fails with 409 and is redone). No finalizer is added: deletion cascades to the Jobs through
ownerReferences, operator running or not.

Writes per job are few on purpose (BENCHMARKS.md, `bench operator`): a new object's first status is handed
to kopf, which writes it in one request with its own bookkeeping, and Job events that change nothing the
status shows (the Job controller's counters) cause no reads or writes at all.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Iterable, Mapping

import kopf

from seqmodel.contract.conditions import now_iso, set_condition
from seqmodel_operator import constants as C
from seqmodel_operator import status as st
from seqmodel_operator import versions
from seqmodel_operator.kube import Kube, is_status
from seqmodel_operator.plan import Plan, SpecError, make_plan
from seqmodel_operator.render import RenderError, Replicate, render_job
from seqmodel_operator.settings import Settings

STATUS_RETRIES = 10

log = logging.getLogger(__name__)


class Waiting(Exception):
    """The job waits for its checkpoint source; nothing to retry until that source changes."""


class Reconciler:
    def __init__(self, kube: Kube, config: Settings) -> None:
        self.kube, self.config = kube, config
        # Unfinished child Job's UID -> its st.job_signature when its last sync succeeded. kopf handles
        # one event of an object at a time, so only `ensure` seeding an entry can run beside it.
        self.synced: dict[str, tuple[Any, ...]] = {}
        self.synced_lock = threading.Lock()

    # --- spec -> child Jobs -------------------------------------------------------------------
    def ensure(self, body: Mapping[str, Any], first_status: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Create the missing child Jobs, apply spec.suspend, and bring the status up to date.

        `first_status`, when given, takes the status of an object that has none yet instead of it being
        written here: kopf then writes it together with its own bookkeeping in one request."""
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        old = body.get("status") or {}
        if old.get("phase") in st.TERMINAL:
            return  # a finished run is a record; nothing to create or suspend
        try:
            plan = self.plan(body)
        except Waiting:
            return
        except SpecError as err:
            self.fail(ns, name, meta["uid"], "InvalidSpec", str(err))
            raise kopf.PermanentError(str(err)) from None
        # A sweep's trials differ in their hparams: a new trial's canonical name is most likely new too.
        likely_new = not old and C.LABEL_SWEEP_UID in (meta.get("labels") or {})
        try:
            jobs = [render_job(plan, Replicate(r, v), self.config)
                    for r, v in versions.allocate(self.kube, plan, likely_new).items()]
        except RenderError as err:
            self.fail(ns, name, meta["uid"], "RenderFailed", str(err))
            raise kopf.PermanentError(str(err)) from None
        # Nothing written yet, not even kopf's progress of an earlier attempt: no child can exist, unless
        # another worker raced us, and then a create meets 409 and we list them after all.
        fresh = not body.get("status")
        existing = {} if fresh else {j["metadata"]["name"]: j for j in self.kube.child_jobs(ns, plan.uid)}
        children, complete = list(existing.values()), True
        for job in jobs:
            if job["metadata"]["name"] not in existing:
                created = self.kube.create_job(ns, job)
                if created is None:
                    complete = False  # it exists already: we do not have it
                else:
                    children.append(created)
                    self.seed(created)
        if not complete:
            existing = {j["metadata"]["name"]: j for j in self.kube.child_jobs(ns, plan.uid)}
        self.apply_suspend(plan, existing.values())
        if first_status is not None and complete and not old.get("phase"):
            new, taken = st.compute(body, plan.canonical, children, lambda job: self.kube.job_pods(ns, job),
                                    now_iso())
            if not taken:
                first_status({k: v for k, v in new.items() if v is not None})
                self.announce(body, old, new)
                return
        self.sync(ns, name, meta["uid"], plan.canonical)

    def plan(self, body: Mapping[str, Any]) -> Plan:
        """The job's plan; raises Waiting (after saying so in status) until its checkpoint source succeeded."""
        meta, spec = body["metadata"], body.get("spec") or {}
        files = self.config_files(meta["namespace"], spec)
        source_name = (spec.get("checkpoint") or {}).get("fromJob")
        if not source_name:
            return make_plan(body, self.config, config_files=files)
        source = self.kube.get_training_job(meta["namespace"], source_name)
        phase = ((source or {}).get("status") or {}).get("phase")
        if phase == "Failed":
            raise SpecError(f"spec.checkpoint.fromJob: job {source_name} failed; it has no checkpoint to use")
        if phase != "Succeeded":
            why = f"job {source_name} does not exist yet" if source is None else f"job {source_name} is {phase or 'Pending'}"
            self.wait(body, f"waiting for spec.checkpoint.fromJob: {why}")
            raise Waiting(why)
        return make_plan(body, self.config, source, files)

    def config_files(self, namespace: str, spec: Mapping[str, Any]) -> dict[str, str] | None:
        """The data of spec.configFrom's ConfigMap (read when the job starts: the run records what it used
        in its hparams.yaml)."""
        name = (spec.get("configFrom") or {}).get("name")
        if not name:
            return None
        cm = self.kube.get_config_map(namespace, name)
        if cm is None:
            raise SpecError(f"spec.configFrom.name: ConfigMap {name} not found in namespace {namespace}")
        return dict(cm.get("data") or {})

    def wait(self, body: Mapping[str, Any], message: str) -> None:
        """Say in status what the job waits for; `source_finished` runs it again when that changes."""
        meta = body["metadata"]
        old = body.get("status") or {}
        generation = int(meta.get("generation", 1))
        conditions = set_condition(list(old.get("conditions") or []), C.COND_READY, "False",
                                      "WaitingForCheckpoint", message, generation, now_iso())
        if old.get("phase") != "Pending" or old.get("conditions") != conditions:
            self.kube.patch_training_job_status(meta["namespace"], meta["name"], {
                "phase": "Pending", "conditions": conditions, "observedGeneration": generation},
                meta["resourceVersion"])

    def apply_suspend(self, plan: Plan, jobs: Any) -> None:
        """spec.suspend to every unfinished child Job. With a Kueue queue, only suspending is ours:
        Kueue unsuspends a Job when it admits it."""
        want = bool(plan.spec.get("suspend"))
        for job in jobs:
            if st.job_phase(job) in st.TERMINAL or bool((job.get("spec") or {}).get("suspend")) == want:
                continue
            if want or not plan.spec.get("queueName"):
                self.kube.set_job_suspend(plan.namespace, job["metadata"]["name"], want)

    def source_finished(self, ns: str, dependents: Iterable[str]) -> None:
        """A job other jobs take their checkpoint from has finished: run the ones waiting for it."""
        for name in dependents:
            body = self.kube.get_training_job(ns, name)
            if body is None:
                continue
            try:
                self.ensure(body)
            except kopf.PermanentError:
                continue  # ensure has marked that one Failed; the others still run

    # --- child Jobs -> status -----------------------------------------------------------------
    def seed(self, job: Mapping[str, Any]) -> None:
        """A Job just created by `ensure`, whose parent's status is written with it: its ADDED event
        has nothing to add."""
        with self.synced_lock:
            self.synced[job["metadata"]["uid"]] = st.job_signature(job)

    def job_changed(self, job: Mapping[str, Any], deleted: bool = False) -> None:
        """A child Job's event: sync its parent unless nothing the status shows changed since the
        last sync this Job caused (the Job controller also writes counters the status ignores)."""
        meta = job["metadata"]
        if not deleted and st.job_finishing(job):
            return  # Complete or Failed follows in a moment; one status write then, not two
        signature = None if deleted else st.job_signature(job)
        with self.synced_lock:
            if deleted:
                self.synced.pop(meta["uid"], None)
            elif self.synced.get(meta["uid"]) == signature:
                return
        self.sync(meta["namespace"], meta["labels"][C.LABEL_PARENT], meta["labels"][C.LABEL_PARENT_UID])
        if signature is not None:
            with self.synced_lock:
                if signature[0] in st.TERMINAL:
                    self.synced.pop(meta["uid"], None)  # finished: few events follow, keep no memory for it
                else:
                    self.synced[meta["uid"]] = signature

    def sync(self, ns: str, name: str, uid: str, canonical: str | None = None) -> None:
        """Recompute the status from the children and write it when it changed."""
        def compute(body: Mapping[str, Any]) -> dict[str, Any] | None:
            old = body.get("status") or {}
            if old.get("phase") == "Failed" and not old.get("replicates"):
                return None  # failed before any child existed (bad spec): nothing to mirror
            while True:
                jobs = self.kube.child_jobs(ns, uid)
                name_of = canonical or old.get("canonicalName") or next(
                    (j["metadata"]["annotations"].get(C.ANNOTATION_CANONICAL) for j in jobs), "")
                new, taken = st.compute(body, name_of, jobs, lambda job: self.kube.job_pods(ns, job), now_iso())
                if not taken:
                    break
                self.move_versions(body, taken, jobs)
            return None if all(old.get(k) == v for k, v in new.items()) else new

        self.update_status(ns, name, uid, compute)

    def update_status(self, ns: str, name: str, uid: str,
                      compute: Callable[[Mapping[str, Any]], dict[str, Any] | None]) -> None:
        """Write the status `compute(object)` returns (None: nothing to write) with the resourceVersion it
        was computed from; after a 409 read the object again and recompute."""
        for _ in range(STATUS_RETRIES):
            body = self.kube.get_training_job(ns, name)
            if body is None or body["metadata"]["uid"] != uid:
                return  # deleted (or replaced by a namesake): its children go with it
            new = compute(body)
            if new is None:
                return
            try:
                self.kube.patch_training_job_status(ns, name, new, body["metadata"]["resourceVersion"])
            except Exception as err:
                if is_status(err, 409):
                    continue
                raise
            self.announce(body, body.get("status") or {}, new)
            return
        raise kopf.TemporaryError(f"status of {ns}/{name}: {STATUS_RETRIES} conflicts in a row", delay=1)

    def move_versions(self, body: Mapping[str, Any], taken: set[int], jobs: list[Mapping[str, Any]]) -> None:
        """Replicates whose version directory holds another run's files get the next version."""
        plan = self.plan(body)
        for index in sorted(taken):
            current = max(int(j["metadata"]["labels"][C.LABEL_VERSION]) for j in jobs
                          if int(j["metadata"]["labels"][C.LABEL_REPLICATE]) == index)
            version = versions.advance(self.kube, plan, index, current)
            kopf.event(body, type="Warning", reason="VersionTaken",
                       message=f"replicate {index}: {plan.output_path(current)} holds another run's files; "
                               f"using version {version}")
            self.kube.create_job(plan.namespace, render_job(plan, Replicate(index, version), self.config))

    def announce(self, body: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """A Kubernetes Event and a log line on each phase transition."""
        if old.get("phase") == new["phase"]:
            return
        failed = new["phase"] == "Failed"
        message = new.get("message") if failed else f"{new['phase']}: {new.get('output', '')}"
        kopf.event(body, type="Warning" if failed else "Normal", reason=new["phase"], message=message or "")
        log.info("job %s/%s: %s -> %s", body["metadata"]["namespace"], body["metadata"]["name"],
                 old.get("phase"), new["phase"])

    def fail(self, ns: str, name: str, uid: str, reason: str, message: str) -> None:
        """End a job that cannot run: phase Failed, a condition saying why, an Event."""
        def compute(body: Mapping[str, Any]) -> dict[str, Any]:
            old = body.get("status") or {}
            generation, now = int(body["metadata"].get("generation", 1)), now_iso()
            conditions = set_condition(list(old.get("conditions") or []), C.COND_SUCCEEDED, "False", reason,
                                          message, generation, now)
            conditions = set_condition(conditions, C.COND_READY, "False", reason, message, generation, now)
            return {"phase": "Failed", "message": message, "conditions": conditions,
                    "observedGeneration": generation, "completionTime": now}

        self.update_status(ns, name, uid, compute)
