"""`predict=variant_effect`: zero-shot scores of SNVs by a masked-token model (GPN's method).

Each variant is read in the `seq_len` window centred on it, with the variant's position masked; the
score is the log-likelihood ratio log p(alt) - log p(ref) of the model's prediction there. Negative:
the model finds the alternative allele less likely than the reference. The normaliser of the softmax
cancels, so the score is the difference of the two logits whatever else the vocabulary holds. With
`rc_average`, the score is the mean over both strands (the window reverse-complemented, the variant's
position mirrored and its alleles complemented).

`variant_effects.tsv` has one row per scored SNV, in VCF order: chrom, pos (1-based, as in the VCF),
id, ref, alt, llr. It appears complete at the end, or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch import nn

from seqmodel.outputs.atomic import atomic_open
from seqmodel.task.strands import reverse_complement

COLUMNS = ("chrom", "pos", "id", "ref", "alt", "llr")


def llr(logits: torch.Tensor, ref: torch.Tensor, alt: torch.Tensor) -> torch.Tensor:
    """[B] log p(alt) - log p(ref) from [B, V] logits at the variants' positions."""
    log_probs = logits.float().log_softmax(dim=-1)
    return (log_probs.gather(1, alt.long()[:, None]) - log_probs.gather(1, ref.long()[:, None]))[:, 0]


class VariantScorer(pl.LightningModule):
    """A masked-token model's encoder and token head, scoring the variants of VariantWindows batches."""

    def __init__(self, encoder: nn.Module, head: nn.Module, mask_idx: int, complement: Sequence[int],
                 both_strands: bool) -> None:
        super().__init__()
        self.encoder, self.head, self.mask_idx, self.both_strands = encoder, head, mask_idx, both_strands
        self.register_buffer("complement", torch.as_tensor(complement, dtype=torch.long), persistent=False)

    def strand_llr(self, tokens: torch.Tensor, site: torch.Tensor, ref: torch.Tensor,
                   alt: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        masked = tokens.clone()
        masked[rows, site] = self.mask_idx
        logits = self.head(self.encoder(masked))[rows, site]  # [B, V]: the head sees every position
        return llr(logits, ref, alt)

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        tokens, site = batch["tokens"].long(), batch["site"].long()
        ref, alt = batch["ref"].long(), batch["alt"].long()
        score = self.strand_llr(tokens, site, ref, alt)
        if self.both_strands:
            other = reverse_complement(tokens, self.complement)
            mirrored = tokens.shape[1] - 1 - site
            score = (score + self.strand_llr(other, mirrored, self.complement[ref], self.complement[alt])) / 2
        return {"index": batch["index"], "llr": score}


class VariantEffectWriter(BasePredictionWriter):
    """Collects each variant's score and writes `variant_effects.tsv` in VCF order at the end."""

    def __init__(self, path: Path, chrom: Sequence[str], pos: np.ndarray, ids: Sequence[str],
                 ref: Sequence[str], alt: Sequence[str]) -> None:
        super().__init__(write_interval="batch")
        self.path, self.chrom, self.pos, self.ids, self.ref, self.alt = path, chrom, pos, ids, ref, alt
        self.scores: dict[int, float] = {}

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            raise ValueError("predict=variant_effect runs on one device; spread a large run over shards instead")
        self.scores = {}

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Optional[Sequence[int]], batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        self.scores.update(zip(prediction["index"].tolist(), prediction["llr"].tolist()))

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.finish()

    def finish(self) -> None:
        """The file, from the scores collected (an empty shard's has its header alone)."""
        with atomic_open(self.path) as handle:
            handle.write("\t".join(COLUMNS) + "\n")
            for i in sorted(self.scores):
                row = (self.chrom[i], str(int(self.pos[i]) + 1), self.ids[i], self.ref[i], self.alt[i],
                       f"{self.scores[i]:.6g}")
                handle.write("\t".join(row) + "\n")
