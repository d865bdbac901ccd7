"""Base class of the `loss` slot (see seqmodel.components) and the built-in losses."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import nn

from seqmodel.hparam import HparamGroup


class LossBase(nn.Module):
    """A task's loss: (logits, targets) -> unreduced losses; the task averages them (and, for ptmask,
    reports them per window in test predictions). Built as `Cls.from_hparams(hparams)`, which calls
    `Cls(hparams)` unless overridden.

    What a task passes: ptmask: logits [N, V] and targets [N] (int64 token ids) at the N selected positions,
    losses [N]; finetune: logits [B, n_labels] and targets [B, n_labels] (float 0/1), losses [B, n_labels]
    or [B].
    """

    HPARAMS: ClassVar[Optional[HparamGroup]] = None

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any]) -> "LossBase":
        return cls(hparams)

    def __init__(self, hparams: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class CrossEntropy(LossBase):
    """ptmask's loss: cross-entropy of the original token at each selected position."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, reduction="none")  # [N]


class BinaryCrossEntropy(LossBase):
    """finetune's loss: binary cross-entropy of each label."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # [B, n_labels]
