"""Data hparams. Dataset paths are untracked; relative ones resolve against `data_root`."""

from seqmodel.components import builtin_names
from seqmodel.hparam import Hparam, HparamGroup

# The data root's default. `python -m seqmodel.run` uses $SEQMODEL_DATA_ROOT instead when it is set and no
# config file or flag sets data_root (seqmodel.workspace.paths).
DATA_ROOT_DEFAULT = "data"

HPARAMS = HparamGroup(
    "dataset",
    [
        Hparam("dataset", "genome", str,
               "the data module: genome (FASTA + BED windows) or a class as package.module:Class "
               "(a seqmodel.dataset.base.DataModuleBase)", "data", builtins=builtin_names("dataset")),
        Hparam("data_root", DATA_ROOT_DEFAULT, str,
               "directory that relative dataset paths resolve against ($SEQMODEL_DATA_ROOT when set, "
               "else data)", "root", tracked=False),
        Hparam("seq_file", "genome/genome.fa.gz", str,
               "FASTA file(s), plain or gzip/bgzip; several separated by commas", "seq", tracked=False),
        Hparam("train_intervals", "genome/train.bed", str,
               "BED intervals to train on (fine-tuning: BED plus label columns)", "train", tracked=False),
        Hparam("valid_intervals", "genome/valid.bed", str, "BED intervals to validate on",
               "valid", tracked=False),
        Hparam("test_intervals", "genome/test.bed", str, "BED intervals to test on", "test",
               tracked=False),
        Hparam("variants", "genome/variants.vcf", str, "predict=variant_effect: the VCF (plain or bgzip) "
               "whose SNVs are scored; other records are skipped and counted", "vcf", tracked=False),
        Hparam("seq_len", 1000, int, "tokens per sample window", "len", minimum=1),
        Hparam("batch_size", 16, int, "samples per batch per device", "bs", minimum=1),
        Hparam("reverse_complement", True, bool, "augment training windows with the other strand",
               "rc"),
        Hparam("epoch_samples", 0, int,
               "training windows per epoch (0: interval length / seq_len)", "es", tracked=False,
               minimum=0),
        Hparam("num_workers", 0, int, "data loader worker processes", "nw", tracked=False, minimum=0),
        Hparam("cache_dir", None, str,
               "where the encoded genome cache lives (default: $SEQMODEL_CACHE_DIR or the user cache)",
               "cache", tracked=False, nullable=True),
    ],
)
