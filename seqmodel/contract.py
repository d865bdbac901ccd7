"""What a SeqTrainingJob means, stated once: the operator, the local backend, the pod's entry point and the
notebook client import these rules, and none of them restates one.

Pure and cheap to import (no torch, no Kubernetes client): the operator image has neither torch nor the
training code's dependencies. Here: the API's names and labels, the name rule, the hparams a job sets
itself, the checkpoint flags, the exit codes no retry can fix, and how replicates add up to the job's
phase and metrics.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Optional, Sequence

from seqmodel.errors import UserError

# --- the API -----------------------------------------------------------------------------------------------
GROUP, VERSION = "seqmodel.dev", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_KIND, JOB_PLURAL = "SeqTrainingJob", "seqtrainingjobs"
SWEEP_KIND, SWEEP_PLURAL = "SeqSweep", "seqsweeps"
LABEL_JOB = f"{GROUP}/job"  # on a job's child Jobs and pods: the SeqTrainingJob's name
LABEL_REPLICATE = f"{GROUP}/replicate"
LABEL_SWEEP = f"{GROUP}/sweep"  # on a sweep's trials: the SeqSweep's name
LABEL_TRIAL = f"{GROUP}/trial"

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


# --- the pod's exit codes that no retry can fix -------------------------------------------------------------
EXIT_USER_ERROR = 2  # bad arguments or data: the message names them
EXIT_VERSION_TAKEN = 3  # the version directory belongs to another run: the operator picks the next version

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
