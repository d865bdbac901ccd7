"""The other strand of a batch of tokens, for evaluation that averages over both strands (fine-tuning's
`rc_average`, variant-effect scores)."""

from __future__ import annotations

import torch


def reverse_complement(tokens: torch.Tensor, complement: torch.Tensor) -> torch.Tensor:
    """[B, L] tokens read on the other strand: reversed, each token complemented by the `complement`
    table (the alphabet's, on the tokens' device)."""
    return complement[tokens.long().flip(-1)]
