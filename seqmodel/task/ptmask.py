"""Masked-token pretraining: predict the original tokens at corrupted positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn
from torchmetrics import MeanMetric

from seqmodel.model.base import TokenHead
from seqmodel.model.heads import MaskedTokenHead
from seqmodel.task.base import SeqTask
from seqmodel.task.loss import CrossEntropy
from seqmodel.task.masking import KINDS, MASKED, MaskingConfig, mask_tokens
from seqmodel.task.metrics import ConstantBaselineAccuracy


@dataclass(frozen=True)
class SelectedPositions:
    """One batch's selected positions, flattened: N of them, each with its row in the batch, its kind and
    its loss weight."""

    losses: torch.Tensor  # [N]
    correct: torch.Tensor  # [N] bool
    targets: torch.Tensor  # [N] int64
    rows: torch.Tensor  # [N] int64
    kinds: torch.Tensor  # [N] int64: MASKED, RANDOM or KEPT
    weights: torch.Tensor  # [N] float: repeat_weight at soft-masked positions, else 1

    def loss(self) -> torch.Tensor:
        """The objective: the weighted mean loss of the selected positions."""
        return (self.losses * self.weights).sum() / self.weights.sum().clamp_min(1e-12)

    def counted(self) -> "SelectedPositions":
        """The positions that count in evaluation: those of weight 1 (not soft-masked, or repeat_weight 1)."""
        chosen = self.weights == 1.0
        return SelectedPositions(self.losses[chosen], self.correct[chosen], self.targets[chosen], self.rows[chosen],
                                 self.kinds[chosen], self.weights[chosen])

    def of_kind(self, kind: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(losses, correct) of the positions of one kind."""
        chosen = self.kinds == kind
        return self.losses[chosen], self.correct[chosen]

    def per_row(self, size: int, kind: int) -> torch.Tensor:
        """[size, 3]: count, mean loss and accuracy of each row's positions of `kind` (NaN where none)."""
        chosen = self.kinds == kind
        rows, zeros = self.rows[chosen], torch.zeros(size, device=self.losses.device)
        count = zeros.index_add(0, rows, torch.ones_like(self.losses[chosen]))  # [size]
        loss = zeros.index_add(0, rows, self.losses[chosen]) / count  # [size]
        acc = zeros.index_add(0, rows, self.correct[chosen].float()) / count  # [size]
        return torch.stack([count, loss, acc], dim=1)


class PtMaskTask(SeqTask):
    """Loss on every selected position (the objective); accuracy and loss reported per kind of position.

    `masked_acc` counts the positions replaced by the mask token alone, as BERT-style evaluation does: a
    kept position is trivially right and a random one is a different question (`kept_acc`, `random_acc`).
    The base-frequency baseline (`baseline_acc`) is computed on the same masked positions. With
    `repeat_weight` below 1, soft-masked positions weigh that much in the loss and nothing in the metrics,
    as in GPN: repeats are easy to predict from their other copies and say little about function.
    """

    monitor = "val/loss"
    monitor_mode = "min"
    head_kind = TokenHead
    default_head = MaskedTokenHead
    default_loss = CrossEntropy

    def __init__(self, hparams: Mapping[str, Any], alphabet: Any, label_names: Optional[Sequence[str]] = None) -> None:
        super().__init__(hparams, alphabet)
        hp = self.hparams
        self.masking = MaskingConfig(
            mask_prop=hp["mask_prop"], random_prop=hp["random_prop"], keep_prop=hp["keep_prop"],
            mask_idx=alphabet.mask_idx, none_idx=alphabet.none_idx,
        )
        self.head = self.make_head(alphabet.n_tokens)
        self.loss = self.make_loss()
        self.register_buffer("base_indices", torch.tensor(alphabet.base_indices, dtype=torch.long), persistent=False)
        self.metrics = nn.ModuleDict()
        for stage in ("val", "test"):
            self.metrics[f"{stage}_loss"] = MeanMetric()
            self.metrics[f"{stage}_baseline"] = ConstantBaselineAccuracy(alphabet.n_tokens)
            for kind in KINDS:
                self.metrics[f"{stage}_{kind}_loss"] = MeanMetric()
                self.metrics[f"{stage}_{kind}_acc"] = MeanMetric()

    @property
    def prediction_columns(self) -> Sequence[str]:
        return tuple(column for kind in KINDS for column in (f"n_{kind}", f"{kind}_loss", f"{kind}_acc"))

    def _selected(self, batch: dict[str, torch.Tensor]) -> SelectedPositions:
        masked = mask_tokens(batch["tokens"], self.masking, self.base_indices)
        hidden = self.encoder(masked.inputs)  # [B, L, D]
        # The head sees every position and only its small [N, V] logits are gathered: a gathered [N, D]
        # hidden changes size every step, and those megabyte blocks fragment glibc's heap until the
        # process grows by megabytes a step (BENCHMARKS.md, "Memory over a long run").
        logits = self.head(hidden)[masked.selected].float()  # [N, V]
        targets = masked.targets[masked.selected]  # [N]
        losses = self.loss(logits, targets)
        weights = torch.ones_like(losses)
        if "soft" in batch:
            weights = torch.where(batch["soft"][masked.selected], float(self.hparams["repeat_weight"]), weights)
        return SelectedPositions(losses=losses, correct=logits.argmax(dim=-1) == targets, targets=targets,
                                 rows=masked.selected.nonzero()[:, 0], kinds=masked.kind[masked.selected],
                                 weights=weights)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        selected = self._selected(batch)
        loss = selected.loss()
        _, correct = selected.counted().of_kind(MASKED)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/masked_acc", correct.float().sum() / max(correct.numel(), 1))
        return loss

    def _evaluate(self, stage: str, batch: dict[str, torch.Tensor]) -> SelectedPositions:
        selected = self._selected(batch).counted()
        self.metrics[f"{stage}_loss"].update(selected.losses)
        self.log(f"{stage}/loss", self.metrics[f"{stage}_loss"], prog_bar=True)
        for kind_index, kind in enumerate(KINDS):
            losses, correct = selected.of_kind(kind_index)
            if losses.numel():
                self.metrics[f"{stage}_{kind}_loss"].update(losses)
                self.metrics[f"{stage}_{kind}_acc"].update(correct.float())
                self.log(f"{stage}/{kind}_loss", self.metrics[f"{stage}_{kind}_loss"])
                self.log(f"{stage}/{kind}_acc", self.metrics[f"{stage}_{kind}_acc"], prog_bar=kind == "masked")
        self.metrics[f"{stage}_baseline"].update(selected.targets[selected.kinds == MASKED])
        self.log(f"{stage}/baseline_acc", self.metrics[f"{stage}_baseline"])
        return selected

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        selected = self._evaluate("test", batch)
        size = batch["tokens"].shape[0]
        values = torch.cat([selected.per_row(size, kind) for kind in range(len(KINDS))], dim=1)  # [B, 9]
        return {"index": batch["index"], "values": values}
