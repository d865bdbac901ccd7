"""A real genome for the pretraining benchmark: Drosophila melanogaster 2 kb upstream regions (UCSC dm3).

Debian's r-bioc-biostrings ships them (26,454 regions, 53 Mb with overlaps). The package is fetched with
`apt-get download` into the cache and unpacked there, never installed. Regions of alternative transcripts
overlap, and reverse-strand regions are given as the other strand; both are put back in genome coordinates
and merged per chromosome into contigs. Every overlap must agree base for base, which checks that reading.

The regions also give a fine-tuning task with real labels, from the annotation in their headers: which
half of a 2 kb upstream region lies next to its gene's transcription start (the core promoter side).
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


LABEL = "tss_proximal"


class GenomeDataError(RuntimeError):
    pass


@dataclass(frozen=True)
class Region:
    """One upstream region, 1-based start, its forward-strand sequence. The gene's transcription start is
    just past the region's end when the gene is on the forward strand, just before its start otherwise."""

    chrom: str
    start: int
    seq: bytes
    forward: bool


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


def read_regions(fasta_gz: Path) -> list[Region]:
    """Every region; the two that would start before the chromosome does (negative coordinates, truncated
    sequences) are left out."""
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
        forward = strand == "f"
        regions.append(Region(chrom, start, seq if forward else seq.translate(_COMPLEMENT)[::-1], forward))

    with gzip.open(fasta_gz, "rb") as f:
        for line in f:
            if line.startswith(b">"):
                flush()
                header, chunks = line.decode().strip(), []
            else:
                chunks.append(line.strip())
    flush()
    return regions


def merge(regions: list[Region]) -> list[Contig]:
    """Overlapping or adjacent regions of a chromosome become one contig; overlaps must agree."""
    contigs: list[Contig] = []
    for chrom, start, seq in sorted(((r.chrom, r.start, r.seq) for r in regions), key=lambda r: (r[0], r[1])):
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


def tss_halves(regions: list[Region], contigs: list[Contig]) -> list[tuple[Contig, int, int, int]]:
    """(contig, start, end, label): the two halves of every region that is alone in its contig, the half
    next to the gene's transcription start labelled 1. A region that overlaps or touches another is left
    out: the same bases would be near one gene's start and far from another's."""
    alone = {(c.chrom, c.start): c for c in contigs}
    halves = []
    for r in regions:
        contig = alone.get((r.chrom, r.start))
        if contig is None or len(contig.seq) != len(r.seq):
            continue
        half = len(r.seq) // 2
        halves += [(contig, 0, half, int(not r.forward)), (contig, half, 2 * half, int(r.forward))]
    return halves


def write(contigs: list[Contig], halves: list[tuple[Contig, int, int, int]], out: Path) -> dict[str, Path]:
    """genome.fa (one record per contig), one BED file per split, each interval a whole contig, and one
    labelled BED file per split for fine-tuning (finetune_<split>.bed: tss_halves)."""
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
        paths[f"finetune_{split}"] = out / f"finetune_{split}.bed"
        paths[f"finetune_{split}"].write_text(f"#chrom\tstart\tend\t{LABEL}\n" + "".join(
            f"{c.name}\t{start}\t{end}\t{label}\n" for c, start, end, label in halves if c.chrom in chroms))
    return paths


@dataclass
class GenomeData:
    paths: dict[str, Path]  # genome, each split's BED file, and finetune_<split>
    contigs: list[Contig]
    halves: list[tuple[Contig, int, int, int]]  # tss_halves: the fine-tuning intervals and labels


def build(cache: Path) -> GenomeData:
    """The benchmark's genome directory (written once), its contigs and its labelled halves."""
    regions = read_regions(fetch(cache))
    contigs = merge(regions)
    halves = tss_halves(regions, contigs)
    out = cache / "genome"
    paths = {"genome": out / "genome.fa", **{name: out / f"{name}.bed" for split in SPLITS
                                            for name in (split, f"finetune_{split}")}}
    if not all(p.exists() for p in paths.values()):
        tmp = cache / "genome.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write(contigs, halves, tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return GenomeData(paths, contigs, halves)
