"""The built-in task heads on top of the encoder's [B, L, D] output."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from seqmodel.model.base import SequenceHead, TokenHead


class MaskedTokenHead(TokenHead):
    """Predicts the original token at every position: [B, L, D] -> [B, L, V] logits (BERT's LM head)."""

    def __init__(self, d_model: int, n_tokens: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)
        self.ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, n_tokens)

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], d_model: int, n_outputs: int) -> "MaskedTokenHead":
        return cls(d_model, n_outputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(self.ln(torch.nn.functional.gelu(self.dense(hidden))))  # [B, L, V]


class MultiLabelHead(SequenceHead):
    """Multi-label logits for a whole window: mean and max pooling over L, then a linear layer.

    Max pooling lets one short motif anywhere in the window decide a label; the mean carries context.
    """

    def __init__(self, d_model: int, n_labels: int) -> None:
        super().__init__()
        self.out = nn.Linear(2 * d_model, n_labels)

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], d_model: int, n_outputs: int) -> "MultiLabelHead":
        return cls(d_model, n_outputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([hidden.mean(dim=1), hidden.amax(dim=1)], dim=-1)  # [B, 2D]
        return self.out(pooled)  # [B, n_labels]
