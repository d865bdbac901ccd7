"""Start detached processes and stop exactly those, never a look-alike.

A PID alone can be reused by an unrelated process after a crash or reboot, so each PID is saved with
its kernel start time (/proc/<pid>/stat field 22) and only signalled while both still match.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

KILL_WAIT = 5.0  # seconds to wait for SIGKILLed processes to be gone


@dataclass(frozen=True)
class Proc:
    """A process this cluster started: enough to find it again and to know it is still the same one."""

    name: str
    pid: int
    start_time: int
    log: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Proc":
        return cls(data["name"], int(data["pid"]), int(data["start_time"]), data.get("log", ""))

    def alive(self) -> bool:
        return process_start_time(self.pid) == self.start_time


def process_start_time(pid: int) -> int | None:
    """Kernel start time of a live (non-zombie) process, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def spawn(name: str, argv: Sequence[str], log: Path, cwd: Path | None = None) -> Proc:
    """Start `argv` in its own session (so it outlives the caller and can be killed as a group)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=cwd, close_fds=True)
    start = None
    for _ in range(50):
        start = process_start_time(child.pid)
        if start is not None:
            break
        if child.poll() is not None:
            break
        time.sleep(0.01)
    if start is None:
        raise RuntimeError(f"{name} exited at once (exit {child.poll()}); see {log}")
    return Proc(name, child.pid, start, str(log))


def stop(procs: Iterable[Proc], grace: float = 15.0) -> list[str]:
    """SIGTERM every live process of `procs`, SIGKILL whatever is left after `grace` seconds.

    Returns the names of processes that had to be killed.
    """
    live = [p for p in procs if p.alive()]
    for p in live:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.alive() for p in live):
        time.sleep(0.1)
    killed = []
    for p in live:
        if p.alive():
            _signal_group(p, signal.SIGKILL)
            killed.append(p.name)
    # SIGKILL is not synchronous: wait, so a following `up` or rmtree never races a dying etcd.
    deadline = time.monotonic() + KILL_WAIT
    while killed and time.monotonic() < deadline and any(p.alive() for p in live):
        time.sleep(0.05)
    return killed


def _signal_group(p: Proc, sig: int) -> None:
    """Signal the process group the process leads (spawn() made one), else the process itself."""
    try:
        if os.getpgid(p.pid) == p.pid:
            os.killpg(p.pid, sig)
        else:
            os.kill(p.pid, sig)
    except ProcessLookupError:
        pass


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free on 127.0.0.1 right now (held open until all are picked)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
