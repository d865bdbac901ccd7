"""Write test-mode predictions: one row per window with its interval and the task's values."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch

from seqmodel.outputs.atomic import atomic_open


class PredictionWriter(pl.Callback):
    """Collects the rows that `test_step` returns and writes one TSV (chrom, start, end, then the
    task's `prediction_columns`) in window order; the file appears complete at the end of testing, or
    not at all. Under DDP the ranks' rows are gathered to rank 0, and the windows that padding gave
    two ranks are written once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[int, list[float]] = {}

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = {}

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._rows.update(zip(outputs["index"].tolist(), outputs["values"].float().tolist()))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rows = self._rows
        if trainer.world_size > 1:
            parts: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(parts, rows)
            rows = {index: values for part in parts for index, values in part.items()}
        if trainer.is_global_zero:
            self.write(rows, trainer.datamodule.windows("test"), pl_module.prediction_columns)
        self._rows = {}

    def write(self, rows: dict[int, list[float]], windows: Sequence[tuple[str, int, int]],
              columns: Sequence[str]) -> None:
        """The file, from each window's values by window index (an empty shard's has its header alone)."""
        with atomic_open(self.path) as handle:
            handle.write("\t".join(["chrom", "start", "end", *columns]) + "\n")
            for index in sorted(rows):
                chrom, start, end = windows[index]
                values = (f"{v:.6g}" for v in rows[index])
                handle.write("\t".join([chrom, str(start), str(end), *values]) + "\n")
