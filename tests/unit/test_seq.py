"""Alphabet, FASTA, BED and labelled-interval readers (seqmodel.dataset.seq / labels)."""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from seqmodel.dataset.labels import read_label_names, read_labelled_bed
from seqmodel.dataset.seq import Alphabet, DataError, iter_fasta, read_bed, read_fasta
from seqmodel.errors import UserError

# -- Alphabet -----------------------------------------------------------------------------------------


def test_dna_indices():
    a = Alphabet.dna()
    assert a.n_tokens == 6
    assert a.none_idx != a.mask_idx
    assert sorted(a.base_indices) == a.base_indices and len(a.base_indices) == 4
    assert a.none_idx not in a.base_indices and a.mask_idx not in a.base_indices
    assert a.decode(a.base_indices) == "ACGT"
    assert a.byte_table is not None and a.byte_table.shape == (256,)  # vectorised encoding


def test_unknown_characters_map_to_none():
    a = Alphabet.dna()
    x = a.encode("ANRX-.*z\u00e9T")
    assert x.dtype == np.uint8
    assert x.tolist() == [a.encode("A")[0]] + [a.none_idx] * 8 + [a.encode("T")[0]]


def test_case_insensitive_and_bytes_equal_str():
    a = Alphabet.dna()
    assert a.encode("acgtn").tolist() == a.encode("ACGTN").tolist() == a.encode(b"ACGTN").tolist()


def test_round_trip():
    a = Alphabet.dna()
    assert a.decode(a.encode("ACGTNacgtn")) == "ACGTNACGTN"
    rng = np.random.default_rng(0)
    tokens = rng.choice([a.none_idx, *a.base_indices], size=500).astype(np.uint8)
    assert np.array_equal(a.encode(a.decode(tokens)), tokens)


def test_reverse_complement():
    a = Alphabet.dna()
    x = a.encode("AACGTNC")
    assert a.decode(a.reverse_complement(x)) == "GNACGTT"
    # not reverse alone, not complement alone
    assert a.decode(a.reverse_complement(a.encode("AAC"))) == "GTT"
    assert np.array_equal(a.reverse_complement(a.reverse_complement(x)), x)
    batch = np.stack([a.encode("AACG"), a.encode("TTTN")])
    rc = a.reverse_complement(batch)
    assert [a.decode(r) for r in rc] == ["CGTT", "NAAA"]
    assert a.reverse_complement(np.array([a.mask_idx], np.uint8)).tolist() == [a.mask_idx]


def test_general_alphabets():
    codons = Alphabet(["AAA", "AAC", "GGG"], controls=("none", "mask", "cls"))
    assert codons.n_tokens == 6 and codons.control_idx("cls") == 2
    assert codons.encode("AAAGGGAAC").tolist() == [3, 5, 4]
    # unknown text: one none per unmatched character, matching resumes after it
    assert codons.encode("AAAxGGG").tolist() == [3, 0, 5]
    mixed = Alphabet(["A", "AB", "\u03b1"])
    assert mixed.encode("ABA\u03b1?").tolist() == [3, 2, 4, 0]
    assert mixed.decode(mixed.encode("ABA\u03b1?")) == "ABA\u03b1<none>"
    with pytest.raises(ValueError):
        Alphabet(["A"], controls=("mask",))  # needs a none token


# -- FASTA --------------------------------------------------------------------------------------------


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wb") as fh:
        fh.write(text.encode())
    return path


def test_fasta_plain_gzip_and_several_files(tmp_path):
    (tmp_path / "a.fa").write_text(">chr1 first\nACGT\nacgn\n\n>chr2\r\nGG\r\nTT\r\n")
    write_gz(tmp_path / "b.fa.gz", ">chr3\nNNNN\nA")
    genome = read_fasta(f"{tmp_path / 'a.fa'},{tmp_path / 'b.fa.gz'}")
    a = Alphabet.dna()
    assert list(genome) == ["chr1", "chr2", "chr3"]
    assert a.decode(genome["chr1"]) == "ACGTACGN"
    assert a.decode(genome["chr2"]) == "GGTT"
    assert a.decode(genome["chr3"]) == "NNNNA"


def test_fasta_bgzip_multi_member(tmp_path):
    path = tmp_path / "g.fa.gz"
    path.write_bytes(gzip.compress(b">c1\nACGT\nAC") + gzip.compress(b"GT\n>c2\nTT\n"))
    genome = read_fasta(path)
    assert Alphabet.dna().decode(genome["c1"]) == "ACGTACGT" and len(genome["c2"]) == 2


def test_fasta_small_chunks_same_result(tmp_path):
    rng = np.random.default_rng(1)
    records = {f"r{i}": "".join(rng.choice(list("ACGTN"), size=int(rng.integers(0, 200)))) for i in range(20)}
    text = "".join(f">{n}\n" + "\n".join(textwrap.wrap(s, 13)) + "\n" for n, s in records.items())
    (tmp_path / "g.fa").write_text(text)
    for chunk in (1, 7, 64, 1 << 20):
        got: dict[str, str] = {}
        for rec, part in iter_fasta(tmp_path / "g.fa", chunk_size=chunk):
            got[rec.name] = got.get(rec.name, "") + part.decode()
        assert got == records, chunk


def test_duplicate_record_across_files_names_both(tmp_path):
    (tmp_path / "a.fa").write_text(">chr1\nACGT\n>chrX\nA\n")
    write_gz(tmp_path / "b.fa.gz", ">chr2\nAC\n>chrX\nGG\n")
    with pytest.raises(DataError) as err:
        read_fasta([tmp_path / "a.fa", tmp_path / "b.fa.gz"])
    msg = str(err.value)
    assert "chrX" in msg and "a.fa:3" in msg and "b.fa.gz:3" in msg and "\n" not in msg
    assert isinstance(err.value, UserError)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ACGT\n>chr1\nAC\n", "g.fa:1: sequence before the first '>'"),
        (">chr1\nAC\n>\nGG\n", "g.fa:3: empty FASTA header"),
        ("", "g.fa: no FASTA records"),
    ],
)
def test_fasta_errors(tmp_path, text, expected):
    (tmp_path / "g.fa").write_text(text)
    with pytest.raises(DataError, match=expected):
        read_fasta(tmp_path / "g.fa")


def test_fasta_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.fa: no such file"):
        read_fasta(tmp_path / "nope.fa")


# -- BED ----------------------------------------------------------------------------------------------

LENGTHS = {"chr1": 1000, "chr2": 500}


def test_bed_skips_headers_and_reads_intervals(tmp_path):
    path = tmp_path / "x.bed"
    path.write_text("track name=x\nbrowser position chr1:1-10\n# comment\n\nchr1\t0\t1000\tname\t0\t+\nchr2 10 20\n")
    bed = read_bed(path, LENGTHS)
    assert bed.as_tuples() == [("chr1", 0, 1000), ("chr2", 10, 20)]
    assert bed.line.tolist() == [5, 6]
    assert bed.start.dtype == np.int64


@pytest.mark.parametrize(
    "line, expected",
    [
        ("chr1\t10\t10", "x.bed:3: end 10 must be greater than start 10"),
        ("chr1\t20\t10", "x.bed:3: end 10 must be greater than start 20"),
        ("chr1\t10\t1001", "x.bed:3: end 1001 is past the end of 'chr1' (length 1000)"),
        ("chrZ\t10\t20", "x.bed:3: unknown sequence 'chrZ'"),
        ("chr1\tten\t20", "x.bed:3: start and end must be integers"),
        ("chr1\t10", "x.bed:3: expected at least 3 columns"),
        ("chr1\t-1\t10", "x.bed:3: start -1 is negative"),
    ],
)
def test_bed_errors_name_file_and_line(tmp_path, line, expected):
    path = tmp_path / "x.bed"
    path.write_text(f"# header\nchr2\t0\t500\n{line}\n")
    with pytest.raises(DataError) as err:
        read_bed(path, LENGTHS)
    assert expected in str(err.value) and str(path) in str(err.value)


def test_bed_empty_and_missing(tmp_path):
    (tmp_path / "e.bed").write_text("track x\n\n")
    with pytest.raises(DataError, match="e.bed: no intervals"):
        read_bed(tmp_path / "e.bed")
    with pytest.raises(DataError, match="no such file"):
        read_bed(tmp_path / "missing.bed")


# -- labelled intervals ---------------------------------------------------------------------------------


def test_labelled_intervals(tmp_path):
    path = tmp_path / "l.bed"
    path.write_text("track x\n#chrom\tstart\tend\tCTCF\tDNase\nchr1\t0\t200\t1\t0\n\nchr2\t100\t300\t0\t1\n")
    intervals, labels, names = read_labelled_bed(path, LENGTHS)
    assert names == ["CTCF", "DNase"] == read_label_names(path)
    assert intervals.as_tuples() == [("chr1", 0, 200), ("chr2", 100, 300)]
    assert labels.dtype == np.float32 and labels.tolist() == [[1, 0], [0, 1]]


def test_label_names_read_only_the_header(tmp_path):
    path = tmp_path / "l.bed"
    path.write_text("#chrom\tstart\tend\ta\tb\tc\nthis line is not parsed\n")
    assert read_label_names(path) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("chr1\t0\t10\t1\n", "l.bed:1: interval before the header line"),
        ("#chrom\tstart\tend\ta\nchr1\t0\t10\t2\n", "l.bed:2: label 'a' must be 0 or 1, got '2'"),
        ("#chrom\tstart\tend\ta\tb\nchr1\t0\t10\t1\n", "l.bed:2: expected 5 columns"),
        ("#chrom\tstart\tend\ta\nchr9\t0\t10\t1\n", "l.bed:2: unknown sequence 'chr9'"),
        ("#chrom\tstart\tend\ta\nchr2\t0\t501\t1\n", "l.bed:2: end 501 is past the end of 'chr2'"),
        ("#chrom\tstart\tend\ta\ta\n", "l.bed:1: label 'a' named twice"),
        ("#chrom\tstart\tend\n", "l.bed:1: the header names no label columns"),
    ],
)
def test_labelled_errors(tmp_path, text, expected):
    path = tmp_path / "l.bed"
    path.write_text(text)
    with pytest.raises(DataError, match=expected):
        read_labelled_bed(path, LENGTHS)


def test_label_names_without_header(tmp_path):
    path = tmp_path / "plain.bed"
    path.write_text("chr1\t0\t10\n")
    with pytest.raises(DataError, match="plain.bed: no header line"):
        read_label_names(path)


# -- boundaries ---------------------------------------------------------------------------------------


def test_numpy_modules_import_without_torch():
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith(("torch.", "pytorch_lightning", "lightning")):
                    raise ImportError("torch blocked")
        sys.meta_path.insert(0, Block())
        import seqmodel.dataset, seqmodel.dataset.hparams, seqmodel.dataset.seq, seqmodel.dataset.cache
        import seqmodel.dataset.windows, seqmodel.dataset.labels, seqmodel.dataset.datasets
        assert "torch" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
