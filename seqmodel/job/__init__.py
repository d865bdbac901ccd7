"""Submitting runs from Python: `Job` (backends "kubernetes" and "local"), `search` (grid, random,
submit_all, sweep) and the versioned output layout shared by every backend. Torch-free.

    from seqmodel.job import Job, search
    job = Job({"lr": 2e-3}, backend="local").submit()
    job.wait(); job.outputs()

The names below load on first use (PEP 562): the pod steps (`python -m seqmodel.job.pod`, run in every
training pod) import this package too and need none of it, and nothing here imports the Kubernetes client
until a kubernetes job or sweep talks to the API server (seqmodel.job.kubeapi).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Job": "api", "JobStateError": "api",
    "JobConfig": "config", "JobConfigError": "config", "load_config": "config",
    "JobSpecError": "spec",
    "JobStatus": "status", "ReplicateStatus": "status", "JobFailed": "status", "WaitTimeout": "status",
    "KubeError": "kubeapi",
    "Sweep": "sweep", "SweepStatus": "sweep", "SweepFailed": "sweep", "Trial": "sweep",
    "search": None, "joblog": None,
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'seqmodel.job' has no attribute {name!r}")
    module = importlib.import_module(f"seqmodel.job.{_EXPORTS[name] or name}")
    value = module if _EXPORTS[name] is None else getattr(module, name)
    globals()[name] = value
    return value
