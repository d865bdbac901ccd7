"""Where and how jobs run: a small YAML file plus keyword arguments, so a notebook says only what differs.

The file is $SEQMODEL_JOB_CONFIG, else ~/.config/seqmodel/job.yaml (or $XDG_CONFIG_HOME/seqmodel/job.yaml)
when it exists. Its keys are JobConfig's fields; keyword arguments override them. Relative paths in the
file (`output_dir`, `log_path`, `data_root`, `kubeconfig`) are relative to the file, so a
config next to a project works from any working directory.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from seqmodel.errors import UserError

CONFIG_ENV = "SEQMODEL_JOB_CONFIG"
PATH_FIELDS = ("output_dir", "log_path", "data_root", "kubeconfig")
LOG_NAME = "jobs.jsonl"


class JobConfigError(UserError, ValueError):
    """A config file or keyword argument that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class JobConfig:
    """Settings of a job other than its hparams. Mapping fields take the SeqTrainingJob spec's shape
    (`kubectl explain stj.spec`), so what works in a manifest works here."""

    namespace: Optional[str] = None
    """kubernetes: the namespace; None takes the kubeconfig context's (in a pod: the pod's), else default."""
    image: Optional[str] = None
    """kubernetes: the trainer image; None takes the operator's."""
    data: Optional[dict[str, Any]] = None
    """kubernetes: spec.data, e.g. {claim: seqmodel-data, types: [genome]}; local runs use data_root."""
    output: dict[str, Any] = field(default_factory=dict)
    """spec.output: {claim, root}; `root` (default runs) is the directory under output_dir on both backends."""
    output_dir: str = "."
    """Where outputs are on this machine: the local backend writes `<output_dir>/<root>/<canonical>/
    version_<n>`; for kubernetes it is where the output claim is mounted, so outputs() finds its files."""
    log_path: Optional[str] = None
    """JSON lines, one per submitted replicate; None is `<output_dir>/<root>/jobs.jsonl`, beside the runs."""
    resources: Optional[dict[str, Any]] = None
    """kubernetes: spec.resources {gpus, gpuType, cpu, memory}; ignored by local runs."""
    replicates: int = 1
    """Independent runs of the same hparams, each its own version (seed = version unless hparams pin one)."""
    mode: str = "train"
    """train fits a model; test writes predictions from `checkpoint`."""
    checkpoint: Optional[dict[str, Any]] = None
    """spec.checkpoint: {fromJob | path, use, file, replicate, eachReplicate}; a local run's `path` is
    relative to output_dir (a file on the output claim, as in a manifest), its `fromJob` a local job in
    the job log."""
    backoff_limit: Optional[int] = None
    """kubernetes: retries of a failed pod, each resuming from its newest checkpoint (None: the CRD's 3)."""
    spec: dict[str, Any] = field(default_factory=dict)
    """kubernetes: more SeqTrainingJob spec fields as they are (configFrom, code, scratch, queueName, ...)."""
    kubeconfig: Optional[str] = None
    """kubernetes: a kubeconfig file; None is $KUBECONFIG, ~/.kube/config, or the pod's service account."""
    context: Optional[str] = None
    """kubernetes: a context of the kubeconfig; None is its current context."""
    data_root: Optional[str] = None
    """local: the data root (hparam data_root) of the run; None keeps seqmodel's default (./data)."""
    python: Optional[str] = None
    """local: the interpreter that runs `python -m seqmodel.run`; None is this one (sys.executable)."""
    assign_timeout: float = 120.0
    """kubernetes: seconds submit() waits for the operator to name the job's versions."""

    @property
    def root(self) -> str:
        return str(self.output.get("root") or "runs")

    @property
    def root_dir(self) -> Path:
        """`<output_dir>/<root>`: the local directory that holds `<canonical>/version_<n>`."""
        return Path(self.output_dir).expanduser().resolve() / self.root

    @property
    def log_file(self) -> Path:
        return Path(self.log_path).expanduser().resolve() if self.log_path else self.root_dir / LOG_NAME


FIELDS = tuple(f.name for f in dataclasses.fields(JobConfig))


def default_config_path() -> Optional[Path]:
    """$SEQMODEL_JOB_CONFIG (which must exist), else the user's config file when there is one."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "seqmodel" / "job.yaml"
    return path if path.is_file() else None


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's settings, relative paths made absolute against the file's directory."""
    if not path.is_file():
        raise JobConfigError(f"job config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise JobConfigError(f"job config {path}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise JobConfigError(f"job config {path}: expected a mapping of settings, got {type(data).__name__}")
    _check_keys(data, str(path))
    for key in PATH_FIELDS:
        if data.get(key) is not None:
            data[key] = str(path.parent / Path(str(data[key])).expanduser())
    return data


def load_config(path: Optional[str | os.PathLike[str]] = None, **overrides: Any) -> JobConfig:
    """The config file (`path`, else the default one, if any) with `overrides` on top; None overrides
    are ignored, so callers can pass their optional arguments straight through."""
    file = Path(path).expanduser() if path is not None else default_config_path()
    settings = read_config_file(file) if file is not None else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    _check_keys(given, "keyword arguments")
    settings.update(given)
    return _checked(JobConfig(**settings), str(file) if file else "keyword arguments")


def _check_keys(data: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise JobConfigError(f"{where}: unknown setting '{unknown[0]}' (settings: {', '.join(FIELDS)})")


def _checked(config: JobConfig, where: str) -> JobConfig:
    for key in ("data", "resources", "checkpoint"):
        value = getattr(config, key)
        if value is not None and not isinstance(value, Mapping):
            raise JobConfigError(f"{where}: {key} must be a mapping, got {value!r}")
    for key in ("output", "spec"):
        if not isinstance(getattr(config, key), Mapping):
            raise JobConfigError(f"{where}: {key} must be a mapping, got {getattr(config, key)!r}")
    if isinstance(config.replicates, bool) or not isinstance(config.replicates, int) or config.replicates < 1:
        raise JobConfigError(f"{where}: replicates must be a whole number >= 1, got {config.replicates!r}")
    return config
