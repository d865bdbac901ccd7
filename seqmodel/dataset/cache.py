"""The encoded genome: FASTA encoded once into a uint8 memory-mapped cache. Numpy only, no torch.

The cache is keyed by the SHA-256 of the source files' bytes (and the alphabet and cache format), not by
their paths, so a genome copied to a pod's scratch disk finds its cache again, and any change to the
content makes a new one. Files are written under a temporary name and renamed into place, so a reader
never sees half a cache; concurrent builders (DDP ranks) take a lock, and the loser reuses the winner's
work. Location: the `cache_dir` hparam, else $SEQMODEL_CACHE_DIR, else $XDG_CACHE_HOME/seqmodel
(~/.cache/seqmodel). If that directory cannot be written, the genome is encoded in memory instead.

Beside the tokens, one bit per position records soft-masking (lowercase in the FASTA: repeats, by the
convention of UCSC and Ensembl genomes), for `repeat_weight`. Tokens themselves ignore case.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from seqmodel.outputs.atomic import atomic_open
from seqmodel.dataset.seq import Alphabet, iter_fasta_files, open_input, split_paths

CACHE_FORMAT = 2  # 2: the soft-mask bits


def default_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SEQMODEL_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "seqmodel"


def file_sha256(path: Path) -> str:
    with open_input(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cache_key(paths: Sequence[Path], alphabet: Alphabet) -> tuple[str, list[str]]:
    """(key, per-file checksums): the key covers the files' content in order, the alphabet and the
    cache format."""
    sums = [file_sha256(p) for p in paths]
    h = hashlib.sha256(f"seqmodel-genome-cache {CACHE_FORMAT}\n{alphabet.fingerprint()}\n".encode())
    for s in sums:
        h.update(s.encode() + b"\n")
    return h.hexdigest()[:40], sums


class Genome:
    """Encoded sequences in one flat uint8 array, each record at `offsets[i]` with `sizes[i]` tokens.

    `genome[name]` is a record's tokens (a view of the memory map). Pickling keeps only the cache path,
    so DataLoader workers started with spawn reopen the map instead of copying the genome.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        names: Sequence[str],
        sizes: Sequence[int],
        alphabet: Alphabet,
        path: Path | None = None,
        soft_bits: np.ndarray | None = None,
        soft_count: int = 0,
    ) -> None:
        self.names: list[str] = list(names)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        self.alphabet = alphabet
        self.path = path  # the memory-mapped token file, or None when held in memory
        self._tokens: np.ndarray | None = tokens
        # packed, most significant bit first (np.packbits); unused when nothing is soft-masked
        self._soft_bits: np.ndarray | None = soft_bits
        self.soft_count = soft_count  # soft-masked positions
        if int(self.sizes.sum()) != len(tokens):
            raise ValueError("genome sizes do not add up to the token array")

    # -- building --------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        seq_file: str | Sequence[str | os.PathLike[str]],
        alphabet: Alphabet | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> "Genome":
        """The genome of `seq_file` (comma-separated FASTA files), from the cache, built if needed."""
        alphabet = alphabet or Alphabet.dna()
        paths = split_paths(seq_file)
        key, sums = cache_key(paths, alphabet)
        directory = default_cache_dir(cache_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with _locked(directory / f"genome-{key}.lock"):
                genome = cls._load(directory, key, alphabet)
                if genome is None:
                    cls._build(paths, sums, alphabet, directory, key)
                    genome = cls._load(directory, key, alphabet)
            assert genome is not None
            return genome
        except OSError as err:
            warnings.warn(f"genome cache unusable in {directory} ({err}); encoding in memory", stacklevel=2)
            return cls.in_memory(paths, alphabet)

    @classmethod
    def in_memory(cls, seq_file: str | Sequence[str | os.PathLike[str]], alphabet: Alphabet | None = None) -> "Genome":
        alphabet = alphabet or Alphabet.dna()
        parts: list[np.ndarray] = []
        bits: list[np.ndarray] = []
        names, sizes, soft_count = _encode(seq_file, alphabet, parts.append, bits.append)
        tokens = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        return cls(tokens, names, sizes, alphabet, soft_bits=np.concatenate(bits) if bits else None,
                   soft_count=soft_count)

    @staticmethod
    def _files(directory: Path, key: str) -> tuple[Path, Path, Path]:
        return directory / f"genome-{key}.tokens", directory / f"genome-{key}.json", directory / f"genome-{key}.soft"

    @classmethod
    def _load(cls, directory: Path, key: str, alphabet: Alphabet) -> "Genome | None":
        tokens_path, index_path, soft_path = cls._files(directory, key)
        if not index_path.exists():
            return None
        try:
            index = json.loads(index_path.read_text())
            if index.get("format") != CACHE_FORMAT or not tokens_path.exists() or not soft_path.exists():
                return None
            if tokens_path.stat().st_size != index["total"] or soft_path.stat().st_size != _packed(index["total"]):
                return None  # truncated or foreign file: rebuild
        except (ValueError, KeyError):
            return None
        tokens = _memmap(tokens_path, index["total"])
        return cls(tokens, index["names"], index["sizes"], alphabet, path=tokens_path,
                   soft_count=index["softmasked"])

    @classmethod
    def _build(cls, paths: Sequence[Path], sums: Sequence[str], alphabet: Alphabet, directory: Path, key: str) -> None:
        tokens_path, index_path, soft_path = cls._files(directory, key)
        with atomic_open(tokens_path, "wb") as out, atomic_open(soft_path, "wb") as soft:
            names, sizes, softmasked = _encode(paths, alphabet, out.write, soft.write)
        index: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "alphabet": alphabet.fingerprint(),
            "sources": [{"path": str(p), "sha256": s} for p, s in zip(paths, sums)],
            "names": names,
            "sizes": sizes,
            "total": int(sum(sizes)),
            "softmasked": softmasked,
        }
        with atomic_open(index_path, "w") as out:
            out.write(json.dumps(index))
        _remove_older_formats(directory, sums)

    # -- access ----------------------------------------------------------------------------------------
    @property
    def tokens(self) -> np.ndarray:
        """All records, concatenated (uint8)."""
        if self._tokens is None:
            assert self.path is not None
            self._tokens = _memmap(self.path, int(self.sizes.sum()))
        return self._tokens

    def softmasked(self, flat: np.ndarray, length: int) -> np.ndarray:
        """bool [B, length]: whether each of the `length` positions from each flat offset was lowercase
        (past the genome's end: False)."""
        pos = np.asarray(flat, dtype=np.int64)[:, None] + np.arange(length)  # [B, length]
        if not self.soft_count:
            return np.zeros(pos.shape, dtype=bool)
        if self._soft_bits is None:
            assert self.path is not None
            self._soft_bits = _memmap(self.path.with_suffix(".soft"), _packed(len(self.tokens)))
        inside = pos < len(self.tokens)
        pos = np.minimum(pos, len(self.tokens) - 1)
        return (((self._soft_bits[pos >> 3] >> (7 - (pos & 7))) & 1) == 1) & inside

    @property
    def lengths(self) -> dict[str, int]:
        return dict(zip(self.names, self.sizes.tolist()))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.index

    def __getitem__(self, name: str) -> np.ndarray:
        i = self.index[name]
        off = int(self.offsets[i])
        return self.tokens[off : off + int(self.sizes[i])]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self.path is not None:
            state["_tokens"] = state["_soft_bits"] = None  # reopened on first use
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)


def _remove_older_formats(directory: Path, sums: Sequence[str]) -> None:
    """Delete the caches of the same files in an older format: a new format makes a new key, and a
    genome's old cache would otherwise stay behind (3 GB for a human genome). A process still reading
    one keeps its memory map."""
    for index_path in directory.glob("genome-*.json"):
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            continue
        if index.get("format", 0) < CACHE_FORMAT and [s.get("sha256") for s in index.get("sources", [])] == list(sums):
            for suffix in (".tokens", ".soft", ".json"):
                index_path.with_suffix(suffix).unlink(missing_ok=True)


def _packed(total: int) -> int:
    """Bytes of `total` soft-mask bits."""
    return (total + 7) // 8


def _memmap(path: Path, total: int) -> np.ndarray:
    """The token file mapped read-only (numpy cannot map an empty file: an empty array then)."""
    return np.memmap(path, dtype=np.uint8, mode="r") if total else np.zeros(0, np.uint8)


def _encode(
    seq_file: str | Sequence[str | os.PathLike[str]], alphabet: Alphabet, write: Callable[[np.ndarray], Any],
    write_soft: Callable[[np.ndarray], Any],
) -> tuple[list[str], list[int], int]:
    """Encode the FASTA file(s), handing each encoded piece to `write` and the packed soft-mask bits to
    `write_soft`, in order; (record names, sizes, soft-masked positions). A case-sensitive alphabet has no
    soft-masking: its lowercase letters are tokens of their own."""
    names: list[str] = []
    sizes: list[int] = []
    soft_count = 0
    carry = np.zeros(0, dtype=bool)  # bits not yet a whole byte
    for record, part in iter_fasta_files(seq_file):
        if not part:
            names.append(record.name)
            sizes.append(0)
            continue
        tokens = alphabet.encode(part)
        write(tokens)
        sizes[-1] += len(tokens)
        raw = np.frombuffer(bytes(part), dtype=np.uint8)
        soft = np.zeros(len(tokens), bool) if alphabet.case_sensitive or len(raw) != len(tokens) else \
            (raw >= ord("a")) & (raw <= ord("z"))
        soft_count += int(soft.sum())
        bits = np.concatenate([carry, soft])
        whole = len(bits) // 8 * 8
        write_soft(np.packbits(bits[:whole]))
        carry = bits[whole:]
    if len(carry):
        write_soft(np.packbits(carry))
    return names, sizes, soft_count


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (fcntl) so that one process builds a cache while others wait."""
    try:
        import fcntl
    except ImportError:  # not POSIX: builders race, and atomic renames keep the result whole
        yield
        return
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except OSError:  # e.g. a file system without locks
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
