"""Write one benchmark's section of BENCHMARKS.md, leaving the other sections as they are.

Each section sits between `<!-- bench:NAME -->` markers so that benchmarks can run one at a time
(`python -m bench NAME`) and update only their own rows.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
_HEADER = (
    "# Benchmarks\n\n"
    "Written by `make bench` (or `.venv/bin/python -m bench NAME` for one section). Figures are medians;\n"
    "targets are ratios against a baseline measured in the same run, because this machine is noisy.\n"
)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of `fn()` over `repeats` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_section(name: str, title: str, command: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) section `name` with `body`, stamped with the command and the date."""
    text = path.read_text() if path.exists() else _HEADER
    stamp = time.strftime("%Y-%m-%d")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Command: `{command}` ({stamp}; {machine()})\n\n{body.strip()}\n<!-- /bench:{name} -->\n"
    )
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
