"""Base classes of the `encoder` and `head` slots (see seqmodel.components).

Shapes: B batch, L sequence length, D = hparam `d_model`, N selected positions.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional

import torch
from torch import nn

from seqmodel.hparam import HparamGroup


class EncoderBase(nn.Module):
    """An encoder: tokens [B, L] (int, ids of the alphabet's tokens) -> hidden [B, L, d_model].

    Built as `Cls.from_hparams(hparams, n_tokens)`, which calls `Cls(hparams, n_tokens)` unless overridden;
    `hparams` is the run's full flat dict (the built-in `d_model`, `dropout`, `seq_len`, ... and the
    encoder's own `HPARAMS`). The output width must be `hparams["d_model"]`: heads are sized by it.
    Tasks save the whole task's `state_dict`, so the encoder's parameter names are its checkpoint format.
    """

    HPARAMS: ClassVar[Optional[HparamGroup]] = None

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], n_tokens: int) -> "EncoderBase":
        return cls(hparams, n_tokens)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, L, D]
        raise NotImplementedError


class HeadBase(nn.Module):
    """A task head, built as `Cls.from_hparams(hparams, d_model, n_outputs)` (default: `Cls(hparams,
    d_model, n_outputs)`). Subclass the kind the task needs: `TokenHead` or `SequenceHead`."""

    HPARAMS: ClassVar[Optional[HparamGroup]] = None

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], d_model: int, n_outputs: int) -> "HeadBase":
        return cls(hparams, d_model, n_outputs)


class TokenHead(HeadBase):
    """Per-position outputs: hidden [B, L, D] -> logits [B, L, n_outputs] (ptmask: the alphabet's
    tokens). It is given every position, so its input keeps one shape from step to step; the task picks
    the positions that carry loss from its output."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [B, L, D] -> [B, L, n_outputs]
        raise NotImplementedError


class SequenceHead(HeadBase):
    """Per-window outputs: hidden [B, L, D] -> logits [B, n_outputs] (finetune: one per label)."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # [B, L, D] -> [B, n_outputs]
        raise NotImplementedError
