"""The transformer encoder: token embedding, positional encoding, pre-LN blocks (nanoGPT style).

Shapes: B batch, L sequence length, D d_model, H heads, V vocabulary (tokens of the alphabet).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from seqmodel.hparam import HparamError
from seqmodel.model.base import EncoderBase


@dataclass(frozen=True)
class EncoderConfig:
    """Everything that shapes the encoder; built from hparams plus the alphabet's size."""

    n_tokens: int
    seq_len: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    dropout: float = 0.1
    attention_dropout: float = 0.0
    positional_encoding: str = "sinusoidal"
    conv_kernel: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise HparamError(
                f"hparam 'n_heads' must divide d_model; got n_heads={self.n_heads}, d_model={self.d_model}"
            )
        if self.positional_encoding == "rope" and (self.d_model // self.n_heads) % 2:
            raise HparamError(f"hparam 'positional_encoding' rope rotates pairs of dimensions: d_model / n_heads "
                              f"must be even; got {self.d_model} / {self.n_heads}")

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], n_tokens: int) -> "EncoderConfig":
        return cls(
            n_tokens=n_tokens,
            seq_len=hparams["seq_len"],
            d_model=hparams["d_model"],
            n_layers=hparams["n_layers"],
            n_heads=hparams["n_heads"],
            d_ff=hparams["d_ff"],
            dropout=hparams["dropout"],
            attention_dropout=hparams["attention_dropout"],
            positional_encoding=hparams["positional_encoding"],
            conv_kernel=hparams["conv_kernel"],
        )


class SinusoidalPositions(nn.Module):
    """Fixed sin/cos positions (Vaswani et al.); a non-persistent buffer, so not in checkpoints."""

    def __init__(self, seq_len: int, d_model: int) -> None:
        super().__init__()
        position = torch.arange(seq_len, dtype=torch.float32)[:, None]  # [L, 1]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        table = torch.zeros(seq_len, d_model)  # [L, D]
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]  # [L, D]


class LearnedPositions(nn.Module):
    """One trained vector per position, up to the configured seq_len."""

    def __init__(self, seq_len: int, d_model: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(seq_len, d_model) * 0.02)  # [L, D]

    def forward(self, length: int) -> torch.Tensor:
        return self.table[:length]  # [L, D]


class RotaryPositions(nn.Module):
    """RoPE (Su et al.; NT-v2, Evo 2): rotates each head's queries and keys by angles that grow with the
    position, so a query-key score depends on their content and relative offset only. Nothing is added to
    the embeddings and nothing is learned (non-persistent buffers, not in checkpoints)."""

    def __init__(self, seq_len: int, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # [Dh/2]
        angles = torch.arange(seq_len, dtype=torch.float32)[:, None] * freq  # [L, Dh/2]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, H, L, Dh], the halves of the last dimension rotated as pairs (GPT-NeoX layout)."""
        length, half = x.shape[-2], x.shape[-1] // 2
        cos, sin = self.cos[:length].to(x.dtype), self.sin[:length].to(x.dtype)  # [L, Dh/2]
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # [B, H, L, Dh]


class KmerConv(nn.Module):
    """A residual convolution over the embeddings: each position sees its k-mer before any attention.

    Attention on single-base tokens has to learn one relative offset per head to spell out a motif,
    which a small model does slowly; a convolution gives k-mer features in one layer.
    """

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel, padding="same")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # [B, L, D]


class SelfAttention(nn.Module):
    """Bidirectional multi-head attention through the fused scaled_dot_product_attention kernel (which
    attention dropout makes fall back to the unfused one on CPU: hence its own hparam, 0 by default)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.dropout = cfg.attention_dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.rotary = (RotaryPositions(cfg.seq_len, cfg.d_model // cfg.n_heads)
                       if cfg.positional_encoding == "rope" else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, l, d = x.shape  # [B, L, D]
        q, k, v = self.qkv(x).split(d, dim=-1)  # 3 x [B, L, D]
        q, k, v = (t.view(b, l, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))  # [B, H, L, D/H]
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, l, d))  # [B, L, D]


class FeedForward(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.d_model, cfg.d_ff)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # [B, L, D]


class Block(nn.Module):
    """Pre-LN residual block: normalising before each sublayer keeps deep stacks stable without warm tricks."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln_ff = nn.LayerNorm(cfg.d_model)
        self.ff = FeedForward(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_attn(x)))
        return x + self.drop(self.ff(self.ln_ff(x)))  # [B, L, D]


class Encoder(EncoderBase):
    """The built-in `transformer` encoder: [B, L] integer tokens -> [B, L, D] contextual embeddings."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_tokens, cfg.d_model)
        # Added to the embeddings; rope instead rotates queries and keys inside each attention layer.
        additive = {"sinusoidal": SinusoidalPositions, "learned": LearnedPositions}.get(cfg.positional_encoding)
        self.positions = additive(cfg.seq_len, cfg.d_model) if additive else None
        self.kmers = KmerConv(cfg.d_model, cfg.conv_kernel) if cfg.conv_kernel else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_out = nn.LayerNorm(cfg.d_model)

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], n_tokens: int) -> "Encoder":
        return cls(EncoderConfig.from_hparams(hparams, n_tokens))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        if length > self.cfg.seq_len:
            raise ValueError(f"sequence of {length} tokens is longer than the encoder's seq_len {self.cfg.seq_len}")
        x = self.kmers(self.embed(tokens.long()))  # [B, L, D]
        if self.positions is not None:
            x = x + self.positions(length)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.ln_out(x)  # [B, L, D]
