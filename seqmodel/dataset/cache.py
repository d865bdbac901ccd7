"""The encoded genome: FASTA encoded once into a uint8 memory-mapped cache. Numpy only, no torch.

The cache is keyed by the SHA-256 of the source files' bytes (and the alphabet and cache format), not by
their paths, so a genome copied to a pod's scratch disk finds its cache again, and any change to the
content makes a new one. Files are written under a temporary name and renamed into place, so a reader
never sees half a cache; concurrent builders (DDP ranks) take a lock, and the loser reuses the winner's
work. Location: the `cache_dir` hparam, else $SEQMODEL_CACHE_DIR, else $XDG_CACHE_HOME/seqmodel
(~/.cache/seqmodel). If that directory cannot be written, the genome is encoded in memory instead.
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

CACHE_FORMAT = 1


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
    ) -> None:
        self.names: list[str] = list(names)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        self.alphabet = alphabet
        self.path = path  # the memory-mapped token file, or None when held in memory
        self._tokens: np.ndarray | None = tokens
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
        names, sizes = _encode(seq_file, alphabet, parts.append)
        tokens = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        return cls(tokens, names, sizes, alphabet)

    @staticmethod
    def _files(directory: Path, key: str) -> tuple[Path, Path]:
        return directory / f"genome-{key}.tokens", directory / f"genome-{key}.json"

    @classmethod
    def _load(cls, directory: Path, key: str, alphabet: Alphabet) -> "Genome | None":
        tokens_path, index_path = cls._files(directory, key)
        if not index_path.exists():
            return None
        try:
            index = json.loads(index_path.read_text())
            if index.get("format") != CACHE_FORMAT or not tokens_path.exists():
                return None
            if tokens_path.stat().st_size != index["total"]:
                return None  # truncated or foreign file: rebuild
        except (ValueError, KeyError):
            return None
        tokens = _memmap(tokens_path, index["total"])
        return cls(tokens, index["names"], index["sizes"], alphabet, path=tokens_path)

    @classmethod
    def _build(cls, paths: Sequence[Path], sums: Sequence[str], alphabet: Alphabet, directory: Path, key: str) -> None:
        tokens_path, index_path = cls._files(directory, key)
        with atomic_open(tokens_path, "wb") as out:
            names, sizes = _encode(paths, alphabet, out.write)
        index: dict[str, Any] = {
            "format": CACHE_FORMAT,
            "alphabet": alphabet.fingerprint(),
            "sources": [{"path": str(p), "sha256": s} for p, s in zip(paths, sums)],
            "names": names,
            "sizes": sizes,
            "total": int(sum(sizes)),
        }
        with atomic_open(index_path, "w") as out:
            out.write(json.dumps(index))

    # -- access ----------------------------------------------------------------------------------------
    @property
    def tokens(self) -> np.ndarray:
        """All records, concatenated (uint8)."""
        if self._tokens is None:
            assert self.path is not None
            self._tokens = _memmap(self.path, int(self.sizes.sum()))
        return self._tokens

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
            state["_tokens"] = None  # reopened on first use
        return state

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)


def _memmap(path: Path, total: int) -> np.ndarray:
    """The token file mapped read-only (numpy cannot map an empty file: an empty array then)."""
    return np.memmap(path, dtype=np.uint8, mode="r") if total else np.zeros(0, np.uint8)


def _encode(
    seq_file: str | Sequence[str | os.PathLike[str]], alphabet: Alphabet, write: Callable[[np.ndarray], Any]
) -> tuple[list[str], list[int]]:
    """Encode the FASTA file(s), handing each encoded piece to `write` in order; (record names, sizes)."""
    names: list[str] = []
    sizes: list[int] = []
    for record, part in iter_fasta_files(seq_file):
        if not part:
            names.append(record.name)
            sizes.append(0)
            continue
        tokens = alphabet.encode(part)
        write(tokens)
        sizes[-1] += len(tokens)
    return names, sizes


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
