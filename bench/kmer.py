"""The k-mer baselines a DNA model must beat to have learned more than local composition.

Pretraining: bidirectional k-mer context models predict a base from the k bases on each side of it, by
counting. k = 0 is the base-frequency model. Counts are taken on both strands of the training sequences;
a context is smoothed towards the base frequencies (one pseudo-count in all), so an unseen context
predicts the commonest base. Fine-tuning: a logistic regression on an interval's k-mer spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

N_CODE = 4  # any base other than A, C, G, T
_CODES = np.full(256, N_CODE, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODES[_b] = _CODES[_b + 32] = _i


def encode(seq: bytes | bytearray) -> np.ndarray:
    """A, C, G, T (either case) as 0-3; anything else as N_CODE."""
    return _CODES[np.frombuffer(bytes(seq), dtype=np.uint8)]


def reverse_complement(codes: np.ndarray) -> np.ndarray:
    rc = (3 - codes[::-1]).astype(np.uint8)
    rc[codes[::-1] == N_CODE] = N_CODE
    return rc


def _keys(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(context index, centre base) of every position with k clean bases on each side and a clean centre."""
    n = len(codes) - 2 * k
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ctx = np.zeros(n, np.int64)
    clean = codes[k:k + n] != N_CODE
    for off in [*range(k), *range(k + 1, 2 * k + 1)]:
        part = codes[off:off + n]
        clean &= part != N_CODE
        ctx = ctx * 4 + np.minimum(part, 3)
    return ctx[clean], codes[k:k + n][clean].astype(np.int64)


@dataclass
class KmerModel:
    k: int
    counts: np.ndarray  # (4 ** (2k), 4)

    @classmethod
    def fit(cls, sequences: list[np.ndarray], k: int) -> "KmerModel":
        keys = [ctx * 4 + centre for codes in sequences for strand in (codes, reverse_complement(codes))
                for ctx, centre in [_keys(strand, k)]]
        counts = np.bincount(np.concatenate(keys), minlength=4 ** (2 * k) * 4)
        return cls(k, counts.reshape(-1, 4))

    def evaluate(self, sequences: list[np.ndarray], margin: int = 0) -> tuple[float, float, int]:
        """(accuracy, mean cross-entropy in nats, positions) over the clean positions of `sequences` at least
        `margin` from either end, so that models of different k are scored on the same positions."""
        trim = max(margin, self.k) - self.k
        prior = self.counts.sum(axis=0) / self.counts.sum()
        right = loss = total = 0.0
        for codes in sequences:
            ctx, centre = _keys(codes[trim:len(codes) - trim], self.k)
            counts = self.counts[ctx]  # [n, 4]
            probs = (counts + prior) / (counts.sum(axis=1, keepdims=True) + 1.0)
            right += float((probs.argmax(axis=1) == centre).sum())
            loss -= float(np.log(probs[np.arange(len(centre)), centre]).sum())
            total += len(centre)
        return right / total, loss / total, int(total)


def kmer_spectrum(codes: np.ndarray, k_max: int) -> np.ndarray:
    """The k-mer logistic regression's features: the frequency of every k-mer for k = 1..k_max, counted on
    both strands (an interval's orientation carries no meaning), one vector of sum(4**k) values."""
    parts = []
    for k in range(1, k_max + 1):
        n = len(codes) - k + 1
        counts = np.zeros(4 ** k)
        for strand in (codes, reverse_complement(codes)):
            index, clean = np.zeros(max(n, 0), np.int64), np.ones(max(n, 0), bool)
            for off in range(k):
                part = strand[off:off + n]
                clean &= part != N_CODE
                index = index * 4 + np.minimum(part, 3)
            counts += np.bincount(index[clean], minlength=4 ** k)
        parts.append(counts / max(counts.sum(), 1.0))
    return np.concatenate(parts)


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float,
                        steps: int = 200) -> Callable[[np.ndarray], np.ndarray]:
    """An L2-regularised logistic regression on standardised features, fitted full-batch by L-BFGS; returns
    the function from features to probabilities."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-8
    features = torch.tensor((x - mean) / std, dtype=torch.float32)
    targets = torch.tensor(y, dtype=torch.float32)
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(features @ weight + bias, targets) \
            + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.sigmoid(torch.tensor((z - mean) / std, dtype=torch.float32) @ weight + bias).numpy()

    return predict


def auroc(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(binary_auroc(torch.tensor(probs), torch.tensor(labels, dtype=torch.long)))
