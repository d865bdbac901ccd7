"""Metrics that torchmetrics does not have, or has only for some shapes."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.classification import BinaryAUROC, MultilabelAUROC


class ConstantBaselineAccuracy(Metric):
    """Accuracy of always predicting the most frequent target token of the evaluated data.

    This is the best any input-blind predictor can do (base-frequency baseline), so masked accuracy
    above it shows the model uses the sequence context.
    """

    full_state_update = False

    def __init__(self, n_tokens: int) -> None:
        super().__init__()
        self.add_state("counts", default=torch.zeros(n_tokens, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, targets: torch.Tensor) -> None:  # targets: [N] int64
        self.counts += torch.bincount(targets, minlength=self.counts.numel())

    def compute(self) -> torch.Tensor:
        return self.counts.max() / self.counts.sum().clamp(min=1)


class SingleLabelAUROC(BinaryAUROC):
    """MultilabelAUROC's input shapes for one label, which torchmetrics' multilabel metric refuses: [B, 1]
    probabilities and targets."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(preds[:, 0], target[:, 0])


def per_label_auroc(n_labels: int) -> Metric:
    """Each label's AUROC from [B, n_labels] inputs (one binary label is the common case). torchmetrics
    squeezes a one-element result to a scalar: `.reshape(-1)` gives [n_labels] back."""
    return SingleLabelAUROC() if n_labels == 1 else MultilabelAUROC(num_labels=n_labels, average=None)
