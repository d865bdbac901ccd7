"""Task hparams: which task runs, its head, its loss and its optimizer."""

from seqmodel.components import builtin_names
from seqmodel.hparam import Hparam, HparamGroup

DECAYS = ("constant", "cosine", "linear")  # the learning rate after the warmup

HPARAMS = HparamGroup(
    "task",
    [
        Hparam("task", "ptmask", str, "ptmask: masked-token pretraining; finetune: multi-label "
               "classification of labelled intervals; or a class as package.module:Class "
               "(a seqmodel.task.base.SeqTask)", "task", builtins=builtin_names("task")),
        Hparam("head", "auto", str, "the task's head: auto (ptmask: masked-token head; finetune: "
               "mean+max pooled multi-label head) or a class as package.module:Class "
               "(a seqmodel.model.base.TokenHead or SequenceHead, as the task needs)", "head",
               builtins=builtin_names("head")),
        Hparam("loss", "auto", str, "the task's loss: auto (ptmask: cross-entropy at masked positions; "
               "finetune: binary cross-entropy) or a class as package.module:Class "
               "(a seqmodel.task.loss.LossBase)", "loss", builtins=builtin_names("loss")),
        Hparam("lr", 2e-3, float, "peak learning rate (AdamW)", "lr", minimum=0.0),
        Hparam("weight_decay", 0.01, float, "AdamW weight decay", "wd", minimum=0.0),
        Hparam("warmup_steps", 100, int, "linear learning-rate warmup steps", "wu", minimum=0),
        Hparam("lr_decay", "constant", str, "the learning rate after the warmup: constant, or a cosine or "
               "linear decay to 0 at the run's last step (max_steps, or the steps of max_epochs)", "decay",
               choices=DECAYS),
        Hparam("mask_prop", 0.24, float, "ptmask: share of positions replaced by the mask token",
               "mask", minimum=0.0, maximum=1.0),
        Hparam("random_prop", 0.03, float, "ptmask: share of positions replaced by a random base",
               "rand", minimum=0.0, maximum=1.0),
        Hparam("keep_prop", 0.03, float, "ptmask: share of positions kept but still predicted",
               "keep", minimum=0.0, maximum=1.0),
        Hparam("repeat_weight", 1.0, float, "ptmask: loss weight of soft-masked (lowercase) positions, the "
               "repeats of a soft-masked genome (GPN uses 0.1); below 1 they are also left out of validation "
               "and test metrics (1: case is ignored)", "rw", minimum=0.0, maximum=1.0),
        Hparam("rc_average", False, bool, "finetune: evaluate (validate and test) each window on both strands "
               "and average the probabilities, so a window and its reverse complement get the same prediction; "
               "predict=variant_effect: average each variant's score over both strands", "rca"),
    ],
)
