"""The operator's configuration: one typed object read from `SEQMODEL_OPERATOR_*` environment variables.

The Helm chart's ConfigMap sets them; every field has a default that works on the local cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from seqmodel import VERSION

PREFIX = "SEQMODEL_OPERATOR_"


@dataclass(frozen=True)
class Settings:
    image: str = f"seqmodel-trainer:{VERSION}"
    """Trainer image for jobs that do not name one."""
    image_pull_policy: str = "IfNotPresent"
    gpu_resource: str = "nvidia.com/gpu"
    """Extended resource that GPUs are requested as (limits only, as device plugins require)."""
    gpu_type_label: str = "nvidia.com/gpu.product"
    """Node label that spec.resources.gpuType selects on (GPU feature discovery sets it)."""
    tolerations: tuple[Mapping[str, Any], ...] = (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)
    """Tolerations of every training pod: GPU nodes are usually tainted. JSON list."""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    """Extra node selector for every training pod (the benchmarks pick kwok nodes with it). JSON object."""
    scratch_storage_class: str | None = None
    """Storage class of local-SSD scratch (a generic ephemeral volume); unset: an emptyDir."""
    scratch_size: str = "10Gi"
    output_claim: str | None = None
    """Output PersistentVolumeClaim of jobs that name none; unset: such jobs fail and say so."""
    run_as_user: int = 1000
    """UID (and GID) of training pods: never root."""
    templates_dir: str | None = None
    """Directory (a mounted ConfigMap) whose templates override the packaged ones, file by file."""
    worker_limit: int = 20
    """Handlers running at once (kopf's thread pool, and the API client's connections): bounds memory
    and API load during bursts."""
    api_qps: float = 200.0
    """API requests per second from the handlers (token bucket); 0 disables the limit. A new job costs
    about 10 requests, so 200/s is ~20 new jobs/s: about what one operator process can handle anyway;
    the bucket keeps a runaway loop from becoming a flood, and the API server's priority and fairness
    settings protect it from everything else."""
    api_burst: int = 400
    sweep_trial_rate: float = 20.0
    """Trials started per second, over all sweeps (token bucket, burst of one second's worth); 0 disables
    the limit. A trial costs a job's ~6 requests, so 20/s stays well inside api_qps."""
    sweep_status_interval: float = 1.0
    """Seconds between two status writes of one sweep that change only its counts (a phase change is
    written at once): a burst of trial events costs a few writes, not one each."""
    watch_timeout: int = 60
    """Seconds a watch may stay silent before kopf reconnects (lost connections are not always seen)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Fields from `SEQMODEL_OPERATOR_<FIELD>`; a bad value is a one-line error naming the variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = PREFIX + f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            try:
                values[f.name] = _convert(f.type, raw)
            except ValueError as err:
                raise ValueError(f"{key}={raw!r}: {err}") from None
        return cls(**values)


def _convert(type_: str, raw: str) -> Any:
    if type_.startswith("tuple"):
        value = json.loads(raw)
        if not isinstance(value, list):
            raise ValueError("expected a JSON list")
        return tuple(value)
    if type_.startswith("Mapping"):
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    if type_ == "int":
        return int(raw)
    if type_ == "float":
        return float(raw)
    return raw or None if "None" in type_ else raw
