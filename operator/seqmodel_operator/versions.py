"""Version numbers of runs: `runs/<canonical>/version_<n>`, never shared and never reused.

The primitive is optimistic concurrency on one ConfigMap per (output claim, root, canonical name): it
holds the next free version and every allocation keyed by its owner (a SeqTrainingJob's UID and
replicate). An update carries the resourceVersion it read, so of two operators (or two workers) racing,
one wins and the other re-reads and retries; an owner that already has a version gets the same one back,
so a restart or a retried handler never allocates twice. The ConfigMap belongs to no job, so deleting
jobs frees nothing. Why not the alternatives: an atomic mkdir needs the volume, which the operator does
not mount; API-name uniqueness needs one object per version and a scan to find the next one.

The volume has the last word: the pod's staging step refuses a version directory that holds another
owner's files (exit code 3), e.g. after the cluster's state was lost, and `advance` then moves that
replicate past it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from seqmodel_operator import constants as C
from seqmodel_operator.kube import Kube, is_status
from seqmodel_operator.plan import Plan

CONFLICT_RETRIES = 20


def counter_name(plan: Plan) -> str:
    return f"seqmodel-versions-{plan.version_key}"


def _update(kube: Kube, plan: Plan, change: Callable[[dict[str, int], int], tuple[dict[str, int], int]],
            likely_new: bool = False) -> dict[str, int]:
    """Apply `change(allocations, next)` to the counter under optimistic concurrency; the allocations.
    `likely_new`: try to create the counter before reading it (one request instead of two for a
    canonical name's first job; a 409 then falls back to read and replace)."""
    name = counter_name(plan)
    for attempt in range(CONFLICT_RETRIES):
        cm = None if likely_new and attempt == 0 else kube.get_config_map(plan.namespace, name)
        data = (cm or {}).get("data") or {}
        allocations = json.loads(data.get("allocations", "{}"))
        next_free = int(data.get("next", "0"))
        new_allocations, new_next = change(dict(allocations), next_free)
        if cm is not None and (new_allocations, new_next) == (allocations, next_free):
            return allocations
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": plan.namespace,
                         "labels": {"app.kubernetes.io/managed-by": "seqmodel-operator",
                                    C.LABEL_CANONICAL: plan.version_key},
                         "annotations": {C.ANNOTATION_CANONICAL: plan.canonical,
                                         f"{C.GROUP}/output": f"{plan.output_claim}:{plan.output_root}"}},
            "data": {"next": str(new_next), "allocations": json.dumps(new_allocations, sort_keys=True)},
        }
        try:
            if cm is None:
                kube.create_config_map(plan.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = cm["metadata"]["resourceVersion"]
                kube.replace_config_map(plan.namespace, name, body)
            return new_allocations
        except Exception as err:
            if not is_status(err, 409):
                raise
    raise RuntimeError(f"version counter {plan.namespace}/{name}: {CONFLICT_RETRIES} conflicts in a row")


def allocate(kube: Kube, plan: Plan, likely_new: bool = False) -> dict[int, int]:
    """replicate -> version for every replicate of the job; existing allocations are kept. `likely_new`
    when the canonical name probably has no counter yet (a new job of a sweep, say)."""
    def change(allocations: dict[str, int], next_free: int) -> tuple[dict[str, int], int]:
        for replicate in range(plan.replicates):
            owner = plan.owner(replicate)
            if owner not in allocations:
                allocations[owner], next_free = next_free, next_free + 1
        return allocations, next_free

    allocations = _update(kube, plan, change, likely_new)
    return {r: allocations[plan.owner(r)] for r in range(plan.replicates)}


def advance(kube: Kube, plan: Plan, replicate: int, taken: int) -> int:
    """Move a replicate whose version `taken` is occupied on the volume to the next free version."""
    owner = plan.owner(replicate)

    def change(allocations: dict[str, int], next_free: int) -> tuple[dict[str, int], int]:
        if allocations.get(owner) == taken:
            allocations[owner], next_free = max(next_free, taken + 1), max(next_free, taken + 1) + 1
        return allocations, next_free

    return _update(kube, plan, change)[owner]
