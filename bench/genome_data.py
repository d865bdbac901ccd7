"""A real genome for the pretraining benchmark: Drosophila melanogaster 2 kb upstream regions (UCSC dm3).

Debian's r-bioc-biostrings ships them (26,454 regions, 53 Mb with overlaps). The package is fetched with
`apt-get download` into the cache and unpacked there, never installed. Regions of alternative transcripts
overlap, and reverse-strand regions are given as the other strand; both are put back in genome coordinates
and merged per chromosome into contigs. Every overlap must agree base for base, which checks that reading.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "r-bioc-biostrings"
MEMBER = "usr/lib/R/site-library/Biostrings/extdata/dm3_upstream2000.fa.gz"
SPLITS = {  # held out by chromosome: nothing of the test chromosome is seen in training
    "train": ("chr2L", "chr2R", "chr3L", "chr3R"),
    "valid": ("chr4",),
    "test": ("chrX",),
}
_HEADER = re.compile(r">(\S+)_([fr]) (\w+):(-?\d+)-(\d+)")
_COMPLEMENT = bytes.maketrans(b"acgtnACGTN", b"tgcanTGCAN")


class GenomeDataError(RuntimeError):
    pass


@dataclass
class Contig:
    """Merged regions of one chromosome: 1-based start, and the forward-strand sequence."""

    chrom: str
    start: int
    seq: bytearray

    @property
    def name(self) -> str:
        return f"{self.chrom}_{self.start}"

    @property
    def end(self) -> int:
        return self.start + len(self.seq) - 1


def fetch(cache: Path) -> Path:
    """The upstream-regions FASTA from the Debian package, downloaded and unpacked once into `cache`."""
    out = cache / Path(MEMBER).name
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        if _apt_download(tmp).returncode != 0:  # a fresh machine has no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            res = _apt_download(tmp)
            if res.returncode != 0:
                raise GenomeDataError(f"apt-get download {PACKAGE} failed: {res.stderr.strip().splitlines()[-1:]}")
        deb = next(Path(tmp).glob(f"{PACKAGE}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        shutil.move(str(Path(tmp) / MEMBER), out)
    return out


def _apt_download(cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", "download", PACKAGE], cwd=cwd, capture_output=True, text=True)


def read_regions(fasta_gz: Path) -> list[tuple[str, int, bytes]]:
    """(chrom, 1-based start, forward-strand sequence) of every region; the two that would start before the
    chromosome does (negative coordinates, truncated sequences) are left out."""
    regions = []
    header, chunks = "", []

    def flush() -> None:
        if not header:
            return
        m = _HEADER.fullmatch(header)
        if m is None:
            raise GenomeDataError(f"{fasta_gz}: unexpected header {header!r}")
        strand, chrom, start, end = m.group(2), m.group(3), int(m.group(4)), int(m.group(5))
        seq = b"".join(chunks)
        if start < 1:
            return
        if len(seq) != end - start + 1:
            raise GenomeDataError(f"{fasta_gz}: {header}: {len(seq)} bases for {end - start + 1} positions")
        regions.append((chrom, start, seq if strand == "f" else seq.translate(_COMPLEMENT)[::-1]))

    with gzip.open(fasta_gz, "rb") as f:
        for line in f:
            if line.startswith(b">"):
                flush()
                header, chunks = line.decode().strip(), []
            else:
                chunks.append(line.strip())
    flush()
    return regions


def merge(regions: list[tuple[str, int, bytes]]) -> list[Contig]:
    """Overlapping or adjacent regions of a chromosome become one contig; overlaps must agree."""
    contigs: list[Contig] = []
    for chrom, start, seq in sorted(regions, key=lambda r: (r[0], r[1])):
        last = contigs[-1] if contigs else None
        if last is None or last.chrom != chrom or start > last.end + 1:
            contigs.append(Contig(chrom, start, bytearray(seq)))
            continue
        overlap = min(last.end, start + len(seq) - 1) - start + 1
        offset = start - last.start
        if bytes(last.seq[offset:offset + overlap]) != seq[:overlap]:
            raise GenomeDataError(f"regions disagree where they overlap at {chrom}:{start}")
        last.seq.extend(seq[overlap:])
    return contigs


def write(contigs: list[Contig], out: Path) -> dict[str, Path]:
    """genome.fa (one record per contig) and one BED file per split, each interval a whole contig."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "genome.fa", "wb") as fa:
        for c in contigs:
            fa.write(f">{c.name}\n".encode())
            for i in range(0, len(c.seq), 80):
                fa.write(bytes(c.seq[i:i + 80]) + b"\n")
    paths = {"genome": out / "genome.fa"}
    for split, chroms in SPLITS.items():
        paths[split] = out / f"{split}.bed"
        paths[split].write_text("".join(f"{c.name}\t0\t{len(c.seq)}\n" for c in contigs if c.chrom in chroms))
    return paths


def build(cache: Path) -> tuple[dict[str, Path], list[Contig]]:
    """The benchmark's genome directory (written once) and its contigs."""
    contigs = merge(read_regions(fetch(cache)))
    out = cache / "genome"
    paths = {"genome": out / "genome.fa", **{split: out / f"{split}.bed" for split in SPLITS}}
    if not all(p.exists() for p in paths.values()):
        tmp = cache / "genome.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write(contigs, tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return paths, contigs
