"""SeqSweep reconciliation: start trials' runs (SeqTrainingJobs) up to parallelism, and mirror them in status.

Which runs start, and with what parameters, is seqmodel.contract.sweep_plan's decision (grid, random, list
or TPE; ASHA promotions first), a pure function of the runs the index holds, which the Python API checks
a sweep with before sending it.

What the sweep knows of its trials comes from a kopf index (a summary per trial, built from the watch and
fully listed before any handler runs after a restart), so a reconcile reads nothing from the API: it
creates the next trials and writes the status when it changed. Any event of a sweep or of one of its
trials asks for a reconcile (`poke`); reconciles of one sweep never overlap, and pokes that arrive during
one are coalesced into a single rerun, so a burst of trial events costs one pass, not one each.

ASHA promotions are the one decision made on a LIST: a promotion ranks a rung's results, and kopf updates
the index object by object (each in its own worker, after a batching window), so the index can hold a
later result without an earlier one, and a trial could be promoted on a view of its rung that never was.
When the index's view would promote, the pass decides again on a consistent snapshot of the sweep's runs;
such passes are few (about one per promotion).

Nothing is lost to a crash: run names are deterministic (`<sweep>-<index>`, and `-r<rung>` for an ASHA
promotion; a second create meets 409) and a run's spec never changes, runs this process created but has
not seen yet count as active (parallelism holds across the watch's delay), and the status is computed
whole from the runs. Deletion cascades through ownerReferences.
"""

from __future__ import annotations

import contextvars
import copy
import dataclasses
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import kopf

from seqmodel.contract import sweep_status as ss
from seqmodel.contract.conditions import MESSAGE_MAX, now_iso
from seqmodel.contract.space import SearchError, count
from seqmodel.contract.sweep_plan import Launch, Search, run_name
from seqmodel_operator import constants as C
from seqmodel_operator.kube import Kube, TokenBucket, is_status
from seqmodel_operator.settings import Settings

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, sweep name)
RETRY_DELAY = 5.0  # seconds before a failed reconcile runs again


@dataclass
class SweepState:
    """What this process remembers of one sweep between reconciles; all of it can be lost."""

    uid: str
    search: Search | None = None  # from spec.parameters, schedule and objective, which are immutable
    invalid: str | None = None  # why the sweep cannot run, once known
    started: dict[ss.RunKey, dict[str, Any]] = field(default_factory=dict)  # created here, not yet seen: params
    written: dict[str, Any] | None = None  # the last status written
    written_at: float = 0.0
    timer: threading.Timer | None = None


class SweepReconciler:
    def __init__(self, kube: Kube, config: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.config, self.clock = kube, config, clock
        self.creations = TokenBucket(config.sweep_trial_rate, max(1, int(config.sweep_trial_rate)))
        self.pool = ThreadPoolExecutor(config.worker_limit, thread_name_prefix="sweep-trials")
        self.lock = threading.Lock()
        self.running: set[Key] = set()
        self.dirty: set[Key] = set()
        self.states: dict[Key, SweepState] = {}
        # kopf's indexes (read_from): (ns, name) -> the sweep's body, (ns, sweep uid) -> its trials' summaries.
        self.sweeps: Mapping[Key, Iterable[Mapping[str, Any]]] = {}
        self.trials: Mapping[Key, Iterable[ss.Trial]] = {}

    def read_from(self, sweeps: Mapping[Key, Iterable[Mapping[str, Any]]],
                  trials: Mapping[Key, Iterable[ss.Trial]]) -> None:
        """Read sweeps and trials from these (kopf's live indexes, which only handlers receive)."""
        self.sweeps, self.trials = sweeps, trials

    # --- scheduling ---------------------------------------------------------------------------
    def poke(self, key: Key) -> None:
        """Reconcile the sweep now in this thread, or once more after the reconcile already running."""
        with self.lock:
            if key in self.running:
                self.dirty.add(key)
                return
            self.running.add(key)
        try:
            while True:
                try:
                    self.reconcile(key)
                except Exception:  # never let one sweep's error stop the others: try again later
                    log.exception("sweep %s/%s: reconcile failed; retrying in %.0f s", *key, RETRY_DELAY)
                    self.later(key, RETRY_DELAY)
                with self.lock:
                    if key not in self.dirty:
                        self.running.discard(key)
                        return
                    self.dirty.discard(key)
        except BaseException:
            with self.lock:
                self.running.discard(key)
            raise

    def later(self, key: Key, delay: float) -> None:
        """One poke after `delay` seconds (at most one pending per sweep)."""
        state = self.states.get(key)
        if state is None or (state.timer is not None and state.timer.is_alive()):
            return
        # kopf.event needs kopf's context variables, which a plain thread does not have.
        state.timer = threading.Timer(delay, contextvars.copy_context().run, args=(self.poke, key))
        state.timer.daemon = True
        state.timer.start()

    def forget(self, key: Key, uid: str) -> None:
        """The sweep is gone: drop what this process remembers of it."""
        with self.lock:
            state = self.states.get(key)
            if state is not None and state.uid == uid:
                if state.timer is not None:
                    state.timer.cancel()
                del self.states[key]

    # --- one pass -----------------------------------------------------------------------------
    def reconcile(self, key: Key) -> None:
        body = next(iter(self.sweeps.get(key, ())), None)
        if body is None:
            return  # deleted; the trials go by garbage collection
        meta, spec = body["metadata"], body.get("spec") or {}
        state = self.state(key, meta["uid"])
        if state.search is None and state.invalid is None:
            state.search, state.invalid = _search(meta["name"], spec)
        search, metric = state.search, (spec.get("objective") or {}).get("metric")
        progress = ss.Progress.of(_with_params(self.trials.get((key[0], meta["uid"]), ()), search), state.started)
        state.started = dict(progress.started)  # those seen in the index are no longer ours to remember
        runs = progress.plan_runs(metric)
        status = ss.compute(body, progress, ss.SearchInfo.of(search, runs), now_iso(), state.invalid)
        if status["phase"] in ("Pending", "Running") and search is not None:
            room = int(spec.get("parallelism", 1)) - progress.active
            launches = search.plan(runs, room) if room > 0 else []
            if any(launch.rung > 0 for launch in launches):  # a promotion: decide on a consistent snapshot
                listed = [trial_of(o["metadata"]["name"], o["metadata"].get("labels") or {},
                                   o["metadata"].get("annotations") or {}, o.get("status") or {})
                          for o in self.kube.sweep_runs(key[0], meta["uid"])]
                progress = ss.Progress.of(_with_params(listed, search), state.started)
                room = int(spec.get("parallelism", 1)) - progress.active
                launches = search.plan(progress.plan_runs(metric), room) if room > 0 else []
            # Creates in parallel: a loaded API server answers each in tens to hundreds of milliseconds.
            for launch, problem in zip(launches, self.pool.map(lambda run: self.start(body, run), launches)):
                if problem is None:
                    state.started[(launch.index, launch.rung)] = launch.params
                elif state.invalid is None:
                    state.invalid = problem
            progress = ss.Progress.of(progress.runs.values(), state.started)
            status = ss.compute(body, progress, ss.SearchInfo.of(search, progress.plan_runs(metric)), now_iso(),
                                state.invalid)
        self.write_status(key, body, state, status)

    def state(self, key: Key, uid: str) -> SweepState:
        with self.lock:
            state = self.states.get(key)
            if state is None or state.uid != uid:  # new, or a namesake of a deleted sweep
                state = self.states[key] = SweepState(uid)
            return state

    def start(self, body: Mapping[str, Any], launch: Launch) -> str | None:
        """Create a trial's run; a message when it cannot be (the API server refuses it, or an object that
        is not this sweep's holds its name): the sweep cannot go on."""
        self.creations.take()
        index = launch.index
        meta, name = body["metadata"], run_name(body["metadata"]["name"], index, launch.rung)
        try:
            created = self.kube.create_training_job(meta["namespace"], trial_job(body, launch))
        except Exception as err:
            if is_status(err, 400, 422):
                return f"trial {index} was refused: {getattr(err, 'body', err)}"[:MESSAGE_MAX]
            raise
        if created is None:  # 409: this sweep's (an earlier attempt's create), or another object's name
            existing = self.kube.get_training_job(meta["namespace"], name) or {}
            held = existing.get("metadata") or {}
            if (held.get("labels") or {}).get(C.LABEL_SWEEP_UID) == meta["uid"]:
                return None
            if not held or held.get("deletionTimestamp") or any(
                    o.get("kind") == C.SWEEP_KIND for o in held.get("ownerReferences") or []):
                # gone meanwhile, or a deleted namesake's trial the garbage collector has yet to take: poke
                # tries again in RETRY_DELAY seconds
                raise RuntimeError(f"trial {index}: SeqTrainingJob {name} of an earlier sweep is being deleted")
            return (f"trial {index}: SeqTrainingJob {name} exists and is not this sweep's trial; "
                    f"delete it or give the sweep another name")[:MESSAGE_MAX]
        return None

    def write_status(self, key: Key, body: Mapping[str, Any], state: SweepState, new: dict[str, Any]) -> None:
        """Write the status when it changed. Writes that change only counts wait until a second has
        passed since the last one: a burst of trial events costs a few writes, not one per event."""
        old = state.written if state.written is not None else (body.get("status") or {})
        new = {k: v for k, v in new.items() if v is not None}
        if _same(old, new):
            return
        wait = self.config.sweep_status_interval - (self.clock() - state.written_at)
        if old.get("phase") == new["phase"] and wait > 0:
            self.later(key, wait)
            return
        patch = dict(new)
        if "bestTrial" not in new and "bestTrial" in old:
            patch["bestTrial"] = None
        try:
            self.kube.patch_sweep_status(key[0], key[1], patch)
        except Exception as err:
            if is_status(err, 404):
                return
            raise
        state.written, state.written_at = new, self.clock()
        if old.get("phase") != new["phase"]:
            failed = new["phase"] == "Failed"
            kopf.event(body, type="Warning" if failed else "Normal", reason=new["phase"], message=new["message"])
            log.info("sweep %s/%s: %s -> %s: %s", *key, old.get("phase"), new["phase"], new["message"])


def _search(name: str, spec: Mapping[str, Any]) -> tuple[Search | None, str | None]:
    """The sweep's search, or why it cannot run."""
    parameters = spec.get("parameters") or {}
    total = count(parameters)
    if total > C.MAX_TRIALS:
        return None, f"spec.parameters: {total} trials, more than the {C.MAX_TRIALS} a sweep may have"
    try:
        search = Search(parameters, spec.get("schedule"), spec.get("objective"))
    except SearchError as err:
        return None, f"spec.{err}"
    try:
        search.check_name(name)
    except SearchError as err:
        return None, str(err)
    return search, None


def _with_params(trials: Iterable[ss.Trial], search: Search | None) -> list[ss.Trial]:
    """The runs, with the parameters of a grid, random or list search filled in for those created before
    runs carried them."""
    points = search.points if search is not None else None
    if not points:
        return list(trials)
    return [t if t.params or t.index >= len(points) else dataclasses.replace(t, params=points[t.index]) for t in trials]


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change nothing: every key it sets has that value already (conditions
    compare equal when unchanged: set_condition keeps their transition times)."""
    return all(old.get(k) == v for k, v in new.items())


def trial_of(name: str, labels: Mapping[str, str], annotations: Mapping[str, str],
             status: Mapping[str, Any]) -> ss.Trial:
    """A run's summary from its SeqTrainingJob's labels, annotations and status (what trial_job wrote)."""
    replicates = status.get("replicates") or []
    return ss.Trial(index=int(labels[C.LABEL_TRIAL]), name=name, phase=status.get("phase") or "",
                    metrics=dict(status.get("metrics") or {}), message=status.get("message") or "",
                    rung=int(labels.get(C.LABEL_RUNG, 0)),
                    params=json.loads(annotations.get(C.ANNOTATION_PARAMS, "{}")),
                    replicate_metrics=tuple(dict(r.get("metrics") or {}) for r in replicates
                                            if r.get("phase") == "Succeeded"))


def trial_job(body: Mapping[str, Any], launch: Launch) -> dict[str, Any]:
    """A run of trial `launch.index`: a SeqTrainingJob from the template with its parameters, owned by the
    sweep. With ASHA it trains to its rung's budget, and a promotion resumes each replicate of the run
    below it."""
    meta, spec = body["metadata"], body["spec"]
    job_spec = copy.deepcopy(dict(spec["template"]))
    job_spec["hparams"] = {**(job_spec.get("hparams") or {}), **launch.params}
    labels = {C.LABEL_SWEEP: meta["name"], C.LABEL_SWEEP_UID: meta["uid"], C.LABEL_TRIAL: str(launch.index)}
    if launch.budget is not None:
        job_spec["hparams"]["max_steps"] = launch.budget
        labels[C.LABEL_RUNG] = str(launch.rung)
    if launch.rung > 0:
        job_spec["checkpoint"] = {"fromJob": run_name(meta["name"], launch.index, launch.rung - 1),
                                  "use": "resume", "eachReplicate": True}
    job_spec["replicates"] = int(spec.get("replicates", 1))
    job_spec["backoffLimit"] = int(spec.get("trialRetries", 1))
    annotations = {C.ANNOTATION_PARAMS: json.dumps(launch.params, sort_keys=True)}
    if launch.conditioned_on is not None:
        annotations[C.ANNOTATION_CONDITIONED] = launch.conditioned_on
    if launch.promoted_as is not None:
        annotations[C.ANNOTATION_PROMOTED_AS] = launch.promoted_as
    return {
        "apiVersion": C.API_VERSION, "kind": C.JOB_KIND,
        "metadata": {
            "name": run_name(meta["name"], launch.index, launch.rung), "namespace": meta["namespace"],
            "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": C.API_VERSION, "kind": C.SWEEP_KIND, "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": job_spec,
    }
