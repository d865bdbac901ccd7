"""Labelled intervals for fine-tuning (multi-label binary targets, DeepSEA-style). Numpy only.

Format: a tab-separated BED file whose header line names the columns,

    #chrom	start	end	CTCF	H3K4me3	DNase
    chr1	10000	10200	1	0	1

Columns 1-3 are BED coordinates (0-based, half-open); every further column is one label, 0 or 1,
named in the header (the header is required; names must be distinct). Track, browser, other '#'
lines and blank lines are skipped. Each interval is one sample: the `seq_len` window centred on it. A
fine-tuned model also predicts on a plain BED file (no header, no labels): its test mode then scores
nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from seqmodel.dataset.seq import (
    DataError,
    Intervals,
    _is_skipped,
    _parse_coords,
    check_inside,
    intervals_of_rows,
    open_text,
)

HEADER_EXAMPLE = "#chrom<TAB>start<TAB>end<TAB><label names...>"


def _header_fields(line: str) -> list[str] | None:
    stripped = line.strip()
    if not stripped.startswith("#"):
        return None
    fields = stripped[1:].strip().split("\t") if "\t" in stripped else stripped[1:].split()
    fields = [f.strip() for f in fields]
    if len(fields) >= 3 and fields[0].lower() in ("chrom", "chr") and fields[1].lower() == "start":
        return fields
    return None


def _check_names(path: Path, lineno: int, names: list[str]) -> list[str]:
    if not names:
        raise DataError(f"{path}:{lineno}: the header names no label columns after 'chrom start end'")
    seen: set[str] = set()
    for name in names:
        if not name:
            raise DataError(f"{path}:{lineno}: empty label name in the header")
        if name in seen:
            raise DataError(f"{path}:{lineno}: label '{name}' named twice in the header")
        seen.add(name)
    return names


def label_header(path: str | os.PathLike[str]) -> list[str] | None:
    """Label names from the header of a labelled-interval file, None when it has no header (reads only up
    to the header)."""
    path = Path(path)
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            fields = _header_fields(line)
            if fields is not None:
                return _check_names(path, lineno, fields[3:])
            if not _is_skipped(line):
                break
    return None


def read_label_names(path: str | os.PathLike[str]) -> list[str]:
    """Label names from the header of a labelled-interval file, which must have one."""
    names = label_header(path)
    if names is not None:
        return names
    raise DataError(
        f"{path}: no header line '{HEADER_EXAMPLE}' before the first interval; fine-tuning needs "
        "labelled intervals (see data/README.md)"
    )


def read_labelled_bed(
    path: str | os.PathLike[str], lengths: Mapping[str, int] | None = None
) -> tuple[Intervals, np.ndarray, list[str]]:
    """(intervals, labels float32 [n, n_labels], label names). Errors name file:line."""
    path = Path(path)
    names: list[str] | None = None
    coords: list[tuple[str, int, int, int]] = []
    rows: list[list[str]] = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if names is None:
                fields = _header_fields(line)
                if fields is not None:
                    names = _check_names(path, lineno, fields[3:])
                    continue
            if _is_skipped(line):
                continue
            if names is None:
                raise DataError(
                    f"{path}:{lineno}: interval before the header line '{HEADER_EXAMPLE}'; fine-tuning "
                    "needs labelled intervals (see data/README.md)"
                )
            fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            if len(fields) != 3 + len(names):
                raise DataError(
                    f"{path}:{lineno}: expected {3 + len(names)} columns (chrom start end and "
                    f"{len(names)} labels), got {len(fields)}"
                )
            chrom, start, end = _parse_coords(path, lineno, fields)
            check_inside(path, lineno, chrom, end, lengths)
            values = [v.strip() for v in fields[3:]]
            for name, value in zip(names, values):
                if value not in ("0", "1"):
                    raise DataError(f"{path}:{lineno}: label '{name}' must be 0 or 1, got {value!r}")
            coords.append((chrom, start, end, lineno))
            rows.append(values)
    if names is None:
        raise DataError(f"{path}: no header line '{HEADER_EXAMPLE}'")
    intervals = intervals_of_rows(path, coords)
    labels = (np.array(rows) == "1").astype(np.float32)
    return intervals, labels, names
