"""Masked-token pretraining: predict the original tokens at corrupted positions."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch
from torchmetrics import MeanMetric

from seqmodel.model.base import TokenHead
from seqmodel.model.heads import MaskedTokenHead
from seqmodel.task.base import SeqTask
from seqmodel.task.loss import CrossEntropy
from seqmodel.task.masking import MaskingConfig, mask_tokens
from seqmodel.task.metrics import ConstantBaselineAccuracy


class PtMaskTask(SeqTask):
    """Loss and accuracy only on selected positions; the base-frequency baseline is logged beside them."""

    monitor = "val/loss"
    monitor_mode = "min"
    head_kind = TokenHead
    default_head = MaskedTokenHead
    default_loss = CrossEntropy

    def __init__(self, hparams: Mapping[str, Any], alphabet: Any, label_names: Optional[Sequence[str]] = None) -> None:
        super().__init__(hparams, alphabet)
        hp = self.hparams
        self.masking = MaskingConfig(
            mask_prop=hp["mask_prop"], random_prop=hp["random_prop"], keep_prop=hp["keep_prop"],
            mask_idx=alphabet.mask_idx, none_idx=alphabet.none_idx,
        )
        self.head = self.make_head(alphabet.n_tokens)
        self.loss = self.make_loss()
        self.register_buffer("base_indices", torch.tensor(alphabet.base_indices, dtype=torch.long), persistent=False)
        for stage in ("val", "test"):
            setattr(self, f"{stage}_loss", MeanMetric())
            setattr(self, f"{stage}_acc", MeanMetric())
            setattr(self, f"{stage}_baseline", ConstantBaselineAccuracy(alphabet.n_tokens))

    @property
    def prediction_columns(self) -> Sequence[str]:
        return ("n_masked", "loss", "masked_acc")

    def _masked_step(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per selected position: losses [N], correct [N], targets [N]; and the row of each, [N]."""
        batch = mask_tokens(tokens, self.masking, self.base_indices)
        hidden = self.encoder(batch.inputs)  # [B, L, D]
        logits = self.head(hidden[batch.selected]).float()  # [N, V]
        targets = batch.targets[batch.selected]  # [N]
        losses = self.loss(logits, targets)  # [N]
        rows = batch.selected.nonzero()[:, 0]  # [N]
        return losses, logits.argmax(dim=-1) == targets, targets, rows

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, correct, _, _ = self._masked_step(batch["tokens"])
        n = max(losses.numel(), 1)
        loss = losses.sum() / n
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/masked_acc", correct.sum() / n)
        return loss

    def _evaluate(self, stage: str, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        losses, correct, targets, rows = self._masked_step(tokens)
        for name, value in (("loss", losses), ("acc", correct.float())):
            metric = getattr(self, f"{stage}_{name}")
            metric.update(value)
        getattr(self, f"{stage}_baseline").update(targets)
        self.log(f"{stage}/loss", getattr(self, f"{stage}_loss"), prog_bar=True)
        self.log(f"{stage}/masked_acc", getattr(self, f"{stage}_acc"), prog_bar=True)
        self.log(f"{stage}/baseline_acc", getattr(self, f"{stage}_baseline"))
        return losses, correct, rows

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch["tokens"])

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        losses, correct, rows = self._evaluate("test", batch["tokens"])
        size = batch["tokens"].shape[0]
        n_masked = torch.zeros(size, device=losses.device).index_add_(0, rows, torch.ones_like(losses))  # [B]
        loss_sum = torch.zeros(size, device=losses.device).index_add_(0, rows, losses)  # [B]
        correct_sum = torch.zeros(size, device=losses.device).index_add_(0, rows, correct.float())  # [B]
        values = torch.stack([n_masked, loss_sum / n_masked, correct_sum / n_masked], dim=1)  # [B, 3]
        return {"index": batch["index"], "values": values}
