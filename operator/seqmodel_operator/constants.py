"""Names shared by the CRDs, the rendered Jobs and the handlers: one place each."""

GROUP = "seqmodel.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "seqmodel"

JOB_KIND, JOB_PLURAL, JOB_SHORT = "SeqTrainingJob", "seqtrainingjobs", "stj"
SWEEP_KIND, SWEEP_PLURAL, SWEEP_SHORT = "SeqSweep", "seqsweeps", "sweep"

# Labels on every child Job and pod; the parent's UID selects its children.
LABEL_PARENT = f"{GROUP}/job"  # the SeqTrainingJob's name
LABEL_PARENT_UID = f"{GROUP}/job-uid"
LABEL_REPLICATE = f"{GROUP}/replicate"
LABEL_VERSION = f"{GROUP}/version"
LABEL_CANONICAL = f"{GROUP}/canonical-digest"  # canonical names are too long and too free for labels
ANNOTATION_CANONICAL = f"{GROUP}/canonical-name"
ANNOTATION_OUTPUT = f"{GROUP}/output-path"
# Labels on a sweep's trials (SeqTrainingJobs named <sweep>-<index>).
LABEL_SWEEP = f"{GROUP}/sweep"
LABEL_SWEEP_UID = f"{GROUP}/sweep-uid"
LABEL_TRIAL = f"{GROUP}/trial"
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

# The longest SeqTrainingJob name: child Job names add `-<replicate>-v<version>` and must stay
# valid label values (63 characters), because the Job controller labels pods with them.
MAX_NAME_CHARS = 45
# Trials of one sweep, and so the longest sweep name: `<sweep>-<index>` is a job name.
MAX_TRIALS = 100_000
MAX_SWEEP_NAME_CHARS = MAX_NAME_CHARS - len(f"-{MAX_TRIALS - 1}")
MAX_FAILURES_SHOWN = 5  # failed trials listed in a sweep's status (the count has them all)

# hparams the operator sets itself from other spec fields; users cannot put them in spec.hparams.
OPERATOR_OWNED_HPARAMS = (
    "mode",  # spec.mode
    "default_root_dir",  # the versioned output path
    "load_checkpoint_path",  # spec.checkpoint
    "resume_from_checkpoint",  # spec.checkpoint, and automatic on retries
    "load_encoder_from_checkpoint",  # spec.checkpoint
    "num_nodes",  # one pod per replicate: multi-node runs are not supported yet
    "data_root",  # where spec.data is staged: ./data in the pod's scratch directory
)

# Exit codes of the pod's steps (seqmodel.run and seqmodel.job.pod) that no retry can fix.
EXIT_USER_ERROR = 2
EXIT_VERSION_TAKEN = 3

# Condition types and reasons.
COND_SUCCEEDED = "Succeeded"  # True: finished well; False: failed; Unknown: still going
COND_READY = "Ready"  # the child Jobs exist as the spec says
COND_SUSPENDED = "Suspended"
