"""Sequence primitives: the token alphabet, FASTA and BED readers. Numpy only, no torch.

Every error caused by bad input is a `DataError` whose message is one line naming the file and the line
(or record), so `python -m seqmodel.run` can print it instead of a traceback.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Mapping, Sequence

import numpy as np

from seqmodel.errors import UserError


class DataError(UserError, ValueError):
    """Bad input data (FASTA, BED, labels); the message is one line naming the file and line or record."""


# --------------------------------------------------------------------------------------------------
# Alphabet


class Alphabet:
    """Tokens of a sequence: control tokens first (index 0..), then the sequence tokens.

    Nothing is assumed about the characters or the length of a token: `Alphabet(["AAA", "AAC", ...])`
    is a codon alphabet. Text that matches no token encodes as the `none` control token, one token per
    unmatched character. When every token is one byte, encoding is a single lookup in a 256-entry table
    over the bytes (vectorised); tokens of one fixed length are matched with a sorted search, and tokens
    of mixed length by greedy longest match (slow, Python).

    Args:
        tokens: the sequence tokens, distinct non-empty strings.
        controls: names of the control tokens; must include "none" (unknown text maps to it).
        control_symbols: how `decode` writes each control token (default "<name>").
        case_sensitive: if False, text is matched ignoring ASCII case (soft-masked FASTA).
        complement: token -> complementary token, for `reverse_complement`; controls are their own
            complement.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        *,
        controls: Sequence[str] = ("none", "mask"),
        control_symbols: Mapping[str, str] | None = None,
        case_sensitive: bool = True,
        complement: Mapping[str, str] | None = None,
    ) -> None:
        tokens = [str(t) for t in tokens]
        controls = [str(c) for c in controls]
        if "none" not in controls:
            raise ValueError("an Alphabet needs a 'none' control token")
        if not tokens or any(not t for t in tokens):
            raise ValueError("an Alphabet needs non-empty tokens")
        if not case_sensitive:
            tokens = [t.upper() for t in tokens]
        if len(set(tokens)) != len(tokens) or len(set(controls)) != len(controls):
            raise ValueError("Alphabet tokens and controls must be distinct")
        if len(tokens) + len(controls) > 256:
            raise ValueError("an Alphabet holds at most 256 tokens (they are stored as uint8)")
        self.controls: tuple[str, ...] = tuple(controls)
        self.tokens: tuple[str, ...] = tuple(tokens)
        self.case_sensitive = case_sensitive
        symbols = dict(control_symbols or {})
        self._symbols: list[str] = [symbols.get(c, f"<{c}>") for c in controls] + list(tokens)
        self._index: dict[str, int] = {t: len(controls) + i for i, t in enumerate(tokens)}
        self._lengths = sorted({len(t) for t in tokens}, reverse=True)

        # Byte lookup table (single-byte ASCII tokens), or sorted keys for fixed-length ASCII tokens.
        self._lut: np.ndarray | None = None
        self._fixed_keys: np.ndarray | None = None
        if self._lengths == [1] and all(t.isascii() for t in tokens):
            lut = np.full(256, self.none_idx, dtype=np.uint8)
            for tok, idx in self._index.items():
                lut[ord(tok)] = idx
                if not case_sensitive:
                    lut[ord(tok.lower())] = idx
            self._lut = lut
        elif len(self._lengths) == 1 and all(t.isascii() for t in tokens):
            keys = sorted(self._index)
            self._fixed_keys = np.array([k.encode("ascii") for k in keys], dtype=f"S{self._lengths[0]}")
            self._fixed_vals = np.array([self._index[k] for k in keys], dtype=np.uint8)

        comp = np.arange(self.n_tokens, dtype=np.uint8)
        self.has_complement = complement is not None
        if complement is not None:
            for a, b in complement.items():
                a, b = (a, b) if case_sensitive else (a.upper(), b.upper())
                if a not in self._index or b not in self._index:
                    raise ValueError(f"complement {a!r} -> {b!r}: not tokens of the alphabet")
                comp[self._index[a]] = self._index[b]
        self.complement_table: np.ndarray = comp  # token index -> complementary token index

    # -- the DNA alphabet ------------------------------------------------------------------------------
    @classmethod
    def dna(cls) -> "Alphabet":
        """A, C, G, T in any case; N and every other character map to `none` (decoded as "N")."""
        return cls(
            "ACGT",
            controls=("none", "mask"),
            control_symbols={"none": "N", "mask": "?"},
            case_sensitive=False,
            complement={"A": "T", "C": "G", "G": "C", "T": "A"},
        )

    # -- indices ---------------------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        return len(self.controls) + len(self.tokens)

    def control_idx(self, name: str) -> int:
        try:
            return self.controls.index(name)
        except ValueError:
            raise KeyError(f"alphabet has no control token {name!r}") from None

    @property
    def none_idx(self) -> int:
        return self.control_idx("none")

    @property
    def mask_idx(self) -> int:
        return self.control_idx("mask")

    @property
    def base_indices(self) -> list[int]:
        """Indices of the sequence (non-control) tokens, e.g. for random replacement in masking."""
        return list(range(len(self.controls), self.n_tokens))

    def __len__(self) -> int:
        return self.n_tokens

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Alphabet) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"Alphabet(tokens={list(self.tokens)!r}, controls={list(self.controls)!r})"

    def fingerprint(self) -> str:
        """Text that changes whenever encoding would; part of the genome cache key."""
        return repr((self.controls, self.tokens, self.case_sensitive, self.complement_table.tolist()))

    # -- encoding --------------------------------------------------------------------------------------
    @property
    def byte_table(self) -> np.ndarray | None:
        """The 256-entry byte -> token table when every token is one ASCII byte, else None."""
        return self._lut

    def encode(self, text: str | bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
        """Text -> uint8 token indices; unknown characters become `none` (one per character).

        Bytes are taken as ASCII/UTF-8 text. With one-byte tokens this is one table lookup.
        """
        if isinstance(text, np.ndarray):
            text = text.astype(np.uint8, copy=False).tobytes()
        if self._lut is not None:
            if isinstance(text, str):
                if text.isascii():
                    return self._lut[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
                codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
                return self._lut[np.minimum(codes, 255)]  # non-ASCII -> lut[255] == none
            return self._lut[np.frombuffer(text, dtype=np.uint8)]
        src = text if isinstance(text, str) else bytes(text).decode("utf-8", errors="replace")
        if not self.case_sensitive:
            src = src.upper()
        return self._encode_tokens(src)

    def _encode_tokens(self, src: str) -> np.ndarray:
        """Multi-character tokens: vectorised when the text is whole fixed-length tokens, else greedy
        longest match."""
        if self._fixed_keys is not None and src.isascii():
            k = self._lengths[0]
            if len(src) % k == 0:
                chunks = np.frombuffer(src.encode("ascii"), dtype=f"S{k}")
                pos = np.minimum(np.searchsorted(self._fixed_keys, chunks), len(self._fixed_keys) - 1)
                if (self._fixed_keys[pos] == chunks).all():
                    return self._fixed_vals[pos]
        out: list[int] = []
        i, n = 0, len(src)
        while i < n:
            for k in self._lengths:
                idx = self._index.get(src[i : i + k])
                if idx is not None:
                    out.append(idx)
                    i += k
                    break
            else:
                out.append(self.none_idx)
                i += 1
        return np.array(out, dtype=np.uint8)

    def decode(self, tokens: Sequence[int] | np.ndarray) -> str:
        """Token indices -> text; control tokens are written as their symbols."""
        arr = np.asarray(tokens).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_tokens):
            raise ValueError(f"token index out of range 0..{self.n_tokens - 1}")
        return "".join(self._symbols[i] for i in arr.tolist())

    def reverse_complement(self, tokens: np.ndarray) -> np.ndarray:
        """The other strand: reversed along the last axis and complemented (controls unchanged)."""
        if not self.has_complement:
            raise ValueError("this alphabet has no complement")
        return self.complement_table[np.asarray(tokens)[..., ::-1]]


# --------------------------------------------------------------------------------------------------
# Files


def open_input(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a user's input file for binary reading; failures become one-line `DataError`s."""
    path = Path(path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None


def open_maybe_gzip(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open for binary reading, decompressing gzip/bgzip (detected by magic bytes, not the name)."""
    raw = open_input(path)
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        raw.close()  # a GzipFile given a file object would leave it open when closed
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return raw


def split_paths(seq_file: str | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """`seq_file` as a list: a comma-separated string or a sequence of paths."""
    if isinstance(seq_file, (str, os.PathLike)):
        parts = [p.strip() for p in os.fspath(seq_file).split(",")]
    else:
        parts = [os.fspath(p).strip() for p in seq_file]
    paths = [Path(p) for p in parts if p]
    if not paths:
        raise DataError("seq_file: no FASTA file given")
    return paths


_CHUNK = 1 << 24  # 16 MiB of text per read
_STRIP = b"\r\n\t "


@dataclass(frozen=True)
class FastaRecord:
    """A record's place in its file, for error messages."""

    name: str
    path: Path
    line: int


def _line_blocks(path: Path, chunk_size: int) -> Iterator[bytes]:
    """The decompressed file in blocks of whole lines (each ends with a newline)."""
    with open_maybe_gzip(path) as fh:
        pending = b""
        while True:
            try:
                chunk = fh.read(chunk_size)
            except (OSError, EOFError, gzip.BadGzipFile) as err:
                raise DataError(f"{path}: cannot decompress ({err})") from None
            if not chunk:
                if pending:
                    yield pending + b"\n"
                return
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            pending = data[cut:]
            if cut:
                yield data[:cut]


def iter_fasta(path: str | os.PathLike[str], chunk_size: int = _CHUNK) -> Iterator[tuple[FastaRecord, bytes]]:
    """Stream a FASTA file as (record, sequence text) pieces, line breaks and blanks removed.

    Each record first comes with b"" (so empty records are seen), then with its sequence in pieces of
    at most about `chunk_size` bytes: memory does not grow with the length of a chromosome. The name
    of a record is the first word of its header line.
    """
    path = Path(path)
    record: FastaRecord | None = None
    line_no = 1  # line number at the start of the current block
    for data in _line_blocks(path, chunk_size):
        pos, n = 0, len(data)
        counted, line_at = 0, line_no  # incremental line count inside the block
        while pos < n:
            if data[pos] == 0x3E:  # ">"
                line_at += data.count(b"\n", counted, pos)
                counted = pos
                eol = data.index(b"\n", pos)
                words = data[pos + 1 : eol].decode("utf-8", errors="replace").split()
                if not words:
                    raise DataError(f"{path}:{line_at}: empty FASTA header (a record needs a name after '>')")
                record = FastaRecord(words[0], path, line_at)
                yield record, b""
                pos = eol + 1
                continue
            nxt = data.find(b"\n>", pos)
            end = n if nxt < 0 else nxt + 1
            part = data[pos:end].translate(None, _STRIP)
            if part:
                if record is None:
                    line_at += data.count(b"\n", counted, pos)
                    raise DataError(f"{path}:{line_at}: sequence before the first '>' header line")
                yield record, part
            pos = end
        line_no += data.count(b"\n")
    if record is None:
        raise DataError(f"{path}: no FASTA records (expected a header line starting with '>')")


def iter_fasta_files(
    seq_file: str | Sequence[str | os.PathLike[str]], chunk_size: int = _CHUNK
) -> Iterator[tuple[FastaRecord, bytes]]:
    """`iter_fasta` over several files; a record name seen twice is an error naming both places."""
    seen: dict[str, FastaRecord] = {}
    for path in split_paths(seq_file):
        for record, part in iter_fasta(path, chunk_size):
            if not part:
                first = seen.get(record.name)
                if first is not None:
                    raise DataError(
                        f"duplicate FASTA record '{record.name}': {first.path}:{first.line} and "
                        f"{record.path}:{record.line}"
                    )
                seen[record.name] = record
            yield record, part


def read_fasta(
    seq_file: str | Sequence[str | os.PathLike[str]], alphabet: Alphabet | None = None
) -> dict[str, np.ndarray]:
    """Read and encode whole FASTA files into memory: name -> uint8 tokens. For small genomes and
    tests; training uses `seqmodel.dataset.cache.Genome`, which encodes once into a memory-mapped cache."""
    alphabet = alphabet or Alphabet.dna()
    parts: dict[str, list[np.ndarray]] = {}
    for record, part in iter_fasta_files(seq_file):
        parts.setdefault(record.name, []).append(alphabet.encode(part))
    return {name: np.concatenate(p) for name, p in parts.items()}


# --------------------------------------------------------------------------------------------------
# BED


@dataclass
class Intervals:
    """Intervals on named sequences, 0-based half-open; `line` is the source line (1-based) of each."""

    chrom: list[str]
    start: np.ndarray  # int64 [n]
    end: np.ndarray  # int64 [n]
    path: str = ""
    line: np.ndarray | None = None  # int64 [n]

    def __len__(self) -> int:
        return len(self.chrom)

    @property
    def lengths(self) -> np.ndarray:
        return self.end - self.start

    def as_tuples(self) -> list[tuple[str, int, int]]:
        return list(zip(self.chrom, self.start.tolist(), self.end.tolist()))


def _is_skipped(line: str) -> bool:
    stripped = line.strip()
    return (
        not stripped
        or stripped.startswith("#")
        or stripped.startswith("track")
        or stripped.startswith("browser")
    )


def _parse_coords(path: Path, lineno: int, fields: list[str]) -> tuple[str, int, int]:
    if len(fields) < 3:
        raise DataError(f"{path}:{lineno}: expected at least 3 columns (chrom start end), got {len(fields)}")
    chrom = fields[0]
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise DataError(
            f"{path}:{lineno}: start and end must be integers, got {fields[1]!r} {fields[2]!r}"
        ) from None
    if start < 0:
        raise DataError(f"{path}:{lineno}: start {start} is negative")
    if end <= start:
        raise DataError(f"{path}:{lineno}: end {end} must be greater than start {start}")
    return chrom, start, end


def check_inside(
    path: Path | str, lineno: int, chrom: str, end: int, lengths: Mapping[str, int] | None
) -> None:
    if lengths is None:
        return
    size = lengths.get(chrom)
    if size is None:
        raise DataError(f"{path}:{lineno}: unknown sequence '{chrom}' (not in the FASTA file(s))")
    if end > size:
        raise DataError(f"{path}:{lineno}: end {end} is past the end of '{chrom}' (length {size})")


def open_text(path: str | os.PathLike[str]) -> io.TextIOWrapper:
    return io.TextIOWrapper(open_maybe_gzip(path), encoding="utf-8", errors="replace")


def read_bed(path: str | os.PathLike[str], lengths: Mapping[str, int] | None = None) -> Intervals:
    """Read BED intervals (0-based, half-open; columns after the third are ignored).

    Track, browser, '#' comment and blank lines are skipped. With `lengths` (sequence name -> length),
    every interval must lie on a known sequence and end inside it. Errors name file:line.
    """
    path = Path(path)
    rows: list[tuple[str, int, int, int]] = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if _is_skipped(line):
                continue
            chrom, start, end = _parse_coords(path, lineno, line.split())
            check_inside(path, lineno, chrom, end, lengths)
            rows.append((chrom, start, end, lineno))
    return intervals_of_rows(path, rows)


def intervals_of_rows(path: Path, rows: Sequence[tuple[str, int, int, int]]) -> Intervals:
    """`Intervals` from (chrom, start, end, line) rows read from `path`; none at all is an error."""
    if not rows:
        raise DataError(f"{path}: no intervals")
    chrom, start, end, line = zip(*rows)
    return Intervals(
        list(chrom), np.array(start, np.int64), np.array(end, np.int64), str(path), np.array(line, np.int64)
    )
