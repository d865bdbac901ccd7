"""A job's status in one shape for both backends: the SeqTrainingJob status's, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from seqmodel.contract import FAILED, PENDING, RUNNING, SUCCEEDED, TERMINAL

__all__ = ["FAILED", "PENDING", "RUNNING", "SUCCEEDED", "JobFailed", "JobStatus", "Placed", "ReplicateStatus",
           "WaitTimeout", "from_stj"]


@dataclass(frozen=True)
class Placed:
    """A submitted replicate: the version it was given and its directory on this machine."""

    replicate: int
    version: int
    output: Path


@dataclass(frozen=True)
class ReplicateStatus:
    index: int
    version: Optional[int]
    output: Optional[Path]  # its version directory on this machine
    phase: str
    metrics: dict[str, Optional[float]] = field(default_factory=dict)
    message: Optional[str] = None


@dataclass(frozen=True)
class JobStatus:
    name: str
    backend: str
    phase: str
    canonical: Optional[str]
    replicates: tuple[ReplicateStatus, ...] = ()
    metrics: dict[str, Optional[float]] = field(default_factory=dict)  # mean over succeeded replicates
    message: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL

    @property
    def finished(self) -> int:
        """Replicates that ended, well or not: the progress bar's count."""
        return sum(r.phase in TERMINAL for r in self.replicates)


class WaitTimeout(TimeoutError):
    """wait() ran out of time; the job or sweep goes on."""


class JobFailed(RuntimeError):
    """wait() saw the job fail; `status` says why."""

    def __init__(self, status: JobStatus) -> None:
        super().__init__(f"job {status.name} failed: {status.message or 'see status() and logs()'}")
        self.status = status


def from_stj(obj: Mapping[str, Any], output_dir: Path) -> JobStatus:
    """The status of a SeqTrainingJob object; replicate outputs are claim-relative, so they sit under
    `output_dir`, where the output claim is mounted on this machine."""
    status = obj.get("status") or {}
    replicates = tuple(
        ReplicateStatus(index=int(r.get("index", i)), version=r.get("version"),
                        output=output_dir / r["outputPath"] if r.get("outputPath") else None,
                        phase=r.get("phase") or PENDING, metrics=dict(r.get("metrics") or {}),
                        message=r.get("message"))
        for i, r in enumerate(status.get("replicates") or []))
    return JobStatus(name=obj["metadata"]["name"], backend="kubernetes", phase=status.get("phase") or PENDING,
                     canonical=status.get("canonicalName"), replicates=replicates,
                     metrics=dict(status.get("metrics") or {}), message=status.get("message"))
