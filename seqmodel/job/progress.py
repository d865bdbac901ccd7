"""A one-line progress bar on stderr for wait(): no dependency, so the job API stays installable without
the training stack (tqdm comes with Lightning, which a notebook that only submits jobs need not have).

On a terminal or in Jupyter (whose stderr is not a TTY but honours carriage returns) the line is redrawn in
place; elsewhere (a log file, CI) a line is printed only when its text changes.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO, TypeVar

WIDTH = 20


def _redraws(stream: TextIO) -> bool:
    return "ipykernel" in sys.modules or (hasattr(stream, "isatty") and stream.isatty())


def render(label: str, done: int, total: int, state: str, elapsed: float) -> str:
    """`label [######--------------] 1/3 Running 01:05`"""
    filled = WIDTH * done // total if total else 0
    minutes, seconds = divmod(int(elapsed), 60)
    return f"{label} [{'#' * filled}{'-' * (WIDTH - filled)}] {done}/{total} {state} {minutes:02d}:{seconds:02d}"


class Progress:
    """`with Progress("job x", total=2) as bar: bar.update(done, state)`."""

    def __init__(self, label: str, total: int, stream: Optional[TextIO] = None, enabled: bool = True) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.stream = stream or sys.stderr
        self.redraw = _redraws(self.stream)
        self.start = time.monotonic()
        self.last = ""  # the text without the time, to print only changes when not redrawing

    def update(self, done: int, state: str) -> None:
        if not self.enabled:
            return
        line = render(self.label, done, self.total, state, time.monotonic() - self.start)
        if self.redraw:
            self.stream.write("\r" + line)
        elif line.rsplit(" ", 1)[0] != self.last:
            self.stream.write(line + "\n")
        self.last = line.rsplit(" ", 1)[0]
        self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and self.redraw and self.last:
            self.stream.write("\n")
            self.stream.flush()


T = TypeVar("T")


def follow(fetch: Callable[[], T], *, label: str, count: Callable[[T], tuple[int, int, str, bool]],
           timeout: Optional[float], poll: float, progress: bool, what: str) -> T:
    """Call `fetch` every `poll` s until `count(result)` (done, total, state, finished) says finished, with
    a progress bar; WaitTimeout naming `what` and its state after `timeout` s (None: no limit)."""
    from seqmodel.job.status import WaitTimeout

    deadline = None if timeout is None else time.monotonic() + timeout
    with Progress(label, total=0, enabled=progress) as bar:
        while True:
            result = fetch()
            done, bar.total, state, finished = count(result)
            bar.update(done, state)
            if finished:
                return result
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"{what} is still {state} after {timeout:.0f} s; wait() again to go on waiting")
            time.sleep(poll)
