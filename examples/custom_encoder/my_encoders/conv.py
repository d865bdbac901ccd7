"""A dilated convolutional encoder, as a custom component of seqmodel.

Select it by qualified path, with this directory importable (it is when it is `./src`, or on PYTHONPATH):

    python -m seqmodel.run --encoder=my_encoders.conv:DilatedConvEncoder --dilated_layers=4
    python -m seqmodel.run --config examples/custom_encoder/pretrain.yaml

Layer i convolves with dilation `dilation_base ** i`, so `dilated_layers` layers of width `dilated_kernel`
see (kernel - 1) * (base ** layers - 1) / (base - 1) + 1 positions: 4 layers of 3 with base 2 see 31 bp,
well beyond a 12-bp motif, at a cost linear in the sequence length (no attention).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from seqmodel.hparam import Hparam, HparamGroup
from seqmodel.model.base import EncoderBase


class DilatedBlock(nn.Module):
    """Pre-norm residual block: LayerNorm, dilated convolution, GELU, pointwise projection."""

    def __init__(self, d_model: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.conv = nn.Conv1d(d_model, d_model, kernel, dilation=dilation, padding="same")
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, L, D]
        y = self.conv(self.norm(x).transpose(1, 2)).transpose(1, 2)  # [B, L, D]
        return x + self.drop(self.proj(F.gelu(y)))


class DilatedConvEncoder(EncoderBase):
    """tokens [B, L] -> hidden [B, L, d_model]: an embedding, then dilated residual convolutions.

    Uses the built-in hparams `d_model` and `dropout`, and declares its own below; the transformer's
    (`n_layers`, `n_heads`, ...) do not apply to it.
    """

    HPARAMS = HparamGroup(
        "my_encoders.conv:DilatedConvEncoder",
        [
            Hparam("dilated_layers", 4, int, "dilated convolution blocks", "dl", minimum=1),
            Hparam("dilated_kernel", 3, int, "kernel width of each block's convolution", "dk", minimum=1),
            Hparam("dilation_base", 2, int, "block i dilates by dilation_base ** i", "db", minimum=1),
        ],
    )

    def __init__(self, hparams: Mapping[str, Any], n_tokens: int) -> None:
        super().__init__()
        d_model = hparams["d_model"]
        self.embed = nn.Embedding(n_tokens, d_model)
        self.blocks = nn.ModuleList(
            DilatedBlock(d_model, hparams["dilated_kernel"], hparams["dilation_base"] ** i, hparams["dropout"])
            for i in range(hparams["dilated_layers"])
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens.long())  # [B, L, D]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)  # [B, L, D]
