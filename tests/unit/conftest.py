"""Shared test doubles: a tiny in-memory datamodule with SeqDataModule's interface."""

from __future__ import annotations

from typing import Any, Mapping

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from seqmodel.dataset.base import DataModuleBase
from seqmodel.dataset.seq import Alphabet

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 32, "batch_size": 8,
        "warmup_steps": 2, "dropout": 0.0}
LABELS = ["motif_a", "motif_c"]


class FakeWindows(Dataset):
    """Random bases; label j is 1 when a run of 10 copies of base 2j was planted (learnable)."""

    def __init__(self, alphabet: Alphabet, n: int, seq_len: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        bases = torch.tensor(alphabet.base_indices, dtype=torch.uint8)
        self.tokens = bases[torch.randint(len(bases), (n, seq_len), generator=gen)]
        self.labels = torch.randint(2, (n, len(LABELS)), generator=gen).float()
        for i in range(n):
            for j in range(len(LABELS)):
                if self.labels[i, j]:
                    start = int(torch.randint(seq_len - 10, (1,), generator=gen))
                    self.tokens[i, start:start + 10] = bases[2 * j]

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"tokens": self.tokens[i], "labels": self.labels[i], "index": torch.tensor(i)}


class FakeDataModule(DataModuleBase):
    """Same surface as seqmodel.dataset.datamodule.SeqDataModule, no files needed."""

    def __init__(self, hparams: Mapping[str, Any], labelled: bool = True) -> None:
        super().__init__()
        self.hp = dict(hparams)
        self.alphabet = Alphabet.dna()
        self.labelled = labelled
        self.data = {split: FakeWindows(self.alphabet, n, self.hp["seq_len"], seed)
                     for split, n, seed in (("train", 128, 1), ("valid", 48, 2), ("test", 24, 3))}

    @property
    def label_names(self) -> list[str]:
        return list(LABELS)

    def windows(self, split: str) -> list[tuple[str, int, int]]:
        length = self.hp["seq_len"]
        return [("chr1", i * length, (i + 1) * length) for i in range(len(self.data[split]))]

    def _loader(self, split: str) -> DataLoader:
        return DataLoader(self.data[split], batch_size=self.hp["batch_size"], shuffle=split == "train")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


@pytest.fixture
def tiny_hparams() -> dict[str, Any]:
    from seqmodel.hparam import registry

    return registry().parse_dict(TINY)


@pytest.fixture
def fake_data(monkeypatch: pytest.MonkeyPatch) -> type[FakeDataModule]:
    """run.py's pipeline on the fake datamodule: the built-in dataset `genome` names it."""
    from seqmodel.components import SLOTS

    monkeypatch.setitem(SLOTS["dataset"].builtins, "genome", f"{__name__}:FakeDataModule")
    return FakeDataModule
