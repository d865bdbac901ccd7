"""What every task shares: the encoder, hparams, head and loss slots, optimizer, compile option and
checkpoint stamping. `SeqTask` is also the base class of the `task` slot (see seqmodel.components)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional, Sequence

import pytorch_lightning as pl
import torch

from seqmodel.outputs import checkpoint
from seqmodel.components import load_class
from seqmodel.hparam import HparamError, HparamGroup, registry
from seqmodel.model.base import EncoderBase, HeadBase
from seqmodel.task.loss import LossBase
from seqmodel.task.optim import build_optimizer


RANK_SEED_STRIDE = 1_000_003  # a prime: rank streams of nearby seeds do not coincide


def build_encoder(hparams: Mapping[str, Any], n_tokens: int) -> EncoderBase:
    """The encoder that hparam `encoder` names."""
    return load_class("encoder", hparams["encoder"]).from_hparams(hparams, n_tokens)


class SeqTask(pl.LightningModule):
    """A LightningModule around `self.encoder`; subclasses add a head, a loss and metrics.

    Built as `Cls.from_hparams(hparams, alphabet, label_names)` (default: the constructor with the same
    arguments); `label_names` is the data's label columns when `needs_labels`, else None. `hparams` is the
    run's full flat dict; it is saved in checkpoints, so a run that loads one rebuilds the same components.

    `monitor`/`monitor_mode` choose the best checkpoint; test_step returns {"index": [B], "values":
    [B, len(prediction_columns)]} rows that the prediction writer turns into a table. `make_head` and
    `make_loss` build what hparams `head` and `loss` name, or `default_head`/`default_loss` for `auto`; a
    custom head must subclass `head_kind`. `named_hparams` (set by the run) go into the checkpoint's stamp.
    """

    HPARAMS: ClassVar[Optional[HparamGroup]] = None
    monitor: ClassVar[str]
    monitor_mode: ClassVar[str]
    needs_labels: ClassVar[bool] = False
    head_kind: ClassVar[type[HeadBase]] = HeadBase
    default_head: ClassVar[Optional[type[HeadBase]]] = None
    default_loss: ClassVar[Optional[type[LossBase]]] = None
    named_hparams: Sequence[str] = ()  # the hparams that name the run (seqmodel.contract.canonical_name)

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], alphabet: Any,
                     label_names: Optional[Sequence[str]]) -> "SeqTask":
        return cls(hparams, alphabet, label_names)

    def __init__(self, hparams: Mapping[str, Any], alphabet: Any, label_names: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        hparams = {**registry().defaults(), **dict(hparams)}
        self.save_hyperparameters(hparams)
        self.alphabet = alphabet
        self.encoder = build_encoder(hparams, alphabet.n_tokens)

    def make_head(self, n_outputs: int) -> HeadBase:
        value = self.hparams["head"]
        cls = load_class("head", value) or self.default_head
        if cls is None:
            raise HparamError(f"hparam 'head': task {self.hparams['task']} has no default head; name one")
        if not issubclass(cls, self.head_kind):
            kind = self.head_kind
            raise HparamError(f"hparam 'head': task {self.hparams['task']} needs a {kind.__module__}.{kind.__qualname__}; "
                              f"{value} is not one")
        return cls.from_hparams(self.hparams, self.hparams["d_model"], n_outputs)

    def make_loss(self) -> LossBase:
        cls = load_class("loss", self.hparams["loss"]) or self.default_loss
        if cls is None:
            raise HparamError(f"hparam 'loss': task {self.hparams['task']} has no default loss; name one")
        return cls.from_hparams(self.hparams)

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
        optimizer, scheduler = build_optimizer(self, self.hparams, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, ckpt: dict[str, Any]) -> None:
        checkpoint.stamp(ckpt, getattr(self, "label_names", None), self.named_hparams)
