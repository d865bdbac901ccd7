"""One run of one container as a host process group, with its log and termination message.

The process leads its own session, so signals reach everything it started (like a container's PID
namespace going away). Its PID and start time go to a PID file so `cluster.py down` can stop it even if
the node agent died first.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..procs import process_start_time

MAX_MESSAGE = 4096  # kubelet's per-container limit for the termination message
LOG_TAIL_LINES = 80  # FallbackToLogsOnError: kubelet uses the last 80 lines / 2048 bytes
LOG_TAIL_BYTES = 2048


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Exit:
    """How a run ended, in the terms of ContainerStateTerminated."""

    code: int
    reason: str
    message: str
    started: str
    finished: str
    signal: int | None = None


@dataclass
class ContainerRun:
    """A started container process."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    message_file: Path
    pid_file: Path
    fallback_to_logs: bool
    started: str = field(default_factory=now)
    proc: subprocess.Popen | None = None
    exit: Exit | None = None

    def start(self) -> None:
        """Start the process; a missing executable or bad workingDir becomes exit 127/128 like a runtime."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.message_file.parent.mkdir(parents=True, exist_ok=True)
        self.message_file.write_bytes(b"")
        self.started = now()
        if not self.argv:
            self.exit = Exit(128, "ContainerCannotRun",
                             "the process node needs command or args: images are ignored", self.started, now())
            return
        try:
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        except (FileNotFoundError, PermissionError, NotADirectoryError, OSError) as e:
            self.exit = Exit(127 if isinstance(e, FileNotFoundError) else 128, "ContainerCannotRun",
                             f"exec {self.argv[0]!r}: {e.strerror or e}", self.started, now())
            return
        start = process_start_time(self.proc.pid)
        if start is not None:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(f"{self.proc.pid} {start}\n")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def poll(self) -> Exit | None:
        """The exit once the process has ended (and its group has been cleaned up), else None."""
        if self.exit is not None or self.proc is None:
            return self.exit
        code = self.proc.poll()
        if code is None:
            return None
        self._signal(signal.SIGKILL)  # stray children of the process die with it, as in a container
        self.pid_file.unlink(missing_ok=True)
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig else code
        reason = "Completed" if exit_code == 0 else "Error"
        self.exit = Exit(exit_code, reason, self._message(exit_code), self.started, now(), sig)
        return self.exit

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _message(self, code: int) -> str:
        try:
            data = self.message_file.read_bytes()[:MAX_MESSAGE]
        except OSError:
            data = b""
        if not data.strip() and code != 0 and self.fallback_to_logs:
            try:
                with open(self.log, "rb") as f:
                    f.seek(0, os.SEEK_END)
                    f.seek(max(0, f.tell() - 64 * 1024))
                    tail = b"\n".join(f.read().splitlines()[-LOG_TAIL_LINES:])
                data = tail[-LOG_TAIL_BYTES:]
            except OSError:
                data = b""
        return data.decode("utf-8", "replace")
