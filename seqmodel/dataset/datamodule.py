"""The built-in `genome` data module: splits, samplers and loaders for pretraining (unlabelled: `task=ptmask`)
and fine-tuning (labelled: `task=finetune`). Relative paths resolve against hparam `data_root`.

- ptmask: training windows are sampled at random inside `train_intervals` (`epoch_samples` per epoch,
  default total interval length / seq_len); valid/test windows tile their intervals deterministically.
- finetune: every labelled interval is one sample, the window centred on it (see `labels.py`); training
  visits them in a new order each epoch. Testing a fine-tuned checkpoint takes its label names from the
  checkpoint, and test_intervals may be a plain BED file (predictions only).
- `reverse_complement`: training samples are reverse-complemented with p = 0.5 (labels unchanged).

Epochs and DDP. The training sampler yields sample ids `epoch << 40 | index`; each rank takes its own
stride of the epoch's indices, so ranks never read the same sample and together read the whole epoch.
Everything random about a sample is a hash of (seed, id). Lightning calls `sampler.set_epoch(epoch)` at
the start of every training epoch (the sampler is a `DistributedSampler`, so Lightning also leaves it in
place under DDP); outside Lightning, call `dm.set_epoch(epoch)` before iterating. The epoch travels with
the ids, so worker processes (even persistent ones) need no notification. Rank and world size come from
`self.trainer` when attached, else from `torch.distributed` when initialised, else 0 and 1.

Resuming. The training loader is stateful for Lightning: checkpoints record how many batches of the
epoch were trained on, and a resumed run continues that epoch after them instead of replaying its start.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from seqmodel.dataset.base import DataModuleBase
from seqmodel.dataset.cache import Genome
from seqmodel.dataset.datasets import FixedWindows, SampledWindows, VariantWindows, _GenomeWindows
from seqmodel.dataset.labels import label_header, read_label_names, read_labelled_bed
from seqmodel.dataset.seq import Alphabet, DataError, read_bed, split_paths
from seqmodel.dataset.variants import Variants, read_vcf
from seqmodel.dataset.windows import inference_slice, sample_id, shard
from seqmodel.workspace.paths import where_relative

__all__ = ["SeqDataModule", "read_label_names", "collate", "ShardSampler"]

SPLITS = ("train", "valid", "test")
# Soft-masked repeats are about half of a mammalian genome; far more means the FASTA is lowercase throughout.
SOFT_WARN = 0.9


def collate(batch: Any) -> dict[str, torch.Tensor]:
    """numpy batch dict (from `__getitems__`) -> torch tensors; also accepts a list of sample dicts."""
    if isinstance(batch, (list, tuple)):
        batch = {k: np.stack([s[k] for s in batch]) for k in batch[0]}
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def _require(hparam: str, path: Path, data_root: str, value: str) -> Path:
    """The path, or a one-line error naming the hparam when it is not a readable file."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "no such file"
        raise DataError(f"{hparam}: {path}: {what}{where_relative(data_root, value)}")
    return path


class ShardSampler(DistributedSampler):
    """This rank's sample ids of an epoch (see `seqmodel.dataset.windows.shard`).

    A `DistributedSampler`, so Lightning calls `set_epoch` on it and does not replace it under DDP.
    Training (`train=True`) yields ids carrying the epoch, pads ranks to equal counts with fresh
    indices, and shuffles when asked; evaluation yields plain indices, padded by repeating.
    """

    def __init__(
        self, n: int, *, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = False,
        train: bool = True,
    ) -> None:
        # DistributedSampler's own __init__ wants a dataset; set what it would and what set_epoch uses.
        self.n = int(n)
        self.num_replicas = world_size
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.train = train
        self.drop_last = False
        self.epoch = 0
        self.num_samples = math.ceil(self.n / world_size) if self.n else 0
        self.total_size = self.num_samples * world_size
        self.resume_at = (-1, 0)  # (epoch, samples of it already trained on) when resuming

    def __iter__(self) -> Iterator[int]:
        epoch, done = self.resume_at
        return iter(self.indices()[done if epoch == self.epoch else 0:].tolist())

    def indices(self) -> np.ndarray:
        idx = shard(
            self.n, self.rank, self.num_replicas, seed=self.seed, epoch=self.epoch, shuffle=self.shuffle,
            pad="fresh" if self.train else "repeat",
        )
        return sample_id(self.epoch, idx) if self.train else idx

    def __len__(self) -> int:
        return self.num_samples  # the whole epoch, also when resuming: Lightning counts batches from 0


class ResumableLoader(DataLoader):
    """A training loader with Lightning's `state_dict`/`load_state_dict`, so mid-epoch resumes continue the
    epoch. `position` gives (epoch, batches of it trained on) from the trainer: the loader itself only knows
    how far it prefetched. Loading also sets the sampler's epoch, since Lightning starts iterating the
    resumed epoch (workers fetch ahead) before it calls `set_epoch`."""

    def __init__(self, *args: Any, position: Callable[[], tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = position

    def state_dict(self) -> dict[str, int]:
        epoch, batches = self.position()
        return {"epoch": epoch, "samples": batches * self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.resume_at = (state["epoch"], state["samples"])


class SeqDataModule(DataModuleBase):
    """Data for pretraining (sampled/tiled windows) or, when labelled, fine-tuning (labelled intervals).

    Args:
        hparams: the full hparams dict (missing keys take the registry's defaults).
        labelled: whether to read labelled intervals (default: when hparams' task is finetune).
    """

    def __init__(self, hparams: Mapping[str, Any], labelled: bool | None = None) -> None:
        super().__init__()
        from seqmodel.hparam import registry

        full = {**registry().defaults(), **dict(hparams)}
        self.save_hyperparameters(full, logger=False)
        self.labelled: bool = full["task"] == "finetune" if labelled is None else bool(labelled)
        self.alphabet = Alphabet.dna()
        self.seq_len: int = int(full["seq_len"])
        self.batch_size: int = int(full["batch_size"])
        self.num_workers: int = int(full["num_workers"])
        self.seed: int = int(full["seed"])
        self.paths = {s: full[f"{s}_intervals"] for s in SPLITS}
        self.genome: Genome | None = None
        self.datasets: dict[str, _GenomeWindows] = {}
        self._label_names: list[str] | None = None
        self._labels_from = "train_intervals"  # where the label names came from, for errors
        self._epoch = 0
        self._train_sampler: ShardSampler | None = None

    # -- labels ----------------------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        """Fine-tuning label names from the train_intervals header, or a checkpoint's ([] for pretraining)."""
        if not self.labelled:
            return []
        if self._label_names is None:
            self._label_names = read_label_names(self._path("train_intervals"))
        return self._label_names

    def use_label_names(self, names: list[str]) -> None:
        self._label_names, self._labels_from = list(names), "the checkpoint"

    def _path(self, hparam: str) -> Path:
        return _require(hparam, self.data_path(self.hparams[hparam]), self.hparams["data_root"], self.hparams[hparam])

    # -- setup -----------------------------------------------------------------------------------------
    def _genome(self) -> Genome:
        if self.genome is None:
            root = self.hparams["data_root"]
            files = [_require("seq_file", self.data_path(p), root, p) for p in split_paths(self.hparams["seq_file"])]
            self.genome = Genome.open(files, self.alphabet, self.hparams["cache_dir"])
            self._warn_if_not_soft_masked(self.genome)
        return self.genome

    def setup(self, stage: str | None = None) -> None:
        splits = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",),
                  "predict": ("test",), None: SPLITS}[stage]
        for split in splits:
            self._dataset(split)

    def _dataset(self, split: str) -> _GenomeWindows:
        """The split's dataset, made on first use."""
        if split not in self.datasets:
            self.datasets[split] = self._make(split)
        return self.datasets[split]

    def _make(self, split: str) -> _GenomeWindows:
        windows = self._windows(split)
        if split == "test" and isinstance(windows, FixedWindows):  # test mode may predict a slice of them
            return windows.take(inference_slice(windows.n_windows, int(self.hparams["shard"]),
                                                int(self.hparams["shards"])))
        return windows

    def _windows(self, split: str) -> _GenomeWindows:
        path = self._path(f"{split}_intervals")
        genome = self._genome()
        lengths = genome.lengths
        train = split == "train"
        rc = bool(self.hparams["reverse_complement"]) and train
        if self.labelled and split == "test" and label_header(path) is None:  # intervals to predict on
            return FixedWindows.centred(genome, read_bed(path, lengths), self.seq_len)
        if self.labelled:
            intervals, labels, names = read_labelled_bed(path, lengths)
            if names != self.label_names:
                source = f"train_intervals {self.paths['train']}" if self._labels_from == "train_intervals" \
                    else self._labels_from
                raise DataError(f"{path}: label columns {names} differ from those of {source} {self.label_names}")
            epoch = (int(self.hparams["epoch_samples"]) or None) if train else None
            return FixedWindows.centred(genome, intervals, self.seq_len, labels, reverse_complement=rc,
                                        seed=self.seed, epoch_size=epoch)
        intervals = read_bed(path, lengths)
        soft = self.uses_soft_mask
        if train:
            epoch = int(self.hparams["epoch_samples"]) or max(1, int(intervals.lengths.sum()) // self.seq_len)
            return SampledWindows(genome, intervals, self.seq_len, epoch, reverse_complement=rc, seed=self.seed,
                                  soft_mask=soft)
        return FixedWindows.tiled(genome, intervals, self.seq_len, soft_mask=soft)

    @property
    def uses_soft_mask(self) -> bool:
        """Whether pretraining batches carry the soft-masked positions: only repeat_weight below 1 uses them."""
        return float(self.hparams["repeat_weight"]) != 1.0

    def _warn_if_not_soft_masked(self, genome: Genome) -> None:
        """A genome that is mostly lowercase is not soft-masked for repeats: say so when repeat_weight uses case."""
        total = int(genome.sizes.sum())
        if self.uses_soft_mask and total and genome.soft_count > SOFT_WARN * total:
            warnings.warn(f"seq_file: {genome.soft_count / total:.0%} of the genome is lowercase, which "
                          f"repeat_weight={self.hparams['repeat_weight']} treats as repeats; a soft-masked genome "
                          "has its repeats alone in lowercase", stacklevel=2)

    def windows(self, split: str) -> list[tuple[str, int, int]]:
        """(chrom, start, end) of each window of a fixed split, in `index` order."""
        ds = self._dataset(split)
        if not isinstance(ds, FixedWindows):
            raise ValueError(f"split {split!r} samples random windows; it has no fixed window list")
        return ds.windows()

    # -- distribution ----------------------------------------------------------------------------------
    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def set_epoch(self, epoch: int) -> None:
        """Select the training epoch (Lightning does this through the sampler; call it without Lightning)."""
        self._epoch = int(epoch)
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(self._epoch)

    # -- loaders ---------------------------------------------------------------------------------------
    def _loader(self, ds: _GenomeWindows, sampler: ShardSampler, loader: type[DataLoader] = DataLoader,
                **kwargs: Any) -> DataLoader:
        return loader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            **kwargs,
        )

    def _train_position(self) -> tuple[int, int]:
        """(epoch, batches of it whose training step ran) for checkpoints; a finished epoch (also one cut
        short by limit_train_batches) is recorded as the start of the next, which is where Lightning resumes."""
        loop = self.trainer.fit_loop
        epoch, done = self._train_sampler.epoch, loop.epoch_loop.batch_progress.current.processed
        if loop.epoch_progress.current.processed > epoch or done >= self.trainer.num_training_batches:
            return epoch + 1, 0
        return epoch, done

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            self.setup("fit")
        rank, world = self._rank_world()
        ds = self.datasets["train"]
        sampler = ShardSampler(len(ds), rank=rank, world_size=world, seed=self.seed,
                               shuffle=self.labelled, train=True)
        sampler.set_epoch(self._epoch)
        self._train_sampler = sampler
        return self._loader(ds, sampler, ResumableLoader, position=self._train_position)

    def _eval_loader(self, split: str) -> DataLoader:
        ds = self._dataset(split)
        rank, world = self._rank_world()
        sampler = ShardSampler(len(ds), rank=rank, world_size=world, train=False)
        return self._loader(ds, sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def variants(self) -> Variants:
        """The SNVs of hparam `variants` (predict=variant_effect), checked against the genome."""
        return read_vcf(self._path("variants"), self._genome())

    def variant_dataloader(self, variants: Variants) -> DataLoader:
        """Windows centred on `variants`, in their order."""
        ds = VariantWindows(self._genome(), variants, self.seq_len)
        return self._loader(ds, ShardSampler(len(ds), train=False))
