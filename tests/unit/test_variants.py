"""seqmodel.dataset.variants: SNVs from plain and bgzip VCF, skipped records, errors naming file:line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam
import pytest

from seqmodel.dataset.cache import Genome
from seqmodel.dataset.seq import DataError
from seqmodel.dataset.variants import Variants, read_vcf

DATA = Path(__file__).resolve().parents[2] / "data" / "genome"
HEADER = (
    "##fileformat=VCFv4.2\n"
    "##source=test\n"
    "##contig=<ID=chrA,length=12>\n"
    "##contig=<ID=chrB,length=8>\n"
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
)  # 6 lines
RECORDS = [  # chrA = ACGTacgtNNAC, chrB = GGGGTTTT
    "chrA\t1\trs1\tA\tG\t50\tPASS\tDP=3",
    "chrA\t2\t.\tC\tA,T\t.\t.\t.",  # multi-allelic
    "chrA\t3\t.\tG\tGTT\t.\t.\t.",  # insertion
    "chrA\t4\t.\tTa\tT\t.\t.\t.",  # deletion
    "chrA\t5\trs5\ta\tt\t.\t.\t.",  # lowercase REF (soft-masked in the genome) and ALT
    "chrA\t6\t.\tC\t<DEL>\t.\t.\t.",  # symbolic
    "chrA\t7\t.\tG\t.\t.\t.\t.",  # no ALT
    "chrA\t8\t.\tT\t*\t.\t.\t.",  # spanning deletion
    "chrB\t8\trs8\tT\tC\t.\t.\t.",
]


def vcf(tmp_path: Path, records: list[str], name: str = "v.vcf") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in records))
    return path


@pytest.fixture
def genome(tmp_path: Path) -> Genome:
    fasta = tmp_path / "g.fa"
    fasta.write_text(">chrA first\nACGTacgt\nNNAC\n>chrB\nGGGGTTTT\n")
    return Genome.in_memory(fasta)


def columns(v: Variants) -> tuple:
    return v.chrom.tolist(), v.pos.tolist(), v.ref.tolist(), v.alt.tolist(), v.ids, v.lines.tolist(), v.skipped


def test_snvs_are_read_and_the_rest_counted_as_skipped(tmp_path: Path, genome: Genome) -> None:
    v = read_vcf(vcf(tmp_path, RECORDS), genome)
    assert len(v) == 3 and v.path == tmp_path / "v.vcf"
    assert v.chrom.tolist() == [0, 0, 1] and v.pos.tolist() == [0, 4, 7]
    assert genome.alphabet.decode(v.ref) == "AAT" and genome.alphabet.decode(v.alt) == "GTC"
    assert v.ids == ["rs1", "rs5", "rs8"]
    assert v.lines.tolist() == [7, 11, 15]  # 6 header lines, then one record a line
    assert v.skipped == {"multi-allelic": 1, "not a SNV": 4, "no ALT": 1}
    assert (v.chrom.dtype, v.pos.dtype, v.ref.dtype, v.alt.dtype, v.lines.dtype) == (
        np.int64, np.int64, np.uint8, np.uint8, np.int64)


def test_bgzip_reads_the_same_as_plain_text(tmp_path: Path, genome: Genome) -> None:
    plain = vcf(tmp_path, RECORDS)
    bgzip = tmp_path / "v.vcf.gz"
    pysam.tabix_compress(str(plain), str(bgzip))
    assert bgzip.read_bytes()[:2] == b"\x1f\x8b"
    assert columns(read_vcf(bgzip, genome)) == columns(read_vcf(plain, genome))


def test_a_ref_mismatch_names_its_line(tmp_path: Path, genome: Genome) -> None:
    path = vcf(tmp_path, RECORDS[:4] + ["chrB\t3\t.\tC\tT\t.\t.\t."] + RECORDS[4:])
    with pytest.raises(DataError) as err:
        read_vcf(path, genome)
    assert str(err.value) == f"{path}:11: REF C at chrB:3 does not match the genome's G"


def test_a_ref_at_an_n_shows_it(tmp_path: Path, genome: Genome) -> None:
    path = vcf(tmp_path, ["chrA\t9\t.\tA\tC\t.\t.\t."])
    with pytest.raises(DataError, match=r"v\.vcf:7: REF A at chrA:9 does not match the genome's N$"):
        read_vcf(path, genome)


def test_an_unknown_sequence_names_the_genomes(tmp_path: Path, genome: Genome) -> None:
    path = vcf(tmp_path, RECORDS[:1] + ["chr1\t1\t.\tA\tG\t.\t.\t."])
    with pytest.raises(DataError) as err:
        read_vcf(path, genome)
    assert str(err.value) == f"{path}:8: unknown sequence 'chr1' (the genome has chrA, chrB)"


def test_a_position_past_the_end(tmp_path: Path, genome: Genome) -> None:
    path = vcf(tmp_path, RECORDS[:1] + ["chrB\t9\t.\tA\tG\t.\t.\t."])
    with pytest.raises(DataError) as err:
        read_vcf(path, genome)
    assert str(err.value) == f"{path}:8: position 9 is outside chrB (length 8)"


def test_malformed_files_are_one_line_errors(tmp_path: Path, genome: Genome, capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(DataError, match=r"missing\.vcf: no such file$"):
        read_vcf(tmp_path / "missing.vcf", genome)
    bed = tmp_path / "x.bed"
    bed.write_text("chrA\t0\t5\n")
    with pytest.raises(DataError, match=r"x\.bed: not a VCF file \(no '#CHROM' header line\)$"):
        read_vcf(bed, genome)
    no_format = tmp_path / "noformat.vcf"
    no_format.write_text(HEADER.split("\n", 1)[1])
    with pytest.raises(DataError, match=r"noformat\.vcf: htslib cannot read the VCF header"):
        read_vcf(no_format, genome)
    bad = vcf(tmp_path, RECORDS[:2] + ["chrA\tx\t.\tA\tG\t.\t.\t.", RECORDS[2]])
    with pytest.raises(DataError, match=r"v\.vcf:9: malformed VCF record \(htslib: .*\)$") as err:
        read_vcf(bad, genome)
    assert "\n" not in str(err.value)
    blank = vcf(tmp_path, RECORDS[:1] + [""] + RECORDS[1:], "blank.vcf")
    with pytest.raises(DataError, match=r"blank\.vcf:8: malformed VCF record"):
        read_vcf(blank, genome)
    assert capfd.readouterr().err == ""  # htslib's warnings and errors stay quiet
    assert pysam.set_verbosity(3) == 3  # and its verbosity is restored (htslib's default)


def test_the_sample_variants(tmp_path: Path) -> None:
    genome = Genome.in_memory(DATA / "genome.fa.gz")
    v = read_vcf(DATA / "variants.vcf", genome)
    assert len(v) == 200 and v.skipped == {"multi-allelic": 1, "not a SNV": 1}
    assert set(v.chrom.tolist()) == {genome.index["chr3"]}
    assert ((300_000 <= v.pos) & (v.pos < 600_000)).all() and (np.diff(v.pos) > 0).all()
    assert (v.ref != v.alt).all() and v.lines[0] == 8 and v.lines[-1] == 209
