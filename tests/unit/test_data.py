"""Genome cache, windows, shards, datasets and the datamodule (seqmodel.dataset)."""

from __future__ import annotations

import gzip
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from seqmodel.dataset import cache as cache_mod
from seqmodel.dataset.cache import Genome
from seqmodel.dataset.datamodule import SeqDataModule, ShardSampler, read_label_names
from seqmodel.dataset.datasets import FixedWindows, SampledWindows
from seqmodel.dataset.seq import Alphabet, DataError, Intervals
from seqmodel.dataset.windows import WindowSampler, sample_id, shard, split_id, tile_windows

A = Alphabet.dna()


def random_dna(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


@pytest.fixture
def small_genome(tmp_path: Path) -> dict:
    """Three sequences (one shorter than the windows), FASTA split over a plain and a gzip file."""
    rng = np.random.default_rng(0)
    seqs = {"c1": random_dna(rng, 5000), "c2": random_dna(rng, 3000), "tiny": "ACGTA"}
    (tmp_path / "a.fa").write_text(f">c1\n{seqs['c1']}\n>c2\n{seqs['c2']}\n")
    with gzip.open(tmp_path / "b.fa.gz", "wt") as fh:
        fh.write(f">tiny\n{seqs['tiny']}\n")
    (tmp_path / "train.bed").write_text("c1\t0\t4000\nc2\t0\t3000\ntiny\t0\t5\n")
    (tmp_path / "valid.bed").write_text("c1\t4000\t4950\n")
    (tmp_path / "test.bed").write_text("c1\t4950\t5000\nc2\t100\t400\n")
    header = "#chrom\tstart\tend\tx\ty\n"
    (tmp_path / "train.labels.bed").write_text(
        header + "".join(f"c1\t{s}\t{s + 20}\t{s // 20 % 2}\t{s // 40 % 2}\n" for s in range(0, 4000, 20))
    )
    (tmp_path / "valid.labels.bed").write_text(header + "c2\t0\t20\t1\t0\nc2\t2980\t3000\t0\t1\n")
    (tmp_path / "test.labels.bed").write_text(header + "c1\t4900\t4920\t1\t1\ntiny\t1\t3\t0\t0\n")
    hp = {
        "seq_file": f"{tmp_path / 'a.fa'},{tmp_path / 'b.fa.gz'}",
        "train_intervals": str(tmp_path / "train.bed"),
        "valid_intervals": str(tmp_path / "valid.bed"),
        "test_intervals": str(tmp_path / "test.bed"),
        "seq_len": 100,
        "batch_size": 8,
        "cache_dir": str(tmp_path / "cache"),
        "seed": 3,
    }
    return {"seqs": seqs, "hp": hp, "dir": tmp_path}


def finetune_hp(g: dict, **kw) -> dict:
    d = g["dir"]
    return {**g["hp"], "task": "finetune", "train_intervals": str(d / "train.labels.bed"),
            "valid_intervals": str(d / "valid.labels.bed"), "test_intervals": str(d / "test.labels.bed"), **kw}


# -- cache --------------------------------------------------------------------------------------------


def test_cache_matches_fasta_and_is_reused(small_genome, monkeypatch):
    g = small_genome
    genome = Genome.open(g["hp"]["seq_file"], A, g["hp"]["cache_dir"])
    assert genome.path is not None and genome.path.parent == Path(g["hp"]["cache_dir"])
    assert genome.lengths == {"c1": 5000, "c2": 3000, "tiny": 5}
    for name, seq in g["seqs"].items():
        assert A.decode(genome[name]) == seq
    assert isinstance(genome.tokens, np.memmap)
    assert not [p for p in genome.path.parent.iterdir() if p.name.endswith(".tmp")]  # temp files renamed

    def no_build(*a, **k):
        raise AssertionError("cache rebuilt")

    monkeypatch.setattr(Genome, "_build", classmethod(no_build))
    again = Genome.open(g["hp"]["seq_file"], A, g["hp"]["cache_dir"])
    assert again.path == genome.path


def test_cache_invalidated_by_content_change(small_genome):
    g = small_genome
    first = Genome.open(g["hp"]["seq_file"], A, g["hp"]["cache_dir"])
    path = g["dir"] / "a.fa"
    stat = path.stat()
    path.write_text(path.read_text().replace(">c2", ">c2b"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the key is the content
    second = Genome.open(g["hp"]["seq_file"], A, g["hp"]["cache_dir"])
    assert second.path != first.path
    assert "c2b" in second and "c2" not in second


def test_cache_location_from_environment(small_genome, monkeypatch, tmp_path):
    monkeypatch.setenv("SEQMODEL_CACHE_DIR", str(tmp_path / "envcache"))
    genome = Genome.open(small_genome["hp"]["seq_file"], A)
    assert genome.path.parent == tmp_path / "envcache"
    assert cache_mod.default_cache_dir("/x/y") == Path("/x/y")


def test_cache_unwritable_falls_back_to_memory(small_genome, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.warns(UserWarning, match="encoding in memory"):
        genome = Genome.open(small_genome["hp"]["seq_file"], A, blocker / "cache")
    assert genome.path is None and A.decode(genome["c2"]) == small_genome["seqs"]["c2"]


def test_genome_pickles_without_its_tokens(small_genome):
    genome = Genome.open(small_genome["hp"]["seq_file"], A, small_genome["hp"]["cache_dir"])
    _ = genome.tokens
    blob = pickle.dumps(genome)
    assert len(blob) < 4000  # the 8 kb of tokens are not copied
    assert A.decode(pickle.loads(blob)["c1"]) == small_genome["seqs"]["c1"]


# -- windows ------------------------------------------------------------------------------------------


def test_tiling_covers_intervals():
    chrom = np.array([0, 0, 1])
    start = np.array([0, 1000, 10])
    end = np.array([250, 1030, 20])
    chrom_len = np.array([2000, 2000, 50])
    rows, c, s = tile_windows(chrom, start, end, chrom_len, 100)
    assert rows.tolist() == [0, 0, 0, 1, 2]
    assert s.tolist() == [0, 100, 150, 965, 0]  # last tile shifted back; short intervals centred, clipped
    assert c.tolist() == [0, 0, 0, 0, 1]


def test_sampled_windows_inside_intervals_and_proportional():
    chrom = np.array([0, 0, 1])
    start = np.array([0, 5000, 0])
    end = np.array([1100, 8100, 50])  # usable starts: 1001, 3001, 1 (short: centred and clipped)
    sampler = WindowSampler(chrom, start, end, np.array([9000, 9000, 60]), 100)  # per-interval sequence lengths
    c, s = sampler(0, sample_id(0, np.arange(50_000)))
    first = (c == 0) & (s < 1001)
    second = (c == 0) & (s >= 5000) & (s <= 8000)
    third = (c == 1) & (s == 0)
    assert (first | second | third).all()
    frac = np.array([first.mean(), second.mean(), third.mean()])
    assert np.allclose(frac, np.array([1001, 3001, 1]) / 4003, atol=0.01)
    assert len(np.unique(s[second])) > 2500  # positions spread over the interval


def test_sample_ids_round_trip():
    ids = sample_id(7, np.array([0, 5, 2**40 - 1]))
    epoch, index = split_id(ids)
    assert epoch.tolist() == [7, 7, 7] and index.tolist() == [0, 5, 2**40 - 1]


def test_shards_disjoint_and_covering():
    for n, world in [(10, 2), (11, 2), (7, 3), (2, 4)]:
        train = [shard(n, r, world, seed=1, epoch=2, shuffle=True) for r in range(world)]
        allt = np.concatenate(train)
        assert len(set(allt.tolist())) == len(allt)  # disjoint
        assert set(range(n)) <= set(allt.tolist())  # covering
        assert len({len(t) for t in train}) == 1  # equal counts
        evals = [shard(n, r, world, pad="repeat") for r in range(world)]
        alle = np.concatenate(evals)
        assert set(alle.tolist()) == set(range(n)) and len({len(e) for e in evals}) == 1
        assert len(alle) - n < world
    one = shard(10, 0, 1, seed=1, epoch=0, shuffle=True)
    assert sorted(one.tolist()) == list(range(10))
    assert not np.array_equal(one, shard(10, 0, 1, seed=1, epoch=1, shuffle=True))


# -- datasets -----------------------------------------------------------------------------------------


def train_dataset(g: dict, seed: int = 0, rc: bool = False) -> SampledWindows:
    genome = Genome.open(g["hp"]["seq_file"], A, g["hp"]["cache_dir"])
    intervals = Intervals(["c1", "c2", "tiny"], np.array([0, 0, 0]), np.array([4000, 3000, 5]))
    return SampledWindows(genome, intervals, 100, 64, seed=seed, reverse_complement=rc)


def test_sampled_windows_reproducible_per_seed_and_epoch(small_genome):
    ds = train_dataset(small_genome, seed=5)
    ids0 = sample_id(0, np.arange(64))
    a = ds.__getitems__(ids0)["tokens"]
    assert np.array_equal(a, train_dataset(small_genome, seed=5).__getitems__(ids0)["tokens"])
    assert not np.array_equal(a, ds.__getitems__(sample_id(1, np.arange(64)))["tokens"])
    assert not np.array_equal(a, train_dataset(small_genome, seed=6).__getitems__(ids0)["tokens"])
    # batching does not change samples
    single = np.stack([ds[int(i)]["tokens"] for i in ids0[:5]])
    assert np.array_equal(single, a[:5])


def test_windows_match_the_sequence(small_genome):
    ds = train_dataset(small_genome)
    seqs = small_genome["seqs"]
    ids = sample_id(0, np.arange(200))
    chrom, start = ds.sampler(ds.seed, ids)
    tokens = ds.__getitems__(ids)["tokens"]
    names = ds.genome.names
    for c, s, t in zip(chrom.tolist(), start.tolist(), tokens):
        expected = seqs[names[c]][s : s + 100]
        assert A.decode(t) == expected + "N" * (100 - len(expected))  # 'tiny' is padded with none


def test_reverse_complement_augmentation(small_genome):
    plain = train_dataset(small_genome, seed=2)
    rc = train_dataset(small_genome, seed=2, rc=True)
    ids = sample_id(3, np.arange(400))
    p, r = plain.__getitems__(ids)["tokens"], rc.__getitems__(ids)["tokens"]
    same = (p == r).all(axis=1)
    flipped = (A.reverse_complement(p) == r).all(axis=1)
    assert (same | flipped).all()
    assert 0.4 < flipped.mean() < 0.6


def test_dataset_pickles_without_genome_data(small_genome):
    ds = train_dataset(small_genome)
    ds.__getitems__(sample_id(0, np.arange(4)))  # builds the sliding-window view
    clone = pickle.loads(pickle.dumps(ds))
    ids = sample_id(0, np.arange(16))
    assert np.array_equal(clone.__getitems__(ids)["tokens"], ds.__getitems__(ids)["tokens"])


# -- datamodule ---------------------------------------------------------------------------------------


class FakeTrainer:
    def __init__(self, rank: int, world: int) -> None:
        self.global_rank, self.world_size = rank, world


def batches(loader) -> list[dict]:
    return list(loader)


def test_ptmask_batches(small_genome):
    dm = SeqDataModule(small_genome["hp"])
    assert dm.label_names == []
    dm.setup("fit")
    train = batches(dm.train_dataloader())
    b = train[0]
    assert set(b) == {"tokens", "index"}
    assert b["tokens"].dtype == torch.uint8 and b["tokens"].shape == (8, 100)
    assert b["index"].dtype == torch.int64 and b["index"].tolist() == list(range(8))
    assert sum(len(x["index"]) for x in train) == (4000 + 3000 + 5) // 100  # default epoch size
    val = batches(dm.val_dataloader())
    windows = dm.windows("valid")
    assert windows == [("c1", 4000, 4100), ("c1", 4100, 4200), *[("c1", s, s + 100) for s in range(4200, 4850, 100)],
                       ("c1", 4850, 4950)]
    idx = torch.cat([x["index"] for x in val]).tolist()
    assert idx == list(range(len(windows)))
    tokens = torch.cat([x["tokens"] for x in val]).numpy()
    seqs = small_genome["seqs"]
    assert [A.decode(t) for t in tokens] == [seqs[c][s:e] for c, s, e in windows]  # no augmentation
    dm.setup("test")
    assert dm.windows("test") == [("c1", 4900, 5000), ("c2", 100, 200), ("c2", 200, 300), ("c2", 300, 400)]


def test_set_epoch_changes_and_reproduces_training_windows(small_genome):
    def epoch_tokens(epoch: int) -> torch.Tensor:
        dm = SeqDataModule(small_genome["hp"])
        dm.setup("fit")
        dm.set_epoch(epoch)
        return torch.cat([b["tokens"] for b in dm.train_dataloader()])

    e0, e1 = epoch_tokens(0), epoch_tokens(1)
    assert not torch.equal(e0, e1)
    assert torch.equal(e1, epoch_tokens(1))
    dm = SeqDataModule(small_genome["hp"])
    loader = dm.train_dataloader()
    dm.set_epoch(1)  # also after the loader exists
    assert torch.equal(torch.cat([b["tokens"] for b in loader]), e1)


def test_ddp_ranks_disjoint_and_covering(small_genome):
    hp = {**small_genome["hp"], "epoch_samples": 37}

    def rank_batches(rank: int, world: int, split: str) -> tuple[list[int], torch.Tensor]:
        dm = SeqDataModule(hp)
        dm.trainer = FakeTrainer(rank, world)
        dm.set_epoch(4)
        loader = dm.train_dataloader() if split == "train" else dm.val_dataloader()
        assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)  # Lightning keeps it
        got = batches(loader)
        return torch.cat([b["index"] for b in got]).tolist(), torch.cat([b["tokens"] for b in got])

    (i0, t0), (i1, t1) = rank_batches(0, 2, "train"), rank_batches(1, 2, "train")
    assert not set(i0) & set(i1) and set(range(37)) <= set(i0) | set(i1) and len(i0) == len(i1) == 19
    one_idx, one_tok = rank_batches(0, 1, "train")
    # a sample's window depends on (seed, epoch, index) only, not on the rank or world size
    by_index = dict(zip(one_idx, one_tok))
    for i, t in [*zip(i0, t0), *zip(i1, t1)]:
        if i in by_index:
            assert torch.equal(by_index[i], t)
    (v0, _), (v1, _) = rank_batches(0, 2, "valid"), rank_batches(1, 2, "valid")
    assert set(v0) | set(v1) == set(range(len(SeqDataModule(hp).windows("valid"))))
    assert len(v0) == len(v1)


def test_finetune_batches_and_labels(small_genome):
    hp = finetune_hp(small_genome, reverse_complement=True)
    dm = SeqDataModule(hp)
    assert dm.label_names == ["x", "y"] == read_label_names(hp["train_intervals"])
    dm.setup("fit")
    train = batches(dm.train_dataloader())
    b = train[0]
    assert b["labels"].dtype == torch.float32 and b["labels"].shape == (8, 2) and b["tokens"].shape == (8, 100)
    index = torch.cat([x["index"] for x in train])
    assert sorted(index.tolist()) == list(range(200))  # each labelled interval once per epoch, shuffled
    assert index.tolist() != list(range(200))
    labels = torch.cat([x["labels"] for x in train])
    expected = torch.tensor([[s // 20 % 2, s // 40 % 2] for s in range(0, 4000, 20)], dtype=torch.float32)
    assert torch.equal(labels, expected[index])  # labels follow their interval, strand or not
    tokens = torch.cat([x["tokens"] for x in train]).numpy()
    seqs = small_genome["seqs"]["c1"]
    windows = dm.windows("train")
    flipped = 0
    for i, t in zip(index.tolist(), tokens):
        c, s, e = windows[i]
        fwd = seqs[s:e]
        assert A.decode(t) in (fwd, A.decode(A.reverse_complement(A.encode(fwd))))
        flipped += A.decode(t) != fwd
    assert 60 < flipped < 140
    dm.setup("test")
    # windows centred on the intervals, clipped inside the sequence; 'tiny' is padded
    assert dm.windows("test") == [("c1", 4860, 4960), ("tiny", 0, 5)]
    test = batches(dm.test_dataloader())[0]
    assert A.decode(test["tokens"][1].numpy()) == "ACGTA" + "N" * 95
    assert test["labels"].tolist() == [[1, 1], [0, 0]]
    assert dm.windows("valid") == [("c2", 0, 100), ("c2", 2900, 3000)]


def test_finetune_needs_labelled_files(small_genome):
    hp = finetune_hp(small_genome, valid_intervals=small_genome["hp"]["valid_intervals"])
    dm = SeqDataModule(hp)
    with pytest.raises(DataError, match="valid.bed:1: interval before the header line"):
        dm.setup("fit")
    other = small_genome["dir"] / "other.labels.bed"
    other.write_text("#chrom\tstart\tend\ty\tx\nc1\t0\t10\t0\t1\n")
    with pytest.raises(DataError, match="other.labels.bed: label columns"):
        SeqDataModule(finetune_hp(small_genome, test_intervals=str(other))).setup("test")


def test_missing_files_name_the_hparam(small_genome, tmp_path):
    dm = SeqDataModule({**small_genome["hp"], "seq_file": str(tmp_path / "absent.fa")})
    with pytest.raises(DataError, match=r"^seq_file: .*absent.fa: no such file"):
        dm.setup("fit")
    dm = SeqDataModule({**small_genome["hp"], "test_intervals": str(tmp_path / "absent.bed")})
    with pytest.raises(DataError, match=r"^test_intervals: .*absent.bed: no such file"):
        dm.setup("test")
    dm = SeqDataModule({**small_genome["hp"], "task": "finetune", "train_intervals": str(tmp_path)})
    with pytest.raises(DataError, match=r"^train_intervals: .*: is not a file"):
        dm.label_names


def test_workers_give_the_same_batches(small_genome):
    hp = {**small_genome["hp"], "epoch_samples": 40}
    dm0 = SeqDataModule(hp)
    dm0.set_epoch(2)
    ref = torch.cat([b["tokens"] for b in dm0.train_dataloader()])
    dm2 = SeqDataModule({**hp, "num_workers": 2})
    dm2.set_epoch(2)
    got = torch.cat([b["tokens"] for b in dm2.train_dataloader()])
    assert torch.equal(ref, got)


def test_lightning_sets_the_epoch(small_genome):
    import pytorch_lightning as pl

    seen: dict[int, torch.Tensor] = {}

    class Probe(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, _):
            seen.setdefault(self.current_epoch, batch["tokens"].clone())
            return (self.w * batch["tokens"].float().mean()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = SeqDataModule(small_genome["hp"])
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=1, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0)
    trainer.fit(Probe(), datamodule=dm)
    for epoch in (0, 1):
        ref = SeqDataModule(small_genome["hp"])
        ref.set_epoch(epoch)
        assert torch.equal(seen[epoch], next(iter(ref.train_dataloader()))["tokens"])
    assert not torch.equal(seen[0], seen[1])


@pytest.mark.parametrize("epoch_samples, steps", [(80, 3), (24, 3), (24, 4)])  # mid-epoch, at its end, in the next
def test_resume_continues_the_epoch_where_it_stopped(small_genome, tmp_path, epoch_samples, steps):
    """A run resumed from a checkpoint trains on exactly the samples the uninterrupted run would have."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

    from seqmodel.hparam import registry
    from seqmodel.task.ptmask import PtMaskTask

    hp = registry().parse_dict({**small_genome["hp"], "epoch_samples": epoch_samples, "d_model": 16, "n_layers": 1,
                                "n_heads": 2, "d_ff": 32, "num_workers": 1})

    class Record(pl.Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, list[int]]] = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.seen.append((trainer.current_epoch, batch["index"].tolist()))

    def fit(ckpt_path=None) -> list[tuple[int, list[int]]]:
        dm, record = SeqDataModule(hp), Record()
        save = ModelCheckpoint(tmp_path, "step{step}", every_n_train_steps=steps, save_top_k=-1, auto_insert_metric_name=False)
        trainer = pl.Trainer(max_steps=8, accelerator="cpu", logger=False, callbacks=[record, save],
                             enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
        trainer.fit(PtMaskTask(hp, dm.alphabet), datamodule=dm, ckpt_path=ckpt_path)
        return record.seen

    whole = fit()
    assert fit(tmp_path / f"step{steps}.ckpt") == whole[steps:]


# -- sample data --------------------------------------------------------------------------------------

DATA = Path(__file__).resolve().parents[2] / "data"


def _content(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def test_sample_data_regenerates_identically(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample", DATA / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write(tmp_path)
    assert written
    for path in written:
        committed = DATA / "genome" / path.name
        assert committed.exists(), f"{committed} is not committed"
        # Compare content, not gzip bytes: another zlib build may compress the same text differently.
        assert _content(path) == _content(committed), f"{path.name} differs: run `make data`"
    assert sum(p.stat().st_size for p in written) < 2_000_000


@pytest.mark.parametrize("seq_len", [100, 1000, 1100])
def test_sample_labels_match_planted_motifs(tmp_path, seq_len):
    genome = DATA / "genome"
    motifs = [line.split("\t")[1].strip() for line in (genome / "motifs.txt").read_text().splitlines()]
    hp = {"task": "finetune", "seq_file": str(genome / "genome.fa.gz"), "seq_len": seq_len,
          "train_intervals": str(genome / "train.labels.bed"), "valid_intervals": str(genome / "valid.labels.bed"),
          "test_intervals": str(genome / "test.labels.bed"), "cache_dir": str(tmp_path), "batch_size": 256}
    dm = SeqDataModule(hp)
    assert dm.label_names == [f"motif{k + 1}" for k in range(5)]
    dm.setup("test")
    n = 0
    for batch in dm.test_dataloader():
        for t, labels in zip(batch["tokens"].numpy(), batch["labels"].tolist()):
            text = A.decode(t)
            rc = A.decode(A.reverse_complement(t))
            assert [float(m in text or m in rc) for m in motifs] == labels
            n += 1
    assert n > 400
    positives = np.loadtxt(genome / "train.labels.bed", usecols=range(3, 8)).mean(axis=0)
    assert ((positives > 0.2) & (positives < 0.4)).all()


# -- soft-masked repeats --------------------------------------------------------------------------------


@pytest.fixture
def soft_genome(tmp_path: Path) -> dict:
    """Records with lowercase (soft-masked) runs, of lengths that do not fill whole bytes of bits."""
    tmp_path = tmp_path / "soft"  # beside small_genome's files
    tmp_path.mkdir()
    rng = np.random.default_rng(1)
    seqs = {}
    for name, n in (("r1", 1003), ("r2", 13), ("r3", 777)):
        s = list(random_dna(rng, n))
        for start in rng.integers(0, n, 6):
            s[start:start + int(rng.integers(1, 60))] = [b.lower() for b in s[start:start + 60]][:60]
        seqs[name] = "".join(s)[:n]
    (tmp_path / "soft.fa").write_text("".join(f">{k}\n{v}\n" for k, v in seqs.items()))
    (tmp_path / "train.bed").write_text("r1\t0\t1003\nr3\t0\t777\n")
    return {"seqs": seqs, "path": tmp_path / "soft.fa", "dir": tmp_path}


def test_soft_masked_positions_are_kept_beside_the_tokens(soft_genome):
    seqs = soft_genome["seqs"]
    cached = Genome.open(soft_genome["path"], A, soft_genome["dir"] / "cache")
    assert cached.path is not None
    for genome in (cached, Genome.in_memory(soft_genome["path"], A), pickle.loads(pickle.dumps(cached))):
        assert genome.soft_count == sum(c.islower() for s in seqs.values() for c in s)
        for name, seq in seqs.items():
            i = genome.index[name]
            assert A.decode(genome[name]) == seq.upper()  # tokens ignore case
            soft = genome.softmasked(genome.offsets[i:i + 1], len(seq))[0]
            assert soft.tolist() == [c.islower() for c in seq]
        assert not genome.softmasked(np.array([len(genome.tokens) - 2]), 5)[0, 2:].any()  # past the end


def test_soft_mask_follows_the_strand_of_its_window(soft_genome):
    genome = Genome.open(soft_genome["path"], A, soft_genome["dir"] / "cache")
    intervals = Intervals(["r1", "r3"], np.array([0, 0]), np.array([1003, 777]))
    plain = SampledWindows(genome, intervals, 100, 64, seed=4, soft_mask=True)
    rc = SampledWindows(genome, intervals, 100, 64, seed=4, soft_mask=True, reverse_complement=True)
    ids = sample_id(0, np.arange(64))
    p, r = plain.__getitems__(ids), rc.__getitems__(ids)
    flipped = ~(p["tokens"] == r["tokens"]).all(axis=1)
    assert flipped.any() and (~flipped).any() and p["soft"].any()
    assert np.array_equal(r["soft"][flipped], p["soft"][flipped, ::-1])
    assert np.array_equal(r["soft"][~flipped], p["soft"][~flipped])
    assert "soft" not in SampledWindows(genome, intervals, 100, 64).__getitems__(ids)


def test_batches_carry_the_soft_mask_only_when_repeat_weight_uses_it(soft_genome, small_genome):
    bed = str(soft_genome["dir"] / "train.bed")
    hp = {**small_genome["hp"], "seq_file": str(soft_genome["path"]), "train_intervals": bed, "valid_intervals": bed}
    for weight, keys in ((1.0, {"tokens", "index"}), (0.1, {"tokens", "index", "soft"})):
        dm = SeqDataModule({**hp, "repeat_weight": weight})
        dm.setup("fit")
        assert set(next(iter(dm.train_dataloader()))) == keys
    lowercase = small_genome["dir"] / "lower.fa"
    lowercase.write_text(">c1\n" + small_genome["seqs"]["c1"].lower() + "\n")
    c1 = str(small_genome["dir"] / "valid.bed")
    dm = SeqDataModule({**hp, "seq_file": str(lowercase), "train_intervals": c1, "valid_intervals": c1,
                        "repeat_weight": 0.1})
    with pytest.warns(UserWarning, match="100% of the genome is lowercase"):
        dm.setup("fit")


def test_a_new_cache_format_replaces_the_old_cache_of_the_same_files(soft_genome):
    cache = soft_genome["dir"] / "cache"
    genome = Genome.open(soft_genome["path"], A, cache)
    index = json.loads(genome.path.with_suffix(".json").read_text())
    old = cache / "genome-0123.json"  # the same files, encoded by an older version
    old.write_text(json.dumps({**index, "format": cache_mod.CACHE_FORMAT - 1}))
    old.with_suffix(".tokens").write_bytes(b"x")
    other = cache / "genome-4567.json"  # other files
    other.write_text(json.dumps({**index, "format": 1, "sources": [{"path": "b.fa", "sha256": "0" * 64}]}))
    genome.path.with_suffix(".json").unlink()  # rebuilt by the next open
    Genome.open(soft_genome["path"], A, cache)
    assert not old.exists() and not old.with_suffix(".tokens").exists() and other.exists()
