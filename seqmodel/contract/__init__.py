"""What a SeqTrainingJob means, stated once: the operator, the local backend, the pod's entry point and the
notebook client import these rules, and none of them restates one.

Pure and cheap to import (no torch, no Kubernetes client): the operator image has neither torch nor the
training code's dependencies. Here: the API's names and labels, the name rule, the hparams a job sets
itself and how the rest are checked, the checkpoint flags, each replicate's seed and `seqmodel.run`
arguments, the exit codes no retry can fix, and how replicates add up to the job's phase and metrics.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Optional, Sequence

from seqmodel.errors import UserError
from seqmodel.hparam import Hparam, HparamGroup, Hparams, format_value, registry

# --- the API -----------------------------------------------------------------------------------------------
GROUP, VERSION = "seqmodel.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_KIND, JOB_PLURAL = "SeqTrainingJob", "seqtrainingjobs"
SWEEP_KIND, SWEEP_PLURAL = "SeqSweep", "seqsweeps"
LABEL_JOB = f"{GROUP}/job"  # on a job's child Jobs and pods: the SeqTrainingJob's name
LABEL_REPLICATE = f"{GROUP}/replicate"
LABEL_SWEEP = f"{GROUP}/sweep"  # on a sweep's trials: the SeqSweep's name
LABEL_TRIAL = f"{GROUP}/trial"  # the trial's index
LABEL_RUNG = f"{GROUP}/rung"  # on an ASHA sweep's runs: the rung (0 on the first)

# --- names -------------------------------------------------------------------------------------------------
MAX_JOB_NAME_CHARS = 45  # the CRD's limit: child Job names add `-<replicate>-v<version>`
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ContractError(UserError, ValueError):
    """A job that breaks the contract; the message is one line naming the field."""


def check_name(name: str, what: str = "job", limit: int = MAX_JOB_NAME_CHARS) -> str:
    """A Kubernetes object name the API server will take (local jobs use the same names in their logs)."""
    if not DNS_LABEL.match(name) or len(name) > limit:
        raise ContractError(f"{what} name {name!r}: must be lowercase letters, digits and '-', "
                            f"start and end with a letter or digit, at most {limit} characters")
    return name


# --- hparams and checkpoints -------------------------------------------------------------------------------
MODES = ("train", "test")
# The seqmodel.run flags that start a run from a checkpoint, in the order a run looks for them.
CHECKPOINT_FLAGS = ("resume_from_checkpoint", "load_checkpoint_path", "load_encoder_from_checkpoint")
# spec.checkpoint.use -> the flag it sets.
CHECKPOINT_USES = {"weights": "load_checkpoint_path", "encoder": "load_encoder_from_checkpoint",
                   "resume": "resume_from_checkpoint"}
# Set from the job's other fields on both backends, so never in its hparams.
JOB_OWNED_HPARAMS = (
    "mode",  # spec.mode
    "default_root_dir",  # the versioned output path
    *CHECKPOINT_FLAGS,  # spec.checkpoint, and resume on retries
    "num_nodes",  # one pod per replicate: multi-node runs are not supported yet
    "data_root",  # where spec.data is staged: ./data in the pod's scratch directory
)


def checkpoint_use(mode: str, checkpoint: Mapping[str, object]) -> str:
    """weights in test mode, encoder in train mode, unless the checkpoint says."""
    return str(checkpoint.get("use") or ("weights" if mode == "test" else "encoder"))


def checked_hparams(hparams: Mapping[str, Any], registry: Hparams, field: str) -> dict[str, Any]:
    """The user's hparams (at `field`: "hparams", "spec.hparams"), typed by `registry`; unknown names, wrong
    types and names the job sets itself are refused naming the hparam."""
    for name in hparams:
        if name in JOB_OWNED_HPARAMS:
            raise ContractError(f"{field}.{name}: set by the job (mode, checkpoint, output, data), not in hparams")
    try:
        full = registry.parse_dict(dict(hparams), where=f"{field}: ")
    except UserError as err:
        raise ContractError(str(err)) from None
    return {name: full[name] for name in hparams}


# --- the canonical name -----------------------------------------------------------------------------------
WHOLE_MODEL_FLAGS = ("resume_from_checkpoint", "load_checkpoint_path")  # a run that learns with its source's hparams


def named_hparams(own: Mapping[str, Any], source: Mapping[str, Any] | None = None,
                  flag: Optional[str] = None) -> dict[str, Any]:
    """The hparams that name a run: those it sets (hparams, component hparams, config files), over those
    that named its source when it loads the whole model (`flag`): predictions of a model are the next
    version of that model's name. A run that loads only an encoder is named by its own."""
    inherited = dict(source or {}) if flag in WHOLE_MODEL_FLAGS else {}
    return {k: v for k, v in {**inherited, **own}.items() if k not in JOB_OWNED_HPARAMS}


def saved_named(hparams: Mapping[str, Any], names: Optional[Iterable[str]]) -> dict[str, Any]:
    """The hparams that named a saved run, from its full `hparams` and the names its record lists. Runs
    of seqmodel before 1.4 recorded none: they are named by their built-in hparams that differ from the
    defaults (their custom components' names cannot be told from the defaults without their code)."""
    if names is not None:
        return {name: hparams[name] for name in names if name in hparams}
    builtin = registry()
    return builtin.tracked_changes({k: v for k, v in hparams.items() if k in builtin})


def _with_stand_ins(custom: Iterable[str], values: Mapping[str, Any]) -> Hparams:
    """The built-in registry plus a stand-in for each custom component hparam: no default (any value it is
    set to names the run) and its full name as short name."""
    stand_ins = [Hparam(name, None, type(values[name]) if values[name] is not None else str,
                        "custom component hparam", name, nullable=True) for name in sorted(custom)]
    if not stand_ins:
        return registry()
    try:
        return registry().with_groups([HparamGroup("componentHparams", stand_ins)])
    except UserError as err:
        raise ContractError(f"componentHparams: {err}") from None


def canonical_name(named: Mapping[str, Any]) -> str:
    """The run's name, for humans and paths (`runs/<name>/version_<n>`), from its named hparams: built-in
    tracked hparams that differ from their defaults, by short name; custom component hparams, by full name
    whatever their value. Whoever names a job must be able to: the operator cannot import a custom
    component, so neither its short names nor its defaults can enter the name."""
    named = {k: v for k, v in named.items() if k not in JOB_OWNED_HPARAMS}
    custom = [name for name in named if name not in registry()]
    # The operator sees a custom value as written (2), the run as its type makes it (2.0): one text for both.
    named.update({name: int(named[name]) for name in custom
                  if isinstance(named[name], float) and named[name].is_integer()})
    return _with_stand_ins(custom, named).canonical_name(named)


# --- one replicate's run -----------------------------------------------------------------------------------
def replicate_seed(version: int, hparams: Mapping[str, Any], pinned_elsewhere: bool = False) -> Optional[int]:
    """Replicates are independent samples: each version its own seed, unless the user pinned one. Pinned in
    the hparams: that seed; in a config file (`pinned_elsewhere`): None, so that no --seed overrides it."""
    if "seed" in hparams:
        return int(hparams["seed"])
    return None if pinned_elsewhere else version


def run_args(hparams: Mapping[str, Any], *, mode: str, root_dir: str, seed: Optional[int],
             data_root: Optional[str] = None, checkpoint: Optional[tuple[str, str]] = None,
             config: Optional[str] = None, component_hparams: Mapping[str, Any] | None = None) -> list[str]:
    """`python -m seqmodel.run` arguments of one replicate, in one order on every backend: the config file,
    the user's hparams, custom components' hparams, then what the job owns. `checkpoint` is (flag, file)."""
    args = [f"--config={config}"] if config else []
    args += [f"--{name}={format_value(value)}" for name, value in sorted(hparams.items()) if name != "seed"]
    args += [f"--{name}={format_value(value)}" for name, value in sorted((component_hparams or {}).items())]
    if data_root is not None:
        args.append(f"--data_root={data_root}")
    args += [f"--mode={mode}", f"--default_root_dir={root_dir}"]
    if seed is not None:
        args.append(f"--seed={seed}")
    if checkpoint is not None:
        args.append(f"--{checkpoint[0]}={checkpoint[1]}")
    return args


# --- how a run reports its end -----------------------------------------------------------------------------
TERMINATION_LOG_ENV = "SEQMODEL_TERMINATION_LOG"  # where a run writes its JSON summary (the pod's termination message)

# --- the pod's exit codes that no retry can fix -------------------------------------------------------------
EXIT_USER_ERROR = 2  # bad arguments or data: the message names them
EXIT_VERSION_TAKEN = 3  # the version directory belongs to another run: the operator picks the next version
# --- and the one of a run SIGTERM stopped (seqmodel.errors.Stopped): retried; training resumes its last.ckpt
EXIT_STOPPED = 143  # 128 + 15, as a shell reports a process SIGTERM ended

# --- phases and metrics of a job of replicates ---------------------------------------------------------------
PENDING, RUNNING, SUCCEEDED, FAILED, SUSPENDED = "Pending", "Running", "Succeeded", "Failed", "Suspended"
TERMINAL = (SUCCEEDED, FAILED)


def job_phase(phases: Sequence[str], replicates: int, suspended: bool = False) -> str:
    """The job's phase from its replicates' (those that exist so far, of `replicates`): Failed as soon as
    one has failed (the others run on, and their outputs stay), Succeeded when all have, Suspended while
    the job is, Running once one has started."""
    if FAILED in phases:
        return FAILED
    if len(phases) == replicates and all(p == SUCCEEDED for p in phases):
        return SUCCEEDED
    if suspended:
        return SUSPENDED
    return RUNNING if RUNNING in phases or SUCCEEDED in phases else PENDING


def mean_metrics(replicates: Iterable[tuple[str, Mapping[str, Optional[float]]]]) -> dict[str, Optional[float]]:
    """The job's metrics from its replicates' (phase, metrics): the mean of each over the succeeded ones,
    None where one of them has no value."""
    done = [metrics for phase, metrics in replicates if phase == SUCCEEDED]
    names = sorted({name for metrics in done for name in metrics})
    out: dict[str, Optional[float]] = {}
    for name in names:
        values = [metrics.get(name) for metrics in done]
        out[name] = None if any(v is None for v in values) else sum(values) / len(values)  # type: ignore[misc]
    return out
