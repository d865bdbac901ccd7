"""Fine-tuning: multi-label classification of labelled intervals (BCE, per-label AUROC)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torchmetrics.classification import MultilabelAUROC

from seqmodel.model.base import SequenceHead
from seqmodel.model.heads import MultiLabelHead
from seqmodel.task.base import SeqTask
from seqmodel.task.loss import BinaryCrossEntropy


class FineTuneTask(SeqTask):
    """Logs the mean AUROC over labels (which picks the best checkpoint) and each label's AUROC."""

    monitor = "val/auroc"
    monitor_mode = "max"
    needs_labels = True
    head_kind = SequenceHead
    default_head = MultiLabelHead
    default_loss = BinaryCrossEntropy

    def __init__(self, hparams: Mapping[str, Any], alphabet: Any, label_names: Optional[Sequence[str]]) -> None:
        super().__init__(hparams, alphabet, label_names)
        self.label_names = list(label_names or [])
        self.head = self.make_head(len(self.label_names))
        self.loss = self.make_loss()
        self.val_auroc = MultilabelAUROC(num_labels=len(self.label_names), average=None)
        self.test_auroc = MultilabelAUROC(num_labels=len(self.label_names), average=None)

    @property
    def prediction_columns(self) -> Sequence[str]:
        return self.label_names

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens)).float()  # [B, n_labels] logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch["tokens"]), batch["labels"]).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, stage: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self(batch["tokens"])  # [B, n_labels]
        loss = self.loss(logits, batch["labels"]).mean()
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True)  # all ranks' shards, as AUROC is
        probs = torch.sigmoid(logits)
        getattr(self, f"{stage}_auroc").update(probs, batch["labels"].long())
        return probs

    def _log_auroc(self, stage: str) -> None:
        metric = getattr(self, f"{stage}_auroc")
        per_label = metric.compute()  # [n_labels]
        self.log(f"{stage}/auroc", per_label.mean(), prog_bar=True)
        for name, value in zip(self.label_names, per_label):
            self.log(f"{stage}/auroc_{name}", value)
        metric.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_auroc("val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"index": batch["index"], "values": self._evaluate("test", batch)}

    def on_test_epoch_end(self) -> None:
        self._log_auroc("test")
