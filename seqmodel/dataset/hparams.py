"""Data hparams. Paths are relative to the working directory and untracked."""

from seqmodel.hparam import Hparam, HparamGroup

HPARAMS = HparamGroup(
    "dataset",
    [
        Hparam("seq_file", "data/genome/genome.fa.gz", str,
               "FASTA file(s), plain or gzip/bgzip; several separated by commas", "seq", tracked=False),
        Hparam("train_intervals", "data/genome/train.bed", str,
               "BED intervals to train on (fine-tuning: BED plus label columns)", "train", tracked=False),
        Hparam("valid_intervals", "data/genome/valid.bed", str, "BED intervals to validate on",
               "valid", tracked=False),
        Hparam("test_intervals", "data/genome/test.bed", str, "BED intervals to test on", "test",
               tracked=False),
        Hparam("seq_len", 1000, int, "tokens per sample window", "len", minimum=1),
        Hparam("batch_size", 32, int, "samples per batch per device", "bs", minimum=1),
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
