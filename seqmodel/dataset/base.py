"""Base class of the `dataset` slot (see seqmodel.components)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional

import pytorch_lightning as pl

from seqmodel.hparam import HparamGroup
from seqmodel.workspace.paths import data_path, data_paths


class DataModuleBase(pl.LightningDataModule):
    """A LightningDataModule that tasks can train on. Built as `Cls.from_hparams(hparams, labelled=...)`
    (default: `Cls(hparams, labelled=...)`), where `labelled` says whether the task needs labels.

    What the run and the tasks use:
    - `alphabet`: a `seqmodel.dataset.seq.Alphabet` (`Alphabet.dna()` for DNA); tasks size the encoder's
      embedding by `alphabet.n_tokens` and masking uses its special tokens;
    - `label_names`: the label columns when labelled, else [];
    - `setup(stage)`, then `train_dataloader`, `val_dataloader`, `test_dataloader` yielding dict batches:
      "tokens" [B, L] integer token ids (L <= seq_len), "index" int64 [B] (the window's number in its
      split), and "labels" float [B, n_labels] when labelled;
    - `windows(split)`: (chrom, start, end) of each window of a fixed split, by index; test mode writes
      them beside the predictions.
    Relative file paths in hparams resolve against hparam `data_root`: use `self.data_path(value)`.
    """

    HPARAMS: ClassVar[Optional[HparamGroup]] = None

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], labelled: bool) -> "DataModuleBase":
        return cls(hparams, labelled=labelled)

    @property
    def label_names(self) -> list[str]:
        return []

    def use_label_names(self, names: list[str]) -> None:
        """Testing a fine-tuned model: the labels it predicts, from its checkpoint. A data module that reads
        label names from its training files takes these instead, so that predicting needs none of them."""

    def windows(self, split: str) -> list[tuple[str, int, int]]:
        raise NotImplementedError(f"{type(self).__name__} does not list the windows of split {split!r}")

    def data_path(self, value: str) -> Path:
        """A dataset path from hparams, resolved against `data_root` (absolute paths stay as they are)."""
        return data_path(self.hparams["data_root"], value)

    def data_paths(self, value: str) -> list[Path]:
        """A comma-separated list of dataset paths, each resolved against `data_root`."""
        return data_paths(self.hparams, value)
