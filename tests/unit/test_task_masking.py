"""Masked-token corruption: inputs corrupted, targets original, proportions as configured."""

from __future__ import annotations

import pytest
import torch

from seqmodel.hparam import HparamError
from seqmodel.task.masking import MaskingConfig, mask_tokens

NONE, MASK = 0, 1
BASES = torch.tensor([2, 3, 4, 5])


def corrupt(mask: float, rand: float, keep: float, tokens: torch.Tensor | None = None):
    torch.manual_seed(0)
    tokens = BASES[torch.randint(4, (200, 500))].to(torch.uint8) if tokens is None else tokens
    cfg = MaskingConfig(mask_prop=mask, random_prop=rand, keep_prop=keep, mask_idx=MASK, none_idx=NONE)
    return tokens, mask_tokens(tokens, cfg, BASES)


def test_targets_are_the_original_tokens_and_inputs_are_corrupted() -> None:
    tokens, out = corrupt(0.2, 0.0, 0.0)
    assert torch.equal(out.targets, tokens.long())
    assert (out.inputs[out.selected] == MASK).all()
    assert torch.equal(out.inputs[~out.selected], tokens.long()[~out.selected])


def test_proportions_of_mask_random_and_keep() -> None:
    tokens, out = corrupt(0.12, 0.05, 0.03)
    n = tokens.numel()
    masked = (out.inputs == MASK) & out.selected
    changed = (out.inputs != tokens.long()) & (out.inputs != MASK)
    assert out.selected.sum() / n == pytest.approx(0.20, abs=0.005)
    assert masked.sum() / n == pytest.approx(0.12, abs=0.005)
    # a random base equals the original a quarter of the time
    assert changed.sum() / n == pytest.approx(0.05 * 0.75, abs=0.003)
    assert set(out.inputs[changed].unique().tolist()) <= set(BASES.tolist())


def test_unknown_positions_are_never_selected() -> None:
    tokens = torch.full((50, 100), NONE, dtype=torch.uint8)
    tokens[:, ::2] = 3
    _, out = corrupt(0.5, 0.2, 0.2, tokens)
    assert not out.selected[tokens == NONE].any()
    assert out.selected[tokens == 3].float().mean() == pytest.approx(0.9, abs=0.03)


def test_proportions_over_one_are_refused() -> None:
    with pytest.raises(HparamError, match="must be <= 1"):
        MaskingConfig(mask_prop=0.8, random_prop=0.2, keep_prop=0.1, mask_idx=MASK, none_idx=NONE)
