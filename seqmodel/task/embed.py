"""`predict=embeddings`: the encoder's embedding of each test window, for users' own downstream models.

Each window's embedding is the mean of the encoder's output over its real positions (the padding past a
sequence's end is left out). Rows are in window order (`SeqDataModule.windows("test")`): row i of
`embeddings.npy` (float32, windows x d_model) is line i + 1 of `embeddings.tsv` (chrom, start, end).
NumPy's format rather than Parquet: no new dependency, and it memory-maps, so a genome's embeddings
load lazily and a writer streams rows to disk instead of holding them. With `embed_positions`,
`embeddings_positions.npy` (windows x seq_len x d_model) holds every position's embedding.

The arrays are written into temporary files and renamed when the last row is in: a reader sees the
complete files or none.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch import nn

from seqmodel.outputs.atomic import atomic_open, replace_durably


class Embedder(pl.LightningModule):
    """A trained task's encoder, predicting embeddings."""

    def __init__(self, encoder: nn.Module, none_idx: int, positions: bool = False) -> None:
        super().__init__()
        self.encoder, self.none_idx, self.positions = encoder, none_idx, positions

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        hidden = self.encoder(batch["tokens"]).float()  # [B, L, D]
        real = (batch["tokens"] != self.none_idx).unsqueeze(-1).float()  # [B, L, 1]
        out = {"index": batch["index"], "mean": (hidden * real).sum(dim=1) / real.sum(dim=1).clamp_min(1.0)}
        if self.positions:
            out["positions"] = hidden
        return out


class PendingArray:
    """A float32 .npy file filled row by row through a memory map, renamed into place by `commit`."""

    def __init__(self, path: Path, shape: tuple[int, ...]) -> None:
        self.path = path
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self.tmp = Path(name)
        self.array = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=shape)

    def commit(self) -> None:
        self.array.flush()
        with open(self.tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        del self.array
        os.chmod(self.tmp, 0o644)  # mkstemp makes 0600; outputs are often shared
        replace_durably(self.tmp, self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class EmbeddingWriter(BasePredictionWriter):
    """Streams the Embedder's rows into `embeddings.npy` (and `embeddings_positions.npy`) in `out`, then
    writes `embeddings.tsv` with the windows' coordinates."""

    def __init__(self, out: Path, windows: Sequence[tuple[str, int, int]], d_model: int, seq_len: int,
                 batch_size: int, positions: bool) -> None:
        super().__init__(write_interval="batch")
        self.out, self.windows, self.d_model, self.seq_len = out, windows, d_model, seq_len
        self.batch_size, self.positions = batch_size, positions
        self.arrays: dict[str, PendingArray] = {}
        self.written = 0  # rows in the files, once written

    @property
    def paths(self) -> dict[str, Path]:
        names = {"embeddings": "embeddings.npy", "embeddings_index": "embeddings.tsv"}
        if self.positions:
            names["embeddings_positions"] = "embeddings_positions.npy"
        return {key: self.out / name for key, name in names.items()}

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            raise ValueError("predict=embeddings runs on one device; spread a large run over shards instead")
        # the windows the loader yields: all of them, or the first limit_test_batches' worth
        self.open(min(len(self.windows), int(trainer.num_predict_batches[0] * self.batch_size)))

    def open(self, rows: int) -> None:
        self.arrays = {"mean": PendingArray(self.paths["embeddings"], (rows, self.d_model))}
        if self.positions:
            self.arrays["positions"] = PendingArray(self.paths["embeddings_positions"],
                                                    (rows, self.seq_len, self.d_model))

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Optional[Sequence[int]], batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        index = prediction["index"].cpu().numpy()
        for key, pending in self.arrays.items():
            pending.array[index] = prediction[key].cpu().numpy()

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.finish()

    def finish(self) -> None:
        """Rename the arrays into place and write the index (an empty shard's files have no rows)."""
        rows = len(self.arrays["mean"].array)
        for pending in self.arrays.values():
            pending.commit()
        with atomic_open(self.paths["embeddings_index"]) as handle:
            handle.write("chrom\tstart\tend\n")
            handle.writelines(f"{chrom}\t{start}\t{end}\n" for chrom, start, end in self.windows[:rows])
        self.arrays, self.written = {}, rows

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        for pending in self.arrays.values():
            pending.discard()
        self.arrays = {}
