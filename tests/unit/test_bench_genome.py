"""The real-genome benchmark's parts without the download: the k-mer baselines, the region merging and the
recipe's variants."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from bench import genome_data, genome_finetune
from bench.bench_recipe import VARIANTS
from bench.kmer import N_CODE, KmerModel, auroc, encode, kmer_spectrum, logistic_regression, reverse_complement
from seqmodel.hparam import registry
from seqmodel.outputs.migrations import DEFAULTS_OF_1_4


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
    regions = genome_data.read_regions(path)
    contigs = genome_data.merge(regions)
    assert [(c.name, bytes(c.seq)) for c in contigs] == [("chr2L_1", genome), ("chrX_101", b"GGGG")]
    halves = genome_data.tss_halves(regions, contigs)
    paths = genome_data.write(contigs, halves, tmp_path / "out")
    assert paths["train"].read_text() == "chr2L_1\t0\t16\n" and paths["test"].read_text() == "chrX_101\t0\t4\n"
    # only the region alone in its contig gives labelled halves; its gene is on the forward strand
    assert paths["finetune_train"].read_text() == "#chrom\tstart\tend\ttss_proximal\n"
    assert paths["finetune_test"].read_text().splitlines()[1:] == ["chrX_101\t0\t2\t0", "chrX_101\t2\t4\t1"]
    assert paths["genome"].read_text().startswith(">chr2L_1\nACGTTGCAAGGCTTAC\n>chrX_101\n")


def test_regions_that_disagree_where_they_overlap_are_refused(tmp_path: Path) -> None:
    path = _fasta(tmp_path, [("NM_1_up_2000_chr2L_1_f chr2L:1-4", b"ACGT"),
                             ("NM_2_up_2000_chr2L_3_f chr2L:3-6", b"TTAA")])
    with pytest.raises(genome_data.GenomeDataError, match="disagree where they overlap at chr2L:3"):
        genome_data.merge(genome_data.read_regions(path))


def test_the_half_next_to_the_transcription_start_is_labelled_on_either_strand(tmp_path: Path) -> None:
    path = _fasta(tmp_path, [("NM_1_up_2000_chr2L_1_f chr2L:1-6", b"AAACCC"),  # gene starts after 6
                             ("NM_2_up_2000_chr2L_11_r chr2L:11-16", b"GGGTTT")])  # gene starts before 11
    regions = genome_data.read_regions(path)
    halves = genome_data.tss_halves(regions, genome_data.merge(regions))
    assert [(bytes(c.seq[start:end]), label) for c, start, end, label in halves] == [
        (b"AAA", 0), (b"CCC", 1), (b"AAA", 1), (b"CCC", 0)]  # chr2L:11-16 is AAACCC on the forward strand


def test_kmer_spectrum_counts_both_strands() -> None:
    spectrum = kmer_spectrum(encode(b"AAC"), 2)
    # 1-mers on AAC and GTT: A 2, C 1, G 1, T 2; 2-mers: AA AC GT TT
    assert spectrum[:4].tolist() == pytest.approx([2 / 6, 1 / 6, 1 / 6, 2 / 6])
    two = {"AA": 0, "AC": 1, "GT": 11, "TT": 15}
    assert {i for i, v in enumerate(spectrum[4:]) if v} == set(two.values()) and spectrum[4:].sum() == pytest.approx(1)


def test_logistic_regression_separates_what_one_feature_decides() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 2] > 0).astype(np.int64)
    predict = logistic_regression(x, y, l2=1e-3)
    assert auroc(predict(x), y) > 0.99
    assert auroc(rng.random(200), y) < 0.7  # and a random score does not


def test_the_kmer_baseline_is_chosen_on_validation_and_scored_on_test() -> None:
    rng = np.random.default_rng(1)
    halves = []
    for chrom in ("chr2L", "chr4", "chrX"):
        for i in range(40):
            rich, poor = rng.choice(list(b"ACGGCC"), 60), rng.choice(list(b"AATTGC"), 60)
            contig = genome_data.Contig(chrom, 1 + 200 * i, bytearray(bytes(poor.tolist()) + bytes(rich.tolist())))
            halves += [(contig, 0, 60, 0), (contig, 60, 120, 1)]
    value, chosen = genome_finetune.kmer_baseline(genome_finetune.split_halves(halves))
    assert value > 0.95 and chosen.startswith("k = 1..")


def test_the_recipe_table_ends_with_todays_defaults_and_starts_with_1_4s() -> None:
    """Each variant names every hparam the variants change, so its row means the same after a default moves."""
    variants = list(VARIANTS.values())
    assert all(set(values) == set(DEFAULTS_OF_1_4) for values in variants)
    assert variants[0] == DEFAULTS_OF_1_4
    defaults = registry().parse_dict({})
    assert variants[-1] == {name: defaults[name] for name in DEFAULTS_OF_1_4}
