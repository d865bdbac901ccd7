"""Run and Lightning Trainer settings. Torch-free: the operator validates jobs against them.

Settings that change what is learned (precision, gradient accumulation and clipping) are tracked, so
they enter canonical names; infrastructure (paths, devices, durations, logging) is not.
"""

from seqmodel.hparam import Hparam, HparamGroup

HPARAMS = HparamGroup(
    "trainer",
    [
        Hparam("mode", "train", str, "train fits the model; test writes predictions", "mode",
               tracked=False, choices=("train", "test")),
        Hparam("predict", "task", str, "test mode's output: task (what the task predicts: each window's "
               "masked-token losses, or each interval's label probabilities), embeddings (the encoder's "
               "mean-pooled embedding of each window: embeddings.npy and embeddings.tsv) or variant_effect "
               "(each SNV of hparam variants scored by a masked-token model: log p(alt) - log p(ref) with the "
               "variant masked, variant_effects.tsv)", "pred", tracked=False,
               choices=("task", "embeddings", "variant_effect")),
        Hparam("embed_positions", False, bool, "predict=embeddings: also every position's embedding "
               "(embeddings_positions.npy, windows x seq_len x d_model)", "embpos", tracked=False),
        Hparam("shards", 1, int, "test mode: split the test windows (or the variants) into this many contiguous, "
               "balanced slices, each predicted by its own process; in shard order their outputs are one "
               "process's row for row", "shards", tracked=False, minimum=1),
        Hparam("shard", 0, int, "test mode: the slice this process predicts, 0 to shards - 1", "shard",
               tracked=False, minimum=0),
        Hparam("default_root_dir", "out", str, "output directory of the run", "out", tracked=False),
        Hparam("max_steps", -1, int, "stop after this many optimizer steps (-1: no limit)", "ms",
               tracked=False, minimum=-1),
        Hparam("max_epochs", 10, int, "stop after this many epochs (-1: no limit)", "me",
               tracked=False, minimum=-1),
        Hparam("accelerator", "auto", str, "Lightning accelerator", "acc", tracked=False,
               choices=("auto", "cpu", "gpu", "cuda", "mps")),
        Hparam("devices", "auto", str, "devices per node: a count, a list like '0,1', or auto", "dev",
               tracked=False),
        Hparam("num_nodes", 1, int, "nodes for distributed training", "nn", tracked=False, minimum=1),
        Hparam("val_check_interval", 1.0, float,
               "validate every this fraction of an epoch (<= 1) or this many batches (> 1)", "vci",
               tracked=False, minimum=0.0),
        Hparam("limit_train_batches", 1.0, float, "fraction (<= 1) or count (> 1) of train batches",
               "ltb", tracked=False, minimum=0.0),
        Hparam("limit_val_batches", 1.0, float, "fraction (<= 1) or count (> 1) of valid batches",
               "lvb", tracked=False, minimum=0.0),
        Hparam("limit_test_batches", 1.0, float, "fraction (<= 1) or count (> 1) of test batches (also of "
               "embeddings and variant_effect predictions)",
               "lteb", tracked=False, minimum=0.0),
        Hparam("log_every_n_steps", 50, int, "log training metrics every this many steps", "log",
               tracked=False, minimum=1),
        Hparam("seed", 0, int, "random seed for weights, sampling and masking", "seed", tracked=False),
        Hparam("precision", "32-true", str, "Lightning precision: 32-true, bf16-mixed, 16-mixed", "prec",
               choices=("32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true")),
        Hparam("accumulate_grad_batches", 1, int, "batches per optimizer step", "agb", minimum=1),
        Hparam("gradient_clip_val", 1.0, float, "clip gradient norm to this (0: no clipping)", "gc",
               minimum=0.0),
        Hparam("compile", False, bool, "torch.compile the model", "comp", tracked=False),
        Hparam("load_checkpoint_path", None, str, "initialise model weights from this checkpoint",
               "lcp", tracked=False, nullable=True),
        Hparam("resume_from_checkpoint", None, str,
               "resume trainer state from this checkpoint; 'last' is the newest in the output dir",
               "rfc", tracked=False, nullable=True),
        Hparam("load_encoder_from_checkpoint", None, str,
               "initialise the encoder from a pretraining checkpoint", "lec", tracked=False,
               nullable=True),
    ],
)
