"""A SeqTrainingJob's status as a pure function of its child Jobs, their pods and the previous status.

Every status write is computed whole from the current state, so any order of events converges on the
same status, and an operator restart needs nothing but the objects themselves. Run results come from
the pods' termination messages (the JSON summary that seqmodel.run writes), so no sidecar or volume
access is needed to know how a run ended.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, Callable, Iterable, Mapping

from seqmodel import contract
from seqmodel.contract.conditions import MESSAGE_MAX, now_iso, set_condition
from seqmodel_operator import constants as C

TERMINAL = ("Succeeded", "Failed")


def _true_condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def job_phase(job: Mapping[str, Any]) -> str:
    """A child Job's phase in our vocabulary."""
    status = job.get("status") or {}
    if _true_condition(job, "Complete"):
        return "Succeeded"
    if _true_condition(job, "Failed"):
        return "Failed"
    if (job.get("spec") or {}).get("suspend") and not status.get("active"):
        return "Suspended"
    if status.get("ready"):
        return "Running"  # a pod is up; before that it is scheduling, pulling or staging data
    if _outcome_decided(job):
        # The pod has ended (ready is 0) but Complete/Failed come only once the Job controller has
        # counted it (status.uncountedTerminatedPods): still Running, not back to Pending.
        return "Running"
    return "Pending"


def _outcome_decided(job: Mapping[str, Any]) -> bool:
    return bool(_true_condition(job, "SuccessCriteriaMet") or _true_condition(job, "FailureTarget"))


def job_finishing(job: Mapping[str, Any]) -> bool:
    """The Job controller has decided the outcome (SuccessCriteriaMet, FailureTarget) but not written it
    yet: Complete or Failed follows once it has counted the pods."""
    return _outcome_decided(job) and job_phase(job) not in TERMINAL


def job_signature(job: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a child Job the parent's status depends on; events that leave it unchanged (the Job
    controller's uncounted-pod and terminating bookkeeping) need no sync."""
    status = job.get("status") or {}
    return (job_phase(job), status.get("active", 0), status.get("ready", 0), status.get("failed", 0),
            status.get("succeeded", 0))


def _terminated(pod: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    status = pod.get("status") or {}
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        term = (c.get("state") or {}).get("terminated") or (c.get("lastState") or {}).get("terminated")
        if term:
            yield c.get("name", "?"), term


def summary_of(message: str | None) -> dict[str, Any] | None:
    """The run's JSON summary from a termination message, or None when it is not one (logs, empty)."""
    try:
        data = json.loads(message or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def pod_failure(pod: Mapping[str, Any]) -> tuple[str, int | None] | None:
    """Why a pod failed, in one line, and the failing container's exit code."""
    for name, term in _terminated(pod):
        code = term.get("exitCode")
        if code in (0, None):
            continue
        reason = term.get("reason") or "Error"
        summary = summary_of(term.get("message"))
        if summary and summary.get("error"):
            detail = summary["error"]
        else:
            lines = [line for line in (term.get("message") or "").splitlines() if line.strip()]
            detail = lines[-1] if lines else ""
        if reason == "OOMKilled":
            detail = detail or "the container ran out of memory; raise spec.resources.memory"
        text = f"container {name} exited with code {code} ({reason})" + (f": {detail}" if detail else "")
        return text[:MESSAGE_MAX], code
    pod_status = pod.get("status") or {}
    if pod_status.get("phase") == "Failed" and pod_status.get("reason"):
        return f"pod {pod_status['reason']}: {pod_status.get('message', '')}"[:MESSAGE_MAX], None
    return None


def pod_waiting(pod: Mapping[str, Any]) -> str | None:
    """Why a pod is not running yet, when Kubernetes says (unschedulable, image pull, bad config)."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"pod {pod['metadata']['name']} cannot be scheduled: {cond.get('message', '')}"[:MESSAGE_MAX]
    for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            return f"container {c.get('name')}: {waiting['reason']}: {waiting.get('message', '')}"[:MESSAGE_MAX]
    return None


def _newest_first(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)


def job_failure(job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> tuple[str, int | None]:
    """Why a child Job failed: the Job's reason, then the newest failed pod's container and error."""
    cond = _true_condition(job, "Failed") or {}
    head = cond.get("reason") or "Failed"
    for pod in _newest_first(pods):
        found = pod_failure(pod)
        if found:
            return f"{head}: {found[0]}"[:MESSAGE_MAX], found[1]
    return f"{head}: {cond.get('message', 'no pod reported why')}"[:MESSAGE_MAX], None


def job_result(pods: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The trainer's summary from the succeeded pod's termination message ({} when there is none)."""
    for pod in _newest_first(pods):
        if (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        for name, term in _terminated(pod):
            summary = summary_of(term.get("message")) if name == "trainer" else None
            if summary:
                return summary
    return {}


def replicate_entries(previous: Iterable[Mapping[str, Any]], jobs: Iterable[Mapping[str, Any]],
                      pods_of: Callable[[str], list[Mapping[str, Any]]]) -> tuple[list[dict[str, Any]], set[int]]:
    """Per-replicate status from the child Jobs (the newest version of each replicate wins), keeping
    finished entries whose Job is gone (ttlSecondsAfterFinished). Also returns the replicates whose
    version turned out to be taken on the volume (they need a new version)."""
    entries = {int(e["index"]): dict(e) for e in previous}
    taken: set[int] = set()
    newest: dict[int, Mapping[str, Any]] = {}
    for job in jobs:
        labels = job["metadata"].get("labels") or {}
        index, version = int(labels[C.LABEL_REPLICATE]), int(labels[C.LABEL_VERSION])
        if index not in newest or version > int(newest[index]["metadata"]["labels"][C.LABEL_VERSION]):
            newest[index] = job
    for index, job in newest.items():
        meta, prev = job["metadata"], entries.get(index, {})
        version = int(meta["labels"][C.LABEL_VERSION])
        entry = {"index": index, "version": version, "outputPath": meta["annotations"][C.ANNOTATION_OUTPUT],
                 "job": meta["name"], "phase": job_phase(job)}
        failed_pods = int((job.get("status") or {}).get("failed", 0))
        # retries: failed pods that another attempt followed (the last one of a failed Job was not retried)
        entry["restarts"] = max(0, failed_pods - 1) if entry["phase"] == "Failed" else failed_pods
        same_run = prev.get("job") == meta["name"]
        if (entry["phase"] == "Pending" and same_run and prev.get("phase") == "Running"
                and entry["restarts"] == prev.get("restarts")):
            # The same attempt's pod, no longer Ready: its containers have ended and the kubelet reports
            # that before the pod's phase, which the Job controller then counts. Not back to Pending.
            entry["phase"] = "Running"
        if entry["phase"] == "Failed":
            if same_run and prev.get("phase") == "Failed" and prev.get("message"):
                entry["message"] = prev["message"]
            else:
                entry["message"], code = job_failure(job, pods_of(meta["name"]))
                if code == C.EXIT_VERSION_TAKEN:
                    taken.add(index)
        elif entry["phase"] == "Pending" and (job.get("status") or {}).get("active"):
            why = next(filter(None, map(pod_waiting, pods_of(meta["name"]))), None)
            if why:
                entry["message"] = why
        elif entry["phase"] == "Succeeded":
            if same_run and "metrics" in prev:
                entry.update({k: prev[k] for k in ("metrics", "predictions") if k in prev})
            else:
                result = job_result(pods_of(meta["name"]))
                entry["metrics"] = result.get("metrics") or {}
                if (result.get("outputs") or {}).get("predictions"):  # test mode: point at them
                    entry["predictions"] = posixpath.join(entry["outputPath"], "predictions.tsv")
        entries[index] = entry
    return [entries[i] for i in sorted(entries)], taken


def compute(body: Mapping[str, Any], canonical: str, jobs: list[Mapping[str, Any]],
            pods_of: Callable[[str], list[Mapping[str, Any]]], now: str) -> tuple[dict[str, Any], set[int]]:
    """The whole status (without kopf's own fields), and replicates that need a new version."""
    spec, old = body.get("spec") or {}, dict(body.get("status") or {})
    replicates, generation = int(spec.get("replicates", 1)), int(body["metadata"].get("generation", 1))
    entries, taken = replicate_entries(old.get("replicates") or [], jobs, pods_of)
    phase = contract.job_phase([e.get("phase", "Pending") for e in entries], replicates, bool(spec.get("suspend")))
    if taken and phase == "Failed" and all(e["phase"] != "Failed" or e["index"] in taken for e in entries):
        phase = "Pending"  # the operator moves those replicates to the next version
    conditions = list(old.get("conditions") or [])
    created = len({e["index"] for e in entries}) >= replicates
    conditions = set_condition(conditions, C.COND_READY, "True" if created else "False",
                               "JobsCreated" if created else "CreatingJobs",
                               f"{len(entries)} of {replicates} child Jobs exist", generation, now)
    # Why it failed, or else why a replicate is not running yet (unschedulable, image pull, ...).
    message = next((f"replicate {e['index']}: {e['message']}" for e in sorted(entries, key=lambda e: e["phase"] != "Failed")
                    if e.get("phase") in ("Failed", "Pending") and e.get("message")), "")
    succeeded = {"Succeeded": ("True", "Succeeded", f"all {replicates} replicate(s) succeeded"),
                 "Failed": ("False", "Failed", message)}.get(phase, ("Unknown", phase, message or phase.lower()))
    conditions = set_condition(conditions, C.COND_SUCCEEDED, *succeeded, generation, now)
    conditions = set_condition(conditions, C.COND_SUSPENDED, "True" if phase == "Suspended" else "False",
                               "SuspendedByUser" if phase == "Suspended" else "NotSuspended",
                               "spec.suspend is true" if phase == "Suspended" else "", generation, now)
    paths = [e["outputPath"] for e in entries]
    status: dict[str, Any] = {
        "phase": phase, "observedGeneration": generation, "conditions": conditions, "canonicalName": canonical,
        "output": paths[0] if len(paths) == 1 else ", ".join(paths), "replicates": entries,
        "metrics": contract.mean_metrics((e.get("phase", ""), e.get("metrics") or {}) for e in entries),
        "startTime": old.get("startTime") or (now if phase != "Pending" else None),
        "completionTime": old.get("completionTime") or (now if phase in TERMINAL else None),
        "message": message or None,
    }
    return status, taken
