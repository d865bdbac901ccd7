"""Analytic training FLOPs per token and model FLOPs utilisation (MFU), for sizing GPU runs.

Torch-free arithmetic on the hparams. A multiply-add counts 2 FLOPs; training costs 3x the forward
pass (backward is about twice the forward); embeddings, norms and activations are left out, as usual.
"""

from __future__ import annotations

from typing import Any, Mapping


def forward_flops_per_token(hparams: Mapping[str, Any], n_tokens: int, head_fraction: float) -> float:
    """Forward FLOPs per input token of encoder + masked-token head.

    `head_fraction` is the share of positions whose head outputs are used (ptmask: the selected ones).
    The head runs on every position (seqmodel.task.ptmask says why); the rest is not model arithmetic.
    """
    d, ff, length, kernel = hparams["d_model"], hparams["d_ff"], hparams["seq_len"], hparams["conv_kernel"]
    per_layer = (
        2 * d * 3 * d  # q, k, v projections
        + 2 * 2 * length * d  # scores q.k and the weighted sum of v, over all L keys
        + 2 * d * d  # output projection
        + 2 * 2 * d * ff  # feed-forward up and down
    )
    stem = 2 * kernel * d * d
    head = head_fraction * (2 * d * d + 2 * d * n_tokens)
    return hparams["n_layers"] * per_layer + stem + head


def train_flops_per_token(hparams: Mapping[str, Any], n_tokens: int, head_fraction: float) -> float:
    return 3 * forward_flops_per_token(hparams, n_tokens, head_fraction)


def mfu(tokens_per_second: float, flops_per_token: float, peak_flops: float) -> float:
    """Share of the hardware's peak FLOP/s spent on the model's arithmetic (e.g. peak 989e12 for a
    bf16 H100 SXM)."""
    return tokens_per_second * flops_per_token / peak_flops
