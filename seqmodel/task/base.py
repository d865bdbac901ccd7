"""What every task shares: the encoder, hparams, optimizer, compile option and checkpoint stamping."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import pytorch_lightning as pl
import torch

from seqmodel import checkpoint
from seqmodel.model.encoder import Encoder, EncoderConfig
from seqmodel.task.optim import build_optimizer


RANK_SEED_STRIDE = 1_000_003  # a prime: rank streams of nearby seeds do not coincide


class SeqTask(pl.LightningModule):
    """A LightningModule around `self.encoder`; subclasses add a head, a loss and metrics.

    `monitor`/`monitor_mode` choose the best checkpoint; test_step returns {"index": [B], "values":
    [B, len(prediction_columns)]} rows that the prediction writer turns into a table.
    """

    monitor: ClassVar[str]
    monitor_mode: ClassVar[str]

    def __init__(self, hparams: Mapping[str, Any], n_tokens: int) -> None:
        super().__init__()
        self.save_hyperparameters(dict(hparams))
        self.encoder = Encoder(EncoderConfig.from_hparams(hparams, n_tokens))

    @property
    def prediction_columns(self) -> Sequence[str]:
        raise NotImplementedError

    def configure_model(self) -> None:
        # nn.Module.compile keeps parameter names, so checkpoints are the same with or without compile.
        if self.hparams["compile"]:
            self.encoder.compile()

    def on_train_start(self) -> None:
        # Every rank starts from one seed, so the initial weights agree; past that point each rank
        # draws its own masks and dropout. Rank 0 keeps the single-process stream.
        if self.global_rank:
            torch.manual_seed(self.hparams["seed"] + RANK_SEED_STRIDE * self.global_rank)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, scheduler = build_optimizer(self, self.hparams)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, ckpt: dict[str, Any]) -> None:
        checkpoint.stamp(ckpt, getattr(self, "label_names", None))
