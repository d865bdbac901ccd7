"""The real-genome benchmark's parts without the download: the k-mer baselines and the region merging."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from bench import genome_data
from bench.kmer import N_CODE, KmerModel, encode, reverse_complement


def test_encoding_and_reverse_complement() -> None:
    codes = encode(b"ACGTacgtN")
    assert codes.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, N_CODE]
    assert reverse_complement(codes).tolist() == [N_CODE, 0, 1, 2, 3, 0, 1, 2, 3]


def test_a_context_model_learns_what_its_context_decides_and_frequency_does_not() -> None:
    # In a periodic sequence the neighbours decide the centre, while every base is equally frequent.
    seq = encode(b"AACGTTGC" * 500)
    assert KmerModel.fit([seq], 1).evaluate([seq])[0] == 1.0
    acc, loss, n = KmerModel.fit([seq], 0).evaluate([seq])
    assert acc == pytest.approx(0.25, abs=0.01) and loss == pytest.approx(np.log(4), abs=0.01)


def test_counts_cover_both_strands_and_skip_windows_with_n() -> None:
    model = KmerModel.fit([encode(b"AAAC")], 1)
    # forward: A|A|A -> A, A|A|C -> A; reverse complement GTTT: G|T|T -> T, T|T|T -> T
    assert model.counts.sum() == 4 and model.counts[:, 0].sum() == 2 and model.counts[:, 3].sum() == 2
    assert KmerModel.fit([encode(b"AANAA")], 1).counts.sum() == 0


def test_every_k_is_scored_on_the_same_positions() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 4, 300).astype(np.uint8) for _ in range(3)]
    counts = {k: KmerModel.fit(seqs, k).evaluate(seqs, margin=5)[2] for k in (0, 3, 5)}
    assert counts == {0: 3 * 290, 3: 3 * 290, 5: 3 * 290}


def _fasta(tmp_path: Path, records: list[tuple[str, bytes]]) -> Path:
    path = tmp_path / "up.fa.gz"
    with gzip.open(path, "wb") as f:
        for header, seq in records:
            f.write(f">{header}\n".encode() + seq + b"\n")
    return path


def test_regions_are_put_back_on_the_forward_strand_and_merged(tmp_path: Path) -> None:
    genome = b"ACGTTGCAAGGCTTAC"
    rc = lambda s: s.translate(bytes.maketrans(b"ACGT", b"TGCA"))[::-1]  # noqa: E731
    path = _fasta(tmp_path, [
        ("NM_1_up_2000_chr2L_1_f chr2L:1-8", genome[0:8]),
        ("NM_2_up_2000_chr2L_5_r chr2L:5-12", rc(genome[4:12])),  # overlaps the first: must agree
        ("NM_3_up_2000_chr2L_13_f chr2L:13-16", genome[12:16]),  # adjacent: same contig
        ("NM_4_up_2000_chrX_-3_f chrX:-3-4", b"ACGT"),  # before the chromosome's start: left out
        ("NM_5_up_2000_chrX_101_f chrX:101-104", b"GGGG"),
    ])
    contigs = genome_data.merge(genome_data.read_regions(path))
    assert [(c.name, bytes(c.seq)) for c in contigs] == [("chr2L_1", genome), ("chrX_101", b"GGGG")]
    paths = genome_data.write(contigs, tmp_path / "out")
    assert paths["train"].read_text() == "chr2L_1\t0\t16\n" and paths["test"].read_text() == "chrX_101\t0\t4\n"
    assert paths["genome"].read_text().startswith(">chr2L_1\nACGTTGCAAGGCTTAC\n>chrX_101\n")


def test_regions_that_disagree_where_they_overlap_are_refused(tmp_path: Path) -> None:
    path = _fasta(tmp_path, [("NM_1_up_2000_chr2L_1_f chr2L:1-4", b"ACGT"),
                             ("NM_2_up_2000_chr2L_3_f chr2L:3-6", b"TTAA")])
    with pytest.raises(genome_data.GenomeDataError, match="disagree where they overlap at chr2L:3"):
        genome_data.merge(genome_data.read_regions(path))
