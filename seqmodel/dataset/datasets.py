"""Map-style datasets of genome windows with batched fetch. Numpy only: they hand numpy arrays to the
collate function (`seqmodel.dataset.datamodule.collate`), which makes torch tensors.

A DataLoader passes the whole batch of sample ids to `__getitems__`, which fetches every window with one
fancy index into a sliding-window view of the memory-mapped genome: no per-sample Python work.
Sample ids are `epoch << 40 | index` (see `seqmodel.dataset.windows`); evaluation uses epoch 0.
Batches are dicts: "tokens" uint8 [B, seq_len], "index" int64 [B], "labels" float32 [B, n_labels]
when the dataset has labels, and "soft" bool [B, seq_len] (soft-masked positions) when asked for.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seqmodel.dataset.cache import Genome
from seqmodel.dataset.seq import DataError, Intervals
from seqmodel.dataset.windows import WindowSampler, centred_starts, reverse_flags, split_id, tile_windows

if TYPE_CHECKING:
    from seqmodel.dataset.variants import Variants


def chrom_indices(genome: Genome, intervals: Intervals) -> np.ndarray:
    try:
        return np.array([genome.index[c] for c in intervals.chrom], dtype=np.int64)
    except KeyError as err:  # read_bed checks this when given lengths; keep one line for direct use
        raise DataError(f"{intervals.path}: unknown sequence {err.args[0]!r}") from None


class _GenomeWindows:
    """Fetches `seq_len` windows from a genome; subclasses say where the windows lie."""

    def __init__(self, genome: Genome, seq_len: int, *, reverse_complement: bool = False, seed: int = 0,
                 soft_mask: bool = False) -> None:
        if seq_len < 1:
            raise ValueError("seq_len must be >= 1")
        if reverse_complement and not genome.alphabet.has_complement:
            raise ValueError("reverse_complement needs an alphabet with a complement")
        self.genome = genome
        self.seq_len = seq_len
        self.reverse_complement = reverse_complement
        self.seed = seed
        self.soft_mask = soft_mask
        self.labels: np.ndarray | None = None
        self._complement = genome.alphabet.complement_table
        self._none = genome.alphabet.none_idx
        self._view: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_view"] = None  # a view of the memory map: rebuilt, never pickled
        return state

    def _windows_view(self) -> np.ndarray | None:
        if self._view is None and len(self.genome.tokens) >= self.seq_len:
            self._view = sliding_window_view(self.genome.tokens, self.seq_len)
        return self._view

    def soft(self, chrom: np.ndarray, start: np.ndarray) -> np.ndarray:
        """bool [B, seq_len]: the soft-masked positions of the windows (padding: False)."""
        valid = np.minimum(self.genome.sizes[chrom] - start, self.seq_len)
        return self.genome.softmasked(self.genome.offsets[chrom] + start, self.seq_len) & (
            np.arange(self.seq_len) < valid[:, None])

    def fetch(self, chrom: np.ndarray, start: np.ndarray) -> np.ndarray:
        """uint8 [B, seq_len] tokens of the windows at (chrom index, start)."""
        flat = self.genome.offsets[chrom] + start
        valid = np.minimum(self.genome.sizes[chrom] - start, self.seq_len)
        view = self._windows_view()
        full = valid == self.seq_len
        if view is not None and full.all():
            return view[flat]  # one gather: B rows of seq_len contiguous bytes
        out = np.full((len(flat), self.seq_len), self._none, dtype=np.uint8)
        if view is not None and full.any():
            out[full] = view[flat[full]]
        tokens = self.genome.tokens
        for r in np.flatnonzero(~full):  # windows on sequences shorter than seq_len: padded
            out[r, : valid[r]] = tokens[flat[r] : flat[r] + valid[r]]
        return out

    def _flips(self, ids: np.ndarray) -> np.ndarray | None:
        """Which windows are read on the other strand (None: none are)."""
        if not self.reverse_complement:
            return None
        flip = reverse_flags(self.seed, ids)
        return flip if flip.any() else None

    def _locate(self, ids: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def __getitems__(self, ids: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        _, index = split_id(ids)
        chrom, start, rows = self._locate(ids, index)
        flip = self._flips(ids)
        tokens = self.fetch(chrom, start)
        if flip is not None:
            tokens[flip] = self._complement[tokens[flip, ::-1]]
        batch = {"tokens": tokens, "index": index}
        if self.soft_mask:
            soft = self.soft(chrom, start)
            if flip is not None:
                soft[flip] = soft[flip, ::-1]
            batch["soft"] = soft
        if self.labels is not None:
            batch["labels"] = self.labels[rows]  # labels are strand-independent
        return batch

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        batch = self.__getitems__([i])
        return {k: v[0] for k, v in batch.items()}


class FixedWindows(_GenomeWindows):
    """Windows at fixed places (evaluation tiles, or one centred window per labelled interval).

    Index j reads window j % n_windows, so an epoch may be longer than the list (`epoch_size`).
    """

    def __init__(
        self,
        genome: Genome,
        chrom: np.ndarray,
        start: np.ndarray,
        seq_len: int,
        *,
        labels: np.ndarray | None = None,
        reverse_complement: bool = False,
        seed: int = 0,
        epoch_size: int | None = None,
        soft_mask: bool = False,
    ) -> None:
        super().__init__(genome, seq_len, reverse_complement=reverse_complement, seed=seed, soft_mask=soft_mask)
        self.chrom = np.asarray(chrom, dtype=np.int64)
        self.start = np.asarray(start, dtype=np.int64)
        if len(self.chrom) == 0:
            raise ValueError("no windows")
        self.labels = None if labels is None else np.ascontiguousarray(labels, dtype=np.float32)
        self.epoch_size = epoch_size or len(self.chrom)

    @classmethod
    def tiled(cls, genome: Genome, intervals: Intervals, seq_len: int, **kw: Any) -> "FixedWindows":
        chrom = chrom_indices(genome, intervals)
        _, c, s = tile_windows(chrom, intervals.start, intervals.end, genome.sizes[chrom], seq_len)
        return cls(genome, c, s, seq_len, **kw)

    @classmethod
    def centred(
        cls, genome: Genome, intervals: Intervals, seq_len: int, labels: np.ndarray | None = None, **kw: Any
    ) -> "FixedWindows":
        chrom = chrom_indices(genome, intervals)
        s = centred_starts(intervals.start, intervals.end, genome.sizes[chrom], seq_len)
        return cls(genome, chrom, s, seq_len, labels=labels, **kw)

    def __len__(self) -> int:
        return self.epoch_size

    def take(self, rows: slice) -> "FixedWindows":
        """These rows of the windows alone, renumbered from 0 (an inference shard's; may be none)."""
        out = copy.copy(self)
        out.chrom, out.start = self.chrom[rows], self.start[rows]
        out.labels = None if self.labels is None else self.labels[rows]
        out.epoch_size = len(out.chrom)
        return out

    @property
    def n_windows(self) -> int:
        return len(self.chrom)

    def windows(self) -> list[tuple[str, int, int]]:
        """(chrom, start, end) of each window in index order (end is clipped to the sequence)."""
        end = np.minimum(self.start + self.seq_len, self.genome.sizes[self.chrom])
        names = self.genome.names
        return [(names[c], s, e) for c, s, e in zip(self.chrom.tolist(), self.start.tolist(), end.tolist())]

    def _locate(self, ids: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = index % len(self.chrom)
        return self.chrom[rows], self.start[rows], rows


class VariantWindows(FixedWindows):
    """The window centred on each variant, as the genome reads (the reference allele), with the variant's
    offset in it ("site", int64 [B]) and its REF and ALT tokens ("ref", "alt", uint8 [B]): what
    predict=variant_effect masks and scores."""

    def __init__(self, genome: Genome, variants: "Variants", seq_len: int) -> None:
        starts = centred_starts(variants.pos, variants.pos + 1, genome.sizes[variants.chrom], seq_len)
        super().__init__(genome, variants.chrom, starts, seq_len)
        self.site = (variants.pos - starts).astype(np.int64)
        self.ref, self.alt = variants.ref, variants.alt

    def __getitems__(self, ids: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        batch = super().__getitems__(ids)
        rows = batch["index"] % len(self.chrom)
        batch.update(site=self.site[rows], ref=self.ref[rows], alt=self.alt[rows])
        return batch


class SampledWindows(_GenomeWindows):
    """Training windows for pretraining: each sample id gives a random window inside the intervals (see
    `WindowSampler`), a pure function of (seed, id). `epoch_size` samples per epoch."""

    def __init__(
        self,
        genome: Genome,
        intervals: Intervals,
        seq_len: int,
        epoch_size: int,
        *,
        reverse_complement: bool = False,
        seed: int = 0,
        soft_mask: bool = False,
    ) -> None:
        super().__init__(genome, seq_len, reverse_complement=reverse_complement, seed=seed, soft_mask=soft_mask)
        chrom = chrom_indices(genome, intervals)
        self.sampler = WindowSampler(chrom, intervals.start, intervals.end, genome.sizes[chrom], seq_len)
        self.epoch_size = max(1, int(epoch_size))

    def __len__(self) -> int:
        return self.epoch_size

    def _locate(self, ids: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        chrom, start = self.sampler(self.seed, ids)
        return chrom, start, None
