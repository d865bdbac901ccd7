"""Names shared by the CRDs, the rendered Jobs and the handlers: one place each. Those every party uses
(seqmodel.contract, seqmodel.contract.space) are defined there: seqmodel cannot import the operator."""

from seqmodel.contract import (API_VERSION, EXIT_USER_ERROR, EXIT_VERSION_TAKEN, GROUP, JOB_KIND, JOB_OWNED_HPARAMS,
                               JOB_PLURAL, LABEL_JOB, LABEL_REPLICATE, LABEL_RUNG, LABEL_SWEEP, LABEL_TRIAL,
                               MAX_JOB_NAME_CHARS, SWEEP_KIND, SWEEP_PLURAL, VERSION)
from seqmodel.contract.conditions import COND_READY, COND_SUCCEEDED, COND_SUSPENDED
from seqmodel.contract.space import MAX_TRIALS
from seqmodel.contract.sweep_status import MAX_FAILURES_SHOWN

__all__ = ["API_VERSION", "COND_READY", "COND_SUCCEEDED", "COND_SUSPENDED", "EXIT_USER_ERROR", "EXIT_VERSION_TAKEN",
           "GROUP", "JOB_KIND", "JOB_OWNED_HPARAMS", "JOB_PLURAL", "LABEL_REPLICATE", "LABEL_RUNG", "LABEL_SWEEP",
           "LABEL_TRIAL", "MAX_FAILURES_SHOWN", "MAX_TRIALS", "SWEEP_KIND", "SWEEP_PLURAL", "VERSION"]

CATEGORY = "seqmodel"
JOB_SHORT, SWEEP_SHORT = "stj", "sweep"

# Labels on every child Job and pod; the parent's UID selects its children.
LABEL_PARENT = LABEL_JOB  # the SeqTrainingJob's name
LABEL_PARENT_UID = f"{GROUP}/job-uid"
LABEL_VERSION = f"{GROUP}/version"
LABEL_CANONICAL = f"{GROUP}/canonical-digest"  # canonical names are too long and too free for labels
ANNOTATION_CANONICAL = f"{GROUP}/canonical-name"
ANNOTATION_OUTPUT = f"{GROUP}/output-path"
# Labels on a sweep's trials (SeqTrainingJobs named <sweep>-<index>), besides LABEL_SWEEP and LABEL_TRIAL.
LABEL_SWEEP_UID = f"{GROUP}/sweep-uid"
ANNOTATION_PARAMS = f"{GROUP}/params"  # the trial's searched hparams, as JSON: what TPE and the status read
ANNOTATION_CONDITIONED = f"{GROUP}/conditioned-on"  # TPE: the finished trials its suggestion saw (index ranges)
ANNOTATION_PROMOTED_AS = f"{GROUP}/promoted-as"  # ASHA: where a promoted trial stood at the rung below, then
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

# The longest SeqTrainingJob name: child Job names add `-<replicate>-v<version>` and must stay
# valid label values (63 characters), because the Job controller labels pods with them.
MAX_NAME_CHARS = MAX_JOB_NAME_CHARS
# The longest sweep name: `<sweep>-<index>` is a job name, for up to MAX_TRIALS trials.
MAX_SWEEP_NAME_CHARS = MAX_NAME_CHARS - len(f"-{MAX_TRIALS - 1}")

# Condition types and reasons.
