"""Masked-token corruption, done in torch on the training device from uint8 tokens.

Inputs are corrupted and targets are the original tokens (the seed had them swapped): each position is
selected with probability mask_prop + random_prop + keep_prop; a selected position's input becomes the
mask token, a random base, or stays as it is, in those proportions (its `kind`). Only selected positions
carry loss; evaluation reports each kind apart, since a kept position is trivially right.
Positions holding the none token (N, unknown) are never selected: there is nothing to predict there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqmodel.hparam import HparamError


@dataclass(frozen=True)
class MaskingConfig:
    mask_prop: float
    random_prop: float
    keep_prop: float
    mask_idx: int
    none_idx: int

    def __post_init__(self) -> None:
        total = self.mask_prop + self.random_prop + self.keep_prop
        if total > 1.0:
            raise HparamError(f"hparams 'mask_prop' + 'random_prop' + 'keep_prop' must be <= 1; got {total}")


# What a selected position's input became: the mask token, a random base, or itself (kept).
KINDS = ("masked", "random", "kept")
MASKED, RANDOM, KEPT = range(len(KINDS))


@dataclass(frozen=True)
class MaskedBatch:
    inputs: torch.Tensor  # [B, L] int64, corrupted
    targets: torch.Tensor  # [B, L] int64, the original tokens
    selected: torch.Tensor  # [B, L] bool, positions that carry loss
    kind: torch.Tensor  # [B, L] int64, MASKED, RANDOM or KEPT (meaningful where selected)


def mask_tokens(tokens: torch.Tensor, cfg: MaskingConfig, base_indices: torch.Tensor) -> MaskedBatch:
    """Corrupt `tokens` ([B, L] uint8) for masked-token prediction; `base_indices` ([K] int64) are the
    tokens a random replacement draws from. Uses the device's global RNG (seeded by seed_everything)."""
    targets = tokens.long()  # [B, L]
    u = torch.rand(targets.shape, device=targets.device)  # [B, L]
    masked = u < cfg.mask_prop
    randomized = (u >= cfg.mask_prop) & (u < cfg.mask_prop + cfg.random_prop)
    selected = (u < cfg.mask_prop + cfg.random_prop + cfg.keep_prop) & (targets != cfg.none_idx)
    random_tokens = base_indices[torch.randint(len(base_indices), targets.shape, device=targets.device)]
    inputs = torch.where(masked & selected, cfg.mask_idx, targets)
    inputs = torch.where(randomized & selected, random_tokens, inputs)
    kind = torch.where(masked, MASKED, torch.where(randomized, RANDOM, KEPT))  # [B, L]
    return MaskedBatch(inputs=inputs, targets=targets, selected=selected, kind=kind)
