"""AdamW with linear warmup and an optional decay, shared by the tasks and the bare-loop benchmarks so both
train alike."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import nn

from seqmodel.hparam import HparamError


def lr_factor(warmup: int, decay: str, total_steps: float | None) -> Callable[[int], float]:
    """The learning rate's multiplier at each optimizer step: a linear warmup to 1 over `warmup` steps,
    then `decay` from 1 to 0 over the steps left to `total_steps` (constant: 1 throughout)."""
    if decay != "constant" and (total_steps is None or math.isinf(total_steps)):
        raise HparamError(f"hparam 'lr_decay': {decay} decays to 0 at the run's last step, so it needs "
                          "max_steps or max_epochs")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if decay == "constant":
            return 1.0
        assert total_steps is not None
        progress = min(1.0, (step - warmup) / max(1.0, total_steps - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if decay == "cosine" else 1.0 - progress

    return factor


def build_optimizer(
    module: nn.Module, hparams: Mapping[str, Any], total_steps: float | None = None
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW that decays only matrices (not biases and norms), and a per-step schedule (`lr_factor`);
    `total_steps` is the run's optimizer steps, which a decay needs."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": hparams["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=hparams["lr"])
    factor = lr_factor(hparams["warmup_steps"], hparams["lr_decay"], total_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
