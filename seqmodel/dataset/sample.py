"""The sample genome and its intervals, written deterministically: the repository's `data/genome/` is
exactly its output, and `python -m seqmodel.init DIR --sample-data` writes the same files.

    python -m seqmodel.dataset.sample --out DIR     # or: python data/make_sample.py [--out DIR]

The genome (2.0 Mb in three chromosomes) is a skewed order-3 Markov chain, so masked-token pretraining
can beat the base-frequency baseline, plus soft-masked (lowercase) repeat families and N gaps like a
real assembly. Five 12-bp motifs are planted in 200-bp bins laid on a 600-bp grid; a bin's label k is 1
exactly when motif k (either strand) occurs in it. Motifs sit in the central 100 bp of their bin and
nowhere else in the genome, so the window centred on a bin sees exactly its bin's motifs for any
seq_len from 100 to 1100. Variants to score zero-shot are random SNVs in the test split, plus a
multi-allelic record and a deletion that readers skip. See data/README.md for the file formats.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np

SEED = 20240611
CHROMS = {"chr1": 800_000, "chr2": 600_000, "chr3": 600_000}
N_GAPS = {"chr1": [(0, 10_000)], "chr2": [(300_000, 302_000)], "chr3": []}  # assembly gaps (N)
ORDER = 3
MOTIF_LEN = 12
N_MOTIFS = 5
P_MOTIF = 0.3  # chance that a bin carries a given motif
GRID = 600  # bins start every GRID bp
BIN = (200, 400)  # the labelled bin inside each grid cell
PLANT = (250, 350)  # where motifs go: the central 100 bp of the bin
MAX_SEQ_LEN = 1100  # windows up to this long, centred on a bin, see only that bin's motifs
REPEATS = [(300, 60), (220, 80), (150, 100)]  # (length, copies) of each repeat family
REPEAT_DIVERGENCE = 0.08
LINE = 60
# Pretraining intervals per split (disjoint); labelled bins follow the same split.
SPLITS = {
    "train": [("chr1", 10_000, 800_000), ("chr2", 0, 300_000), ("chr2", 302_000, 600_000)],
    "valid": [("chr3", 0, 300_000)],
    "test": [("chr3", 300_000, 600_000)],
}
N_VARIANTS = 200  # SNVs in variants.vcf, in the test split
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
COMPLEMENT = bytes.maketrans(b"ACGTacgt", b"TGCAtgca")


def revcomp(seq: bytes) -> bytes:
    return seq.translate(COMPLEMENT)[::-1]


def markov_chain(rng: np.random.Generator, n: int, probs: np.ndarray, piece: int = 500) -> bytearray:
    """n bases of an order-ORDER Markov chain with transition table probs [4**ORDER, 4].

    Generated as consecutive pieces of `piece` bases stepped side by side (vectorised over pieces);
    each piece starts from a random context.
    """
    cum = np.cumsum(probs, axis=1)[:, :3]
    k = -(-n // piece)
    u = rng.random((piece, k))
    ctx = rng.integers(0, 4**ORDER, k)
    out = np.empty((piece, k), dtype=np.int64)
    for i in range(piece):
        b = (u[i][:, None] >= cum[ctx]).sum(axis=1)
        out[i] = b
        ctx = (ctx * 4 + b) % 4**ORDER
    return bytearray(BASES[out.T.reshape(-1)[:n]].tobytes())


def make_motifs(rng: np.random.Generator) -> list[bytes]:
    motifs: list[bytes] = []
    while len(motifs) < N_MOTIFS:
        m = bytes(BASES[rng.integers(0, 4, MOTIF_LEN)])
        gc = sum(m.count(c) for c in b"GC")
        if not 4 <= gc <= 8 or m == revcomp(m) or max(m.count(c) for c in b"ACGT") > 5:
            continue
        if any(_similar(m, o) or _similar(m, revcomp(o)) for o in motifs):
            continue
        motifs.append(m)
    return motifs


def _similar(a: bytes, b: bytes) -> bool:
    return sum(x == y for x, y in zip(a, b)) > MOTIF_LEN // 2


def find_all(seq: bytes, pattern: bytes) -> list[int]:
    out, pos = [], seq.find(pattern)
    while pos >= 0:
        out.append(pos)
        pos = seq.find(pattern, pos + 1)
    return out


def build(rng: np.random.Generator) -> tuple[dict[str, bytearray], list[bytes], dict[str, list]]:
    probs = 0.85 * rng.dirichlet(np.full(4, 0.5), size=4 ** ORDER) + 0.15 / 4
    motifs = make_motifs(rng)
    families = [bytes(BASES[rng.integers(0, 4, length)]) for length, _ in REPEATS]
    genome: dict[str, bytearray] = {}
    bins: dict[str, list] = {}
    for chrom, size in CHROMS.items():
        seq = markov_chain(rng, size, probs)
        gaps = N_GAPS[chrom]
        # repeats: lowercase diverged copies in the space between plant regions
        for (length, copies), family in zip(REPEATS, families):
            for _ in range(copies * size // sum(CHROMS.values())):
                cell = int(rng.integers(0, size // GRID - 1))
                start = cell * GRID + PLANT[1] + int(rng.integers(0, GRID - (PLANT[1] - PLANT[0]) - length))
                copy = bytearray(family if rng.random() < 0.5 else revcomp(family))
                for pos in np.flatnonzero(rng.random(length) < REPEAT_DIVERGENCE).tolist():
                    copy[pos] = BASES[(b"ACGT".index(copy[pos]) + int(rng.integers(1, 4))) % 4]
                seq[start : start + length] = bytes(copy).lower()
        # remove chance motif occurrences from the background (case-insensitive)
        upper = bytes(seq).upper()
        for m in motifs:
            for pattern in (m, revcomp(m)):
                for pos in find_all(upper, pattern):
                    mid = pos + MOTIF_LEN // 2
                    seq[mid] = BASES[(b"ACGT".index(upper[mid]) + 1) % 4]
                upper = bytes(seq).upper()
        # plant motifs in the bins that lie outside gaps
        chrom_bins = []
        for cell in range(size // GRID):
            base = cell * GRID
            if any(base < g1 and base + GRID > g0 for g0, g1 in gaps):
                continue
            centre = base + (BIN[0] + BIN[1]) // 2
            if centre < MAX_SEQ_LEN // 2 or centre + MAX_SEQ_LEN // 2 > size:
                continue  # its window would be clipped at the chromosome's end and see a neighbour
            present = np.flatnonzero(rng.random(N_MOTIFS) < P_MOTIF).tolist()
            rng.shuffle(present)
            free = (PLANT[1] - PLANT[0]) - MOTIF_LEN * len(present)
            cuts = np.sort(rng.integers(0, free + 1, len(present))).tolist()
            pos = base + PLANT[0]
            prev = 0
            for k, cut in zip(present, cuts):
                pos += cut - prev
                prev = cut
                motif = motifs[k] if rng.random() < 0.5 else revcomp(motifs[k])
                seq[pos : pos + MOTIF_LEN] = motif
                pos += MOTIF_LEN
            chrom_bins.append((base + BIN[0], base + BIN[1]))
        for g0, g1 in gaps:
            seq[g0:g1] = b"N" * (g1 - g0)
        genome[chrom] = seq
        bins[chrom] = chrom_bins
    return genome, motifs, bins


def labels_of(genome: dict[str, bytearray], motifs: list[bytes], bins: dict[str, list]) -> dict[str, list]:
    """chrom -> [(start, end, labels)]: label k = motif k occurs in the bin; checks motifs appear
    nowhere outside the plant regions."""
    out: dict[str, list] = {}
    for chrom, seq in genome.items():
        upper = bytes(seq).upper()
        hits: list[set[int]] = [set() for _ in motifs]
        for k, m in enumerate(motifs):
            for pattern in (m, revcomp(m)):
                for pos in find_all(upper, pattern):
                    offset = pos % GRID
                    if not (PLANT[0] <= offset and offset + MOTIF_LEN <= PLANT[1]):
                        raise AssertionError(f"motif {k} outside a plant region at {chrom}:{pos}")
                    hits[k].add(pos // GRID)
        out[chrom] = [(s, e, [int(s // GRID in hits[k]) for k in range(len(motifs))]) for s, e in bins[chrom]]
    return out


def fasta_gz(genome: dict[str, bytearray]) -> bytes:
    text = io.BytesIO()
    for chrom, seq in genome.items():
        text.write(f">{chrom} synthetic sample chromosome\n".encode())
        for i in range(0, len(seq), LINE):
            text.write(bytes(seq[i : i + LINE]) + b"\n")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue())
    return out.getvalue()


def variants_vcf(genome: dict[str, bytearray]) -> bytes:
    """SNVs at N_VARIANTS + 2 distinct random positions of the test split (REF from the genome, another
    base as ALT), two of which become a multi-allelic record and a deletion, for readers to skip. Drawn
    from a generator of their own, so that adding them left the other files unchanged."""
    rng = np.random.default_rng(SEED + 1)
    spans = SPLITS["test"]
    room = np.cumsum([end - start - 1 for _, start, end in spans])  # - 1: the deletion's second base
    flat = np.sort(rng.choice(int(room[-1]), N_VARIANTS + 2, replace=False)).tolist()
    multi, deletion = rng.choice(len(flat), 2, replace=False).tolist()
    lines = ["##fileformat=VCFv4.2\n", "##source=seqmodel.dataset.sample\n", "##reference=genome.fa.gz\n"]
    lines += [f"##contig=<ID={chrom},length={size}>\n" for chrom, size in CHROMS.items()]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for i, x in enumerate(flat):
        k = int(np.searchsorted(room, x, side="right"))
        chrom, start, _ = spans[k]
        pos = start + x - (int(room[k - 1]) if k else 0)
        ref = chr(genome[chrom][pos]).upper()
        others = [b for b in "ACGT" if b != ref]
        alt = ",".join(others[:2]) if i == multi else others[int(rng.integers(0, 3))]
        if i == deletion:
            ref, alt = bytes(genome[chrom][pos : pos + 2]).decode().upper(), ref
        lines.append(f"{chrom}\t{pos + 1}\tvar{i + 1}\t{ref}\t{alt}\t.\tPASS\t.\n")
    return "".join(lines).encode()


def write(out_dir: Path) -> list[Path]:
    rng = np.random.default_rng(SEED)
    genome, motifs, bins = build(rng)
    labelled = labels_of(genome, motifs, bins)
    names = [f"motif{k + 1}" for k in range(len(motifs))]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"genome.fa.gz": fasta_gz(genome)}
    for split, intervals in SPLITS.items():
        files[f"{split}.bed"] = "".join(f"{c}\t{s}\t{e}\n" for c, s, e in intervals).encode()
        rows = ["#chrom\tstart\tend\t" + "\t".join(names) + "\n"]
        for chrom, s0, e0 in intervals:
            for s, e, lab in labelled[chrom]:
                if s0 <= s and e <= e0:
                    rows.append(f"{chrom}\t{s}\t{e}\t" + "\t".join(map(str, lab)) + "\n")
        files[f"{split}.labels.bed"] = "".join(rows).encode()
    files["motifs.txt"] = "".join(f"{n}\t{m.decode()}\n" for n, m in zip(names, motifs)).encode()
    files["variants.vcf"] = variants_vcf(genome)
    written = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write the files to")
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
