"""SNVs from a VCF, for zero-shot variant-effect prediction. Numpy and pysam (htslib), no torch.

VCF is read by htslib through pysam rather than by hand: real files carry bgzip, multi-allelic sites,
symbolic alleles and header quirks that a parser of our own would get subtly wrong. Only biallelic SNVs
are scored (a masked-token model compares one base with another); other records are counted as skipped,
not rejected, since real call sets always contain them. REF is checked against the genome, so a VCF of
another assembly fails on its first SNV instead of yielding meaningless scores. pysam does not give line
numbers, so errors name the line as (header lines) + (record ordinal): a VCF has one record per line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodel.dataset.cache import Genome
from seqmodel.dataset.seq import DataError, open_maybe_gzip

BASES = "ACGT"


@dataclass(frozen=True, eq=False)
class Variants:
    """SNVs to score, in file order."""

    path: Path
    chrom: np.ndarray  # int64: the genome record index (Genome.index) of each variant
    pos: np.ndarray  # int64: 0-based position
    ref: np.ndarray  # uint8: the REF base's token (genome.alphabet)
    alt: np.ndarray  # uint8: the ALT base's token
    ids: list[str]  # the VCF ID column ('.' when absent)
    lines: np.ndarray  # int64: the record's line number in the (decompressed) file, 1-based
    skipped: dict[str, int]  # why records were skipped -> how many

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: slice) -> "Variants":
        """These rows alone (an inference shard's); `skipped` stays the whole file's."""
        return Variants(self.path, self.chrom[rows], self.pos[rows], self.ref[rows], self.alt[rows],
                        self.ids[rows], self.lines[rows], self.skipped)


def read_vcf(path: str | os.PathLike[str], genome: Genome) -> Variants:
    """The biallelic SNVs of a VCF (plain or bgzip), checked against `genome`; errors name file:line."""
    import pysam  # htslib: only when variants are read

    path = Path(path)
    line = _header_lines(path)
    code = {b: int(genome.alphabet.encode(b)[0]) for b in BASES}
    rows: list[tuple[int, int, int, int, int]] = []
    ids: list[str] = []
    skipped: dict[str, int] = {}
    verbosity = pysam.set_verbosity(0)  # htslib's warnings would repeat per record; errors say what matters
    try:
        try:
            vcf = pysam.VariantFile(str(path))
        except (OSError, ValueError):
            raise DataError(f"{path}: htslib cannot read the VCF header (is its first line "
                            "'##fileformat=VCFv4.x'?)") from None
        with vcf:
            records = iter(vcf)
            while True:
                line += 1
                try:
                    record = next(records)
                except StopIteration:
                    break
                except (OSError, ValueError) as err:
                    raise DataError(f"{path}:{line}: malformed VCF record (htslib: {err})") from None
                why = _skip_reason(record.ref, record.alts)
                if why:
                    skipped[why] = skipped.get(why, 0) + 1
                    continue
                c = genome.index.get(record.chrom)
                if c is None:
                    shown = ", ".join(genome.names[:5]) + (f", ... ({len(genome)} in all)" if len(genome) > 5 else "")
                    raise DataError(f"{path}:{line}: unknown sequence {record.chrom!r} (the genome has {shown})")
                size = int(genome.sizes[c])
                if not 0 <= record.start < size:
                    raise DataError(f"{path}:{line}: position {record.pos} is outside {record.chrom} (length {size})")
                base = int(genome.tokens[int(genome.offsets[c]) + record.start])
                ref = code[record.ref.upper()]
                if base != ref:
                    raise DataError(f"{path}:{line}: REF {record.ref} at {record.chrom}:{record.pos} does not match "
                                    f"the genome's {genome.alphabet.decode([base])}")
                rows.append((c, record.start, ref, code[record.alts[0].upper()], line))
                ids.append(record.id or ".")
    finally:
        pysam.set_verbosity(verbosity)
    chrom, pos, ref, alt, lines = np.array(rows, dtype=np.int64).reshape(-1, 5).T
    return Variants(path, chrom, pos, ref.astype(np.uint8), alt.astype(np.uint8), ids, lines, skipped)


def _skip_reason(ref: str, alts: tuple[str, ...] | None) -> str | None:
    if not alts:
        return "no ALT"
    if len(alts) > 1:
        return "multi-allelic"
    if len(ref) != 1 or len(alts[0]) != 1 or ref.upper() not in BASES or alts[0].upper() not in BASES:
        return "not a SNV"  # indels, MNVs, symbolic alleles (<DEL>), '*', N
    return None


def _header_lines(path: Path) -> int:
    """Lines up to and including the '#CHROM' line, where htslib's header ends."""
    with open_maybe_gzip(path) as lines:
        try:
            for n, text in enumerate(lines, 1):
                if text.startswith(b"#CHROM"):
                    return n
                if not text.startswith(b"#") and text.strip():
                    break
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: cannot decompress ({err})") from None
    raise DataError(f"{path}: not a VCF file (no '#CHROM' header line)")
