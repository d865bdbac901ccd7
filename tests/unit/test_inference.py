"""Test mode's other predictions (issue 17): embeddings of windows and zero-shot variant effects, on the
sample genome with the committed checkpoints, and the log-likelihood ratio on a model of known logits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqmodel import VERSION, run
from seqmodel.dataset.seq import Alphabet
from seqmodel.dataset.windows import inference_slice
from seqmodel.task.variant_effect import VariantScorer, llr
from test_checkpoint_fixtures import DATA, fixture

GENOME = [f"--seq_file={DATA / 'genome.fa.gz'}", "--accelerator=cpu"]


@pytest.fixture(autouse=True)
def genome_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQMODEL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "genome-cache"))


# --- the score, on a model whose logits are known -------------------------------------------------------------
def test_llr_is_log_p_alt_minus_log_p_ref() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0], [5.0, 0.0, 0.0, 0.0]])
    log_p = logits.log_softmax(dim=-1)
    expected = torch.stack([log_p[0, 3] - log_p[0, 1], log_p[1, 2] - log_p[1, 0]])
    assert torch.allclose(llr(logits, torch.tensor([1, 0]), torch.tensor([3, 2])), expected)
    assert llr(logits, torch.tensor([1, 0]), torch.tensor([3, 2])).tolist() == pytest.approx([2.0, -5.0])


class Seen(nn.Module):
    """An encoder that remembers its input and passes one-hot tokens on."""

    def __init__(self, n_tokens: int) -> None:
        super().__init__()
        self.n_tokens, self.inputs = n_tokens, []

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.inputs.append(tokens.clone())
        return nn.functional.one_hot(tokens, self.n_tokens).float()


class Fixed(nn.Module):
    """A token head whose logits are the same known vector at every position."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*hidden.shape[:2], -1)


def test_the_scorer_masks_the_variant_and_averages_the_strands_with_mirrored_sites() -> None:
    alphabet = Alphabet.dna()
    a, c, g, t = (int(alphabet.encode(base)[0]) for base in "ACGT")
    weights = torch.zeros(alphabet.n_tokens)
    weights[[a, c, g, t]] = torch.tensor([0.0, 1.0, 3.0, 7.0])
    tokens = torch.tensor([[a, c, g, t, a], [g, g, c, c, a]])
    batch = {"tokens": tokens, "site": torch.tensor([1, 3]), "ref": torch.tensor([c, c]),
             "alt": torch.tensor([t, a]), "index": torch.tensor([0, 1])}
    for both, expected in [(False, [7.0 - 1.0, 0.0 - 1.0]), (True, [(6.0 + (0.0 - 3.0)) / 2, (-1.0 + (7.0 - 3.0)) / 2])]:
        encoder = Seen(alphabet.n_tokens)
        scorer = VariantScorer(encoder, Fixed(weights), alphabet.mask_idx, alphabet.complement_table, both)
        assert scorer.predict_step(batch, 0)["llr"].tolist() == pytest.approx(expected)
        forward = encoder.inputs[0]
        assert forward[0, 1] == forward[1, 3] == alphabet.mask_idx  # the variant is masked, nothing else
        assert (forward != tokens).sum() == 2
        if both:  # the other strand: reversed, complemented, the variant's position mirrored and masked
            other = encoder.inputs[1]
            assert other[0, 5 - 1 - 1] == other[1, 5 - 1 - 3] == alphabet.mask_idx
            assert other[0, 0] == t and other[1, 0] == t  # complement of the last base, A


# --- the run, on the sample genome --------------------------------------------------------------------------
def test_embeddings_are_one_row_per_test_window_in_window_order(tmp_path: Path) -> None:
    base = ["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'ptmask')}", *GENOME,
            f"--test_intervals={DATA / 'test.bed'}", "--predict=embeddings"]
    assert run.main([*base, f"--default_root_dir={tmp_path / 'a'}"]) == 0
    assert run.main([*base, f"--default_root_dir={tmp_path / 'b'}", "--embed_positions=true", "--batch_size=3"]) == 0
    mean = np.load(tmp_path / "a" / "embeddings.npy", mmap_mode="r")
    rows = (tmp_path / "a" / "embeddings.tsv").read_text().splitlines()
    predictions = json.loads((tmp_path / "a" / "metrics.json").read_text())["metrics"]
    assert rows[0] == "chrom\tstart\tend" and mean.shape == (len(rows) - 1, 16) and mean.dtype == np.float32
    assert predictions == {"embeddings/windows": float(len(rows) - 1)}
    assert np.isfinite(mean).all() and np.abs(mean).sum(axis=1).min() > 0
    # another batch size gives the same rows: each window's embedding is its own
    assert np.allclose(np.load(tmp_path / "b" / "embeddings.npy"), mean, atol=1e-5)
    positions = np.load(tmp_path / "b" / "embeddings_positions.npy", mmap_mode="r")
    assert positions.shape == (len(rows) - 1, 64, 16)
    assert np.allclose(positions.mean(axis=1), mean, atol=1e-5)  # no padding in these windows: the plain mean
    assert not list((tmp_path / "a").glob(".*.tmp"))


def test_variant_effects_score_every_snv_of_the_vcf_in_its_order(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'ptmask')}", *GENOME,
            f"--variants={DATA / 'variants.vcf'}", "--predict=variant_effect",
            "--test_intervals=no/such/file.bed"]  # not read: only the variants are
    assert run.main([*base, f"--default_root_dir={tmp_path / 'one'}"]) == 0, capsys.readouterr().err
    assert run.main([*base, f"--default_root_dir={tmp_path / 'both'}", "--rc_average=true"]) == 0
    header, *rows = [line.split("\t") for line in (tmp_path / "one" / "variant_effects.tsv").read_text().splitlines()]
    assert header == ["chrom", "pos", "id", "ref", "alt", "llr"]
    records = [line.split("\t") for line in (DATA / "variants.vcf").read_text().splitlines() if not line.startswith("#")]
    snvs = [r for r in records if len(r[3]) == 1 and len(r[4]) == 1 and r[4] in "ACGT"]
    assert [row[:5] for row in rows] == [r[:5] for r in snvs]  # VCF order, 1-based positions as in the VCF
    assert all(np.isfinite(float(row[5])) for row in rows)
    metrics = json.loads((tmp_path / "one" / "metrics.json").read_text())["metrics"]
    assert metrics == {"variants/scored": float(len(snvs)), "variants/skipped": float(len(records) - len(snvs))}
    other = [float(line.split("\t")[5]) for line in (tmp_path / "both" / "variant_effects.tsv").read_text().splitlines()[1:]]
    assert other != [float(row[5]) for row in rows]  # the other strand counts


def test_variant_effects_need_a_masked_token_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'finetune')}", *GENOME,
                     f"--variants={DATA / 'variants.vcf'}", "--predict=variant_effect",
                     f"--default_root_dir={tmp_path / 'o'}"]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err == "error: predict=variant_effect: scores come from a masked-token model (task ptmask); this is a finetune model"


# --- shards ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 101])
@pytest.mark.parametrize("shards", [1, 2, 3, 8, 150])
def test_inference_slices_are_contiguous_balanced_and_cover_every_row_once(n: int, shards: int) -> None:
    slices = [inference_slice(n, i, shards) for i in range(shards)]
    assert [row for s in slices for row in range(n)[s]] == list(range(n))  # in shard order, each row once
    sizes = [len(range(n)[s]) for s in slices]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match=f"shard {shards} outside 0..{shards - 1}"):
        inference_slice(n, shards, shards)


def sharded(tmp_path: Path, args: list[str], shards: int, name: str) -> list[Path]:
    """Each shard's output directory, after running them one after another."""
    outs = [tmp_path / f"{name}-{shard}-of-{shards}" for shard in range(shards)]
    for shard, out in enumerate(outs):
        assert run.main([*args, f"--shards={shards}", f"--shard={shard}", f"--default_root_dir={out}"]) == 0
    return outs


def test_sharded_embeddings_and_variant_effects_are_the_single_run_row_for_row(tmp_path: Path) -> None:
    (tmp_path / "some.bed").write_text("chr3\t300000\t302000\n")  # 32 windows of 64
    embed = ["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'ptmask')}", *GENOME,
             f"--test_intervals={tmp_path / 'some.bed'}", "--predict=embeddings"]
    (whole,), parts = sharded(tmp_path, embed, 1, "e"), sharded(tmp_path, embed, 3, "e")
    assert np.allclose(np.concatenate([np.load(p / "embeddings.npy") for p in parts]),
                       np.load(whole / "embeddings.npy"), atol=1e-5)
    assert "".join((p / "embeddings.tsv").read_text().split("\n", 1)[1] for p in parts) == \
        (whole / "embeddings.tsv").read_text().split("\n", 1)[1]
    score = ["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'ptmask')}", *GENOME,
             f"--variants={DATA / 'variants.vcf'}", "--predict=variant_effect"]
    (whole,), parts = sharded(tmp_path, score, 1, "v"), sharded(tmp_path, score, 2, "v")
    rows = [line.split("\t") for p in parts for line in (p / "variant_effects.tsv").read_text().splitlines()[1:]]
    single = [line.split("\t") for line in (whole / "variant_effects.tsv").read_text().splitlines()[1:]]
    assert [r[:5] for r in rows] == [r[:5] for r in single] and len(rows) == 200
    assert [float(r[5]) for r in rows] == pytest.approx([float(r[5]) for r in single], abs=1e-4)


def test_shards_outnumbering_the_intervals_leave_some_empty_and_lose_none(tmp_path: Path) -> None:
    (tmp_path / "three.bed").write_text("chr3\t300200\t300400\nchr3\t300800\t301000\nchr3\t301400\t301600\n")
    predict = ["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'finetune')}", *GENOME,
               f"--test_intervals={tmp_path / 'three.bed'}"]
    (whole,), parts = sharded(tmp_path, predict, 1, "p"), sharded(tmp_path, predict, 5, "p")
    texts = [(p / "predictions.tsv").read_text().splitlines() for p in parts]
    assert [len(t) - 1 for t in texts] == [0, 1, 0, 1, 1]  # slices of 3 rows among 5 shards
    assert [row for t in texts for row in t[1:]] == (whole / "predictions.tsv").read_text().splitlines()[1:]
    assert {t[0] for t in texts} == {(whole / "predictions.tsv").read_text().splitlines()[0]}


def test_a_shard_outside_the_shards_or_a_sharded_training_run_is_refused(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--mode=test", f"--load_checkpoint_path={fixture(VERSION, 'ptmask')}", *GENOME,
                     "--shards=2", "--shard=2", f"--default_root_dir={tmp_path / 'a'}"]) == 2
    assert capsys.readouterr().err.strip() == "error: hparam 'shard': 2 must be below shards (2)"
    assert run.main([*GENOME, "--shards=2", f"--default_root_dir={tmp_path / 'b'}"]) == 2
    assert capsys.readouterr().err.strip() == "error: hparam 'shards': test mode's predictions are sharded; a training run is one"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
