"""Metrics that torchmetrics does not have."""

from __future__ import annotations

import torch
from torchmetrics import Metric


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
