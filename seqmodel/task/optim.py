"""AdamW with linear warmup, shared by the tasks and the bare-loop benchmark so both train alike."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn


def build_optimizer(
    module: nn.Module, hparams: Mapping[str, Any]
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW that decays only matrices (not biases and norms), and a per-step linear warmup to `lr`."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": hparams["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=hparams["lr"])
    warmup = hparams["warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
    )
    return optimizer, scheduler
