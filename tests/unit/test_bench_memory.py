"""The memory benchmark compares like with like: its old path computes the same loss as the task's."""

from __future__ import annotations

import pytest
import torch

from bench.bench_memory import gathered_loss, heap_free_mb, slope
from bench.bench_train import task_loss
from seqmodel.dataset.seq import Alphabet
from seqmodel.hparam import registry
from seqmodel.task.ptmask import PtMaskTask


def test_the_gathered_path_is_the_same_loss_as_the_tasks() -> None:
    hp = registry().parse_dict({"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 50,
                                "dropout": 0.0})
    alphabet = Alphabet.dna()
    task = PtMaskTask(hp, alphabet)
    bases = torch.tensor(alphabet.base_indices, dtype=torch.uint8)
    batch = {"tokens": bases[torch.randint(len(bases), (3, 50))]}
    torch.manual_seed(1)
    old = gathered_loss(task, batch)
    torch.manual_seed(1)
    assert task_loss(task, batch).item() == pytest.approx(old.item(), rel=1e-5)


def test_slope_and_heap_reading() -> None:
    assert slope([10, 20, 30], [105, 110, 115]) == pytest.approx(0.5)
    free = heap_free_mb()
    assert free is not None and free >= 0  # the trainer images and this machine run glibc
