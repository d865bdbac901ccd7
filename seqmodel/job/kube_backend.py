"""backend="kubernetes": a job is a SeqTrainingJob; the operator names its versions and runs its pods.

Works against `KubeApi`'s methods (seqmodel.job.kubeapi, the only module importing the Kubernetes client),
so it is tested with a fake. The canonical name and versions are the operator's (status.canonicalName,
status.replicates[i].version and outputPath): submit() waits until they are there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from seqmodel import contract
from seqmodel.job import spec as S
from seqmodel.job.defaults import JobConfig
from seqmodel.job.kubeapi import KubeApi, KubeError, Target
from seqmodel.job.status import FAILED, JobFailed, JobStatus, Placed, WaitTimeout, from_stj

TRAINER_CONTAINER = "trainer"
# SeqTrainingJob spec fields that JobConfig has settings for: `spec` may not set them a second time.
SETTINGS_FIELDS = {"mode": "mode", "hparams": "hparams", "componentHparams": "hparams", "image": "image",
                   "data": "data", "output": "output", "resources": "resources", "replicates": "replicates",
                   "checkpoint": "checkpoint", "backoffLimit": "backoff_limit"}


def job_spec(hparams: Mapping[str, Any], config: JobConfig) -> dict[str, Any]:
    """The SeqTrainingJob spec of checked hparams under `config`: built-in hparams in `hparams`, a custom
    component's own in `componentHparams`, the settings in their fields, `config.spec` as it is."""
    clash = sorted(set(config.spec) & set(SETTINGS_FIELDS))
    if clash:
        raise S.JobSpecError(f"spec.{clash[0]}: set it with the {SETTINGS_FIELDS[clash[0]]} setting instead")
    builtin, component = S.split_component_hparams(hparams)
    spec: dict[str, Any] = {"mode": config.mode, "hparams": builtin, "replicates": config.replicates}
    optional = {"componentHparams": component or None, "image": config.image, "data": config.data,
                "output": dict(config.output) or None, "resources": config.resources,
                "checkpoint": S.checked_checkpoint(config.mode, config.checkpoint),
                "backoffLimit": config.backoff_limit}
    spec.update({k: v for k, v in optional.items() if v is not None})
    spec.update(config.spec)
    return spec


def replicates_placed(obj: Mapping[str, Any], output_dir: Path) -> Optional[list[Placed]]:
    """Every replicate's version and directory once the operator has named them all, else None."""
    status, wanted = obj.get("status") or {}, int((obj.get("spec") or {}).get("replicates", 1))
    entries = [r for r in status.get("replicates") or [] if r.get("outputPath") and r.get("version") is not None]
    if not status.get("canonicalName") or len(entries) < wanted:
        return None
    return [Placed(int(r.get("index", i)), int(r["version"]), output_dir / r["outputPath"])
            for i, r in enumerate(sorted(entries, key=lambda r: r.get("index", 0)))]


class KubeBackend:
    """One SeqTrainingJob: created by start(), named by the operator, read back for status and logs."""

    name = "kubernetes"
    poll = 0.5  # seconds between reads while waiting for the operator to name the versions

    def __init__(self, job_name: str, hparams: Mapping[str, Any], config: JobConfig,
                 api: Optional[KubeApi] = None, spec: Optional[Mapping[str, Any]] = None) -> None:
        self.job_name, self.config = job_name, config
        self.spec = dict(spec) if spec is not None else job_spec(hparams, config)
        self.target = Target(config, api)
        self.canonical: Optional[str] = None
        self.placed: list[Placed] = []

    @property
    def api(self) -> KubeApi:
        return self.target.api

    @property
    def namespace(self) -> str:
        return self.target.namespace

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir).expanduser().resolve()

    def get(self) -> dict[str, Any]:
        obj = self.api.get(contract.JOB_PLURAL, self.namespace, self.job_name)
        if obj is None:
            raise KubeError(f"SeqTrainingJob {self.namespace}/{self.job_name} no longer exists")
        return obj

    def start(self) -> None:
        self.api.create(contract.JOB_PLURAL, self.namespace, S.job_body(self.job_name, self.namespace, self.spec))

    def await_placed(self, timeout: Optional[float] = None,
                     sleep: Callable[[float], None] = time.sleep) -> list[Placed]:
        """Wait until the operator has named the job's canonical name and versions (or failed it)."""
        timeout = self.config.assign_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            obj = self.get()
            self.note_placed(obj)
            if self.placed:
                return self.placed
            status = from_stj(obj, self.output_dir)
            if status.phase == FAILED:
                raise JobFailed(status)
            if time.monotonic() >= deadline:
                why = f": {status.message}" if status.message else ""
                raise WaitTimeout(f"SeqTrainingJob {self.namespace}/{self.job_name} has no versions after "
                                  f"{timeout:.0f} s (phase {status.phase}{why}); is the operator running and "
                                  f"watching namespace {self.namespace}?")
            sleep(self.poll)

    def status(self) -> JobStatus:
        obj = self.get()
        self.note_placed(obj)
        return from_stj(obj, self.output_dir)

    def note_placed(self, obj: Mapping[str, Any]) -> None:
        """Remember the canonical name and versions once the object has them (a handle on a trial may be
        made before the operator named it)."""
        placed = replicates_placed(obj, self.output_dir) if not self.placed else None
        if placed is not None:
            self.canonical, self.placed = obj["status"]["canonicalName"], placed

    def outputs(self) -> list[Path]:
        if not self.placed:
            self.note_placed(self.get())
        return [p.output for p in self.placed]

    def logs(self, replicate: int) -> str:
        """The trainer's log of the replicate's newest pod, as `kubectl logs` serves it."""
        pods = self.api.pods(self.namespace, {contract.LABEL_JOB: self.job_name, contract.LABEL_REPLICATE: str(replicate)})
        if not pods:
            return ""
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")
        return self.api.pod_log(self.namespace, pod["metadata"]["name"], TRAINER_CONTAINER)

    def cancel(self) -> None:
        """Delete the SeqTrainingJob (its Jobs and pods go with it; its outputs stay on the claim)."""
        self.api.delete(contract.JOB_PLURAL, self.namespace, self.job_name)
