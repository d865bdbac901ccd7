"""Window geometry, counter-based randomness and per-rank index shards. Numpy only, no torch.

Conventions
- A window is `seq_len` tokens at (chrom, start); when a sequence is shorter than `seq_len`, the window
  starts at 0 and is padded at the end with the `none` token.
- Sample ids carry the epoch: `id = epoch << EPOCH_SHIFT | index`. Everything random about a sample
  (where a training window lies, whether it is reverse-complemented) is a hash of (seed, id), so it is a
  pure function of (seed, epoch, index): the same in every process, worker and rank, and on resume.
- Intervals shorter than `seq_len` give the window centred on the interval, clipped to lie inside the
  sequence (they still count: one possible window each, weight 1 when sampling).
"""

from __future__ import annotations

import numpy as np

EPOCH_SHIFT = 40  # indices below 2**40 (10**12) per epoch
INDEX_MASK = (1 << EPOCH_SHIFT) - 1

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> _U64(30))) * _M1
    x = (x ^ (x >> _U64(27))) * _M2
    return x ^ (x >> _U64(31))


def hash64(seed: int, ids: np.ndarray, stream: int = 0) -> np.ndarray:
    """Independent-looking uint64 per (seed, stream, id); vectorised, deterministic everywhere."""
    key = _splitmix(np.array([(seed * 1_000_003 + stream) & 0xFFFFFFFFFFFFFFFF], dtype=_U64))
    with np.errstate(over="ignore"):
        return _splitmix(np.asarray(ids).astype(_U64) ^ key)


def sample_id(epoch: int, index: np.ndarray | int) -> np.ndarray:
    return (np.int64(epoch) << np.int64(EPOCH_SHIFT)) | np.asarray(index, dtype=np.int64)


def split_id(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> EPOCH_SHIFT, ids & INDEX_MASK


def reverse_flags(seed: int, ids: np.ndarray) -> np.ndarray:
    """Reverse-complement this sample? (p = 0.5, a pure function of (seed, id))."""
    return (hash64(seed, ids, stream=1) >> _U64(63)).astype(bool)


# --------------------------------------------------------------------------------------------------
# Fixed windows


def centred_starts(start: np.ndarray, end: np.ndarray, chrom_len: np.ndarray, seq_len: int) -> np.ndarray:
    """Start of the `seq_len` window centred on each interval, clipped inside its sequence."""
    centre = (start + end) // 2
    s = centre - seq_len // 2
    return np.clip(s, 0, np.maximum(chrom_len - seq_len, 0)).astype(np.int64)


def tile_windows(
    chrom: np.ndarray, start: np.ndarray, end: np.ndarray, chrom_len: np.ndarray, seq_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic tiling: (interval row, chrom, window start) covering every interval.

    An interval of length L >= seq_len gives ceil(L / seq_len) windows at start, start + seq_len, ...;
    the last one is shifted left to end at the interval's end (it overlaps its neighbour) so no window
    leaves the interval. A shorter interval gives its centred window.
    """
    length = end - start
    counts = np.where(length >= seq_len, -(-length // seq_len), 1)
    rows = np.repeat(np.arange(len(start)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(len(rows)) - np.repeat(first, counts)
    tiled = np.minimum(start[rows] + k * seq_len, end[rows] - seq_len)
    short = length[rows] < seq_len
    centred = centred_starts(start[rows], end[rows], chrom_len[rows], seq_len)
    return rows, chrom[rows], np.where(short, centred, tiled).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Sampled windows


class WindowSampler:
    """Random windows inside intervals: interval chosen with probability proportional to the number of
    window positions it offers (length - seq_len + 1, or 1 if shorter), position uniform inside it."""

    def __init__(
        self, chrom: np.ndarray, start: np.ndarray, end: np.ndarray, chrom_len: np.ndarray, seq_len: int
    ) -> None:
        length = end - start
        long = length >= seq_len
        self.first = np.where(long, start, centred_starts(start, end, chrom_len, seq_len)).astype(np.int64)
        self.count = np.where(long, length - seq_len + 1, 1).astype(np.int64)
        self.chrom = np.asarray(chrom, dtype=np.int64)
        self.cum = np.cumsum(self.count)
        self.total = int(self.cum[-1])

    def __call__(self, seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chrom, start) of the windows of these sample ids."""
        u = (hash64(seed, ids, stream=0) % _U64(self.total)).astype(np.int64)
        row = np.searchsorted(self.cum, u, side="right")
        offset = u - (self.cum[row] - self.count[row])
        return self.chrom[row], self.first[row] + offset


# --------------------------------------------------------------------------------------------------
# Shards


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """0..n-1, permuted by (seed, epoch) if `shuffle`."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, 0x5EC]).permutation(n).astype(np.int64)


def inference_slice(n: int, shard: int, shards: int) -> slice:
    """The rows of `n` that shard `shard` of `shards` predicts: contiguous, so the shards' outputs in shard
    order are a one-process run's row for row, and balanced (sizes differ by at most one; when shards
    outnumber rows, some are empty)."""
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} outside 0..{shards - 1}")
    return slice(shard * n // shards, (shard + 1) * n // shards)


def shard(
    n: int, rank: int, world_size: int, *, seed: int = 0, epoch: int = 0, shuffle: bool = False,
    pad: str = "fresh",
) -> np.ndarray:
    """The indices rank `rank` of `world_size` reads in an epoch of n samples (equal counts per rank).

    Rank r takes positions r, r + W, ... of the (possibly shuffled) order. To make counts equal the
    order is padded to a multiple of W: pad="fresh" appends new indices n, n+1, ... (training: every
    index is read once, ranks are disjoint); pad="repeat" repeats indices from the start (evaluation:
    windows are fixed, at most W-1 are read twice, the batch's `index` tells duplicates apart).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    order = epoch_order(n, seed, epoch, shuffle)
    total = -(-n // world_size) * world_size if n else 0
    extra = total - n
    if extra:
        if pad == "fresh":
            order = np.concatenate([order, np.arange(n, total, dtype=np.int64)])
        elif pad == "repeat":
            order = np.concatenate([order, np.resize(order, extra)])
        else:
            raise ValueError(f"pad must be 'fresh' or 'repeat', got {pad!r}")
    return order[rank::world_size]
