"""Fine-tuning: multi-label classification of labelled intervals (BCE, per-label AUROC)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch

from seqmodel.hparam import HparamError
from seqmodel.model.base import SequenceHead
from seqmodel.model.heads import MultiLabelHead
from seqmodel.task.base import SeqTask
from seqmodel.task.loss import BinaryCrossEntropy
from seqmodel.task.metrics import per_label_auroc
from seqmodel.task.strands import reverse_complement


class FineTuneTask(SeqTask):
    """Logs the mean AUROC over labels (which picks the best checkpoint) and each label's AUROC. With
    `rc_average`, evaluation averages each window's probabilities over both strands (Caduceus-Ph)."""

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
        self.val_auroc = per_label_auroc(len(self.label_names))
        self.test_auroc = per_label_auroc(len(self.label_names))
        if self.hparams["rc_average"] and not alphabet.has_complement:
            raise HparamError("hparam 'rc_average': the alphabet has no complement to take")
        complement = alphabet.complement_table if alphabet.has_complement else range(alphabet.n_tokens)
        self.register_buffer("complement", torch.as_tensor(complement, dtype=torch.long), persistent=False)

    @property
    def prediction_columns(self) -> Sequence[str]:
        return self.label_names

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens)).float()  # [B, n_labels] logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(self(batch["tokens"]), batch["labels"]).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def reverse_complement(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L] tokens of the other strand: reversed and complemented."""
        return reverse_complement(tokens, self.complement)

    def evaluation_logits(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """The logits evaluation averages over: this strand's, and with `rc_average` the other's."""
        strands = [tokens, self.reverse_complement(tokens)] if self.hparams["rc_average"] else [tokens]
        return [self(strand) for strand in strands]  # each [B, n_labels]

    def _evaluate(self, stage: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.evaluation_logits(batch["tokens"])
        probs = torch.stack([torch.sigmoid(each) for each in logits]).mean(dim=0)  # [B, n_labels]
        if "labels" not in batch:  # intervals to predict on, with nothing to score
            return probs
        loss = torch.stack([self.loss(each, batch["labels"]).mean() for each in logits]).mean()
        self.log(f"{stage}/loss", loss, prog_bar=True, sync_dist=True)  # all ranks' shards, as AUROC is
        getattr(self, f"{stage}_auroc").update(probs, batch["labels"].long())
        return probs

    def _log_auroc(self, stage: str) -> None:
        metric = getattr(self, f"{stage}_auroc")
        if not metric.update_called:  # unlabelled intervals
            return
        per_label = metric.compute().reshape(-1)  # [n_labels], one label's scalar included
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
