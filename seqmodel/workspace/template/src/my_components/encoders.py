"""An example custom encoder. `python -m seqmodel.run` puts ./src on sys.path, so
`--encoder=my_components.encoders:ConvEncoder` (or `encoder:` in a config file) selects it.

The contract (seqmodel.model.base.EncoderBase): built as `Cls(hparams, n_tokens)` from the run's flat
hparams, maps tokens [B, L] to hidden [B, L, d_model]. Its own hparams are declared in `HPARAMS` as the
built-in components declare theirs; they show up in `--help`, enter canonical names when they differ
from their defaults, and are saved in checkpoints.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from seqmodel.hparam import Hparam, HparamGroup
from seqmodel.model.base import EncoderBase


class ConvEncoder(EncoderBase):
    """Token embedding, then `conv_layers` residual convolutions `conv_width` wide."""

    HPARAMS = HparamGroup(
        "my_components.encoders:ConvEncoder",
        [
            Hparam("conv_layers", 3, int, "residual convolution layers", "cl", minimum=1),
            Hparam("conv_width", 9, int, "kernel width of each convolution", "cw", minimum=1),
        ],
    )

    def __init__(self, hparams: Mapping[str, Any], n_tokens: int) -> None:
        super().__init__()
        d_model = hparams["d_model"]
        self.embed = nn.Embedding(n_tokens, d_model)
        self.convs = nn.ModuleList(
            nn.Conv1d(d_model, d_model, hparams["conv_width"], padding="same") for _ in range(hparams["conv_layers"])
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens.long()).transpose(1, 2)  # [B, D, L]
        for conv in self.convs:
            x = x + F.gelu(conv(x))
        return self.norm(x.transpose(1, 2))  # [B, L, D]
