"""Status conditions as the operator writes them on its objects, and a local sweep on its status (the same
shape, so `kubectl get` and a notebook read one vocabulary). Torch-free."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

MESSAGE_MAX = 1000  # characters of a failure message kept in status
COND_SUCCEEDED = "Succeeded"  # True: finished well; False: failed; Unknown: still going
COND_READY = "Ready"  # the child Jobs exist as the spec says
COND_SUSPENDED = "Suspended"


def now_iso() -> str:
    """A condition's and a status's time stamp: UTC, to the second, as Kubernetes writes them."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  generation: int, now: str) -> list[dict[str, Any]]:
    """Conditions with one replaced; lastTransitionTime moves only when the status changes."""
    old = next((c for c in conditions if c["type"] == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    new = {"type": type_, "status": status, "reason": reason, "message": message[:MESSAGE_MAX],
           "lastTransitionTime": since, "observedGeneration": generation}
    return [c for c in conditions if c["type"] != type_] + [new]
