"""Pod status as kubelet reports it, built from the worker's view of its containers (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .runtime import ContainerRun, Exit, now


@dataclass
class Container:
    """The worker's record of one container across restarts."""

    spec: dict
    restarts: int = 0
    run: ContainerRun | None = None
    last: Exit | None = None  # the previous run's end, shown as lastState
    waiting: tuple[str, str] = ("ContainerCreating", "")
    next_start: float = 0.0  # monotonic time of the next (re)start, for back-off
    done: bool = False  # terminated for good (no restart will follow)

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def running(self) -> bool:
        return self.run is not None and self.run.proc is not None and self.run.exit is None


def _terminated(e: Exit) -> dict:
    out = {"exitCode": e.code, "reason": e.reason, "startedAt": e.started, "finishedAt": e.finished}
    if e.message:
        out["message"] = e.message
    if e.signal:
        out["signal"] = e.signal
    return out


def container_status(c: Container) -> dict:
    status: dict = {
        "name": c.name,
        "image": c.spec.get("image") or "process",
        "imageID": "",
        "restartCount": c.restarts,
        "ready": c.running,
        "started": c.running,
        "lastState": {"terminated": _terminated(c.last)} if c.last else {},
    }
    if c.run is not None and c.run.pid is not None:
        status["containerID"] = f"process://{c.run.pid}"
    if c.running:
        status["state"] = {"running": {"startedAt": c.run.started}}
    elif c.done and c.run is not None and c.run.exit is not None:
        status["state"] = {"terminated": _terminated(c.run.exit)}
    else:
        reason, message = c.waiting
        status["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    return status


@dataclass
class Conditions:
    """Pod conditions with stable lastTransitionTime (it only moves when the status flips)."""

    current: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # type -> (status, reason, time)

    def set(self, type_: str, ok: bool, reason: str = "") -> None:
        status = "True" if ok else "False"
        old = self.current.get(type_)
        if old is None or old[0] != status or old[1] != reason:
            self.current[type_] = (status, reason, now() if old is None or old[0] != status else old[2])

    def as_list(self) -> list[dict]:
        out = []
        for type_, (status, reason, when) in self.current.items():
            cond = {"type": type_, "status": status, "lastTransitionTime": when, "lastProbeTime": None}
            if reason:
                cond["reason"] = reason
            out.append(cond)
        return out


def pod_status(phase: str, start_time: str, host_ip: str, conditions: Conditions, init: list[Container],
               main: list[Container], reason: str = "", message: str = "") -> dict:
    status = {
        "phase": phase,
        "startTime": start_time,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "conditions": conditions.as_list(),
        "containerStatuses": [container_status(c) for c in main],
    }
    if init:
        status["initContainerStatuses"] = [container_status(c) for c in init]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return status
