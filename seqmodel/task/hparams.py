"""Task hparams: which task runs, its objective and its optimizer."""

from seqmodel.hparam import Hparam, HparamGroup

HPARAMS = HparamGroup(
    "task",
    [
        Hparam("task", "ptmask", str, "ptmask: masked-token pretraining; finetune: multi-label "
               "classification of labelled intervals", "task", choices=("ptmask", "finetune")),
        Hparam("lr", 1e-3, float, "peak learning rate (AdamW)", "lr", minimum=0.0),
        Hparam("weight_decay", 0.01, float, "AdamW weight decay", "wd", minimum=0.0),
        Hparam("warmup_steps", 100, int, "linear learning-rate warmup steps", "wu", minimum=0),
        Hparam("mask_prop", 0.12, float, "ptmask: share of positions replaced by the mask token",
               "mask", minimum=0.0, maximum=1.0),
        Hparam("random_prop", 0.015, float, "ptmask: share of positions replaced by a random base",
               "rand", minimum=0.0, maximum=1.0),
        Hparam("keep_prop", 0.015, float, "ptmask: share of positions kept but still predicted",
               "keep", minimum=0.0, maximum=1.0),
    ],
)
