"""The Lightning tasks on tiny fake data: they learn, log their metrics, and train only on what they should."""

from __future__ import annotations

from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from conftest import LABELS, FakeDataModule
from seqmodel.hparam import HparamError
from seqmodel.task.factory import build_task
from seqmodel.task.finetune import FineTuneTask
from seqmodel.task.masking import KEPT, mask_tokens
from seqmodel.task.metrics import ConstantBaselineAccuracy
from seqmodel.task.optim import build_optimizer
from seqmodel.task.ptmask import PtMaskTask


def fit(task: pl.LightningModule, data: FakeDataModule, steps: int) -> dict[str, float]:
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(task, datamodule=data)
    return {k: float(v) for k, v in trainer.validate(task, datamodule=data, verbose=False)[0].items()}


def uniform(data: FakeDataModule) -> FakeDataModule:
    """Make every fake window one repeated base, each base in a quarter of them: a masked base follows from
    any other position, and always predicting one base is right a quarter of the time."""
    bases = torch.tensor(data.alphabet.base_indices, dtype=torch.uint8)
    for split in data.data.values():
        n, length = split.tokens.shape
        split.tokens = bases[torch.arange(n) % len(bases)][:, None].expand(n, length).clone()
    return data


def test_ptmask_beats_the_base_frequency_baseline(tiny_hparams: dict[str, Any]) -> None:
    hp = {**tiny_hparams, "lr": 1e-2, "mask_prop": 0.15}
    data = uniform(FakeDataModule(hp))
    metrics = fit(PtMaskTask(hp, data.alphabet), data, steps=40)
    assert metrics["val/baseline_acc"] == pytest.approx(0.25, abs=0.08)
    assert metrics["val/masked_acc"] > metrics["val/baseline_acc"] + 0.5


def test_finetune_learns_planted_motifs(tiny_hparams: dict[str, Any]) -> None:
    hp = {**tiny_hparams, "task": "finetune", "lr": 1e-2}
    data = FakeDataModule(hp)
    task = build_task(hp, data.alphabet, data.label_names)
    assert isinstance(task, FineTuneTask)
    metrics = fit(task, data, steps=100)
    assert metrics["val/auroc"] > 0.8
    assert {f"val/auroc_{name}" for name in LABELS} <= set(metrics)


class OneLabel(FakeDataModule):
    """The fake windows with their first label only: one binary label, the commonest fine-tuning task."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        super().__init__(hparams)
        for split in self.data.values():
            split.labels = split.labels[:, :1]

    @property
    def label_names(self) -> list[str]:
        return LABELS[:1]


def test_finetune_on_a_single_label_logs_its_auroc(tiny_hparams: dict[str, Any]) -> None:
    hp = {**tiny_hparams, "task": "finetune", "lr": 1e-2, "rc_average": True}
    data = OneLabel(hp)
    metrics = fit(build_task(hp, data.alphabet, data.label_names), data, steps=60)
    assert metrics["val/auroc"] > 0.8
    assert metrics[f"val/auroc_{LABELS[0]}"] == metrics["val/auroc"]
    assert f"val/auroc_{LABELS[1]}" not in metrics


def test_ptmask_loss_has_gradient_only_at_selected_positions(tiny_hparams: dict[str, Any]) -> None:
    data = FakeDataModule(tiny_hparams)
    task = PtMaskTask(tiny_hparams, data.alphabet)
    tokens = data.data["train"].tokens[:4]
    captured: dict[str, torch.Tensor] = {}

    def keep_output(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        output.retain_grad()
        captured["hidden"] = output

    task.encoder.register_forward_hook(keep_output)
    torch.manual_seed(5)
    task._selected({"tokens": tokens}).losses.sum().backward()
    torch.manual_seed(5)
    selected = mask_tokens(tokens, task.masking, task.base_indices).selected
    grad = captured["hidden"].grad.abs().sum(dim=-1)  # [B, L]
    assert selected.any()
    assert (grad[~selected] == 0).all() and (grad[selected] > 0).all()


def test_the_token_head_sees_one_shape_whatever_the_masking_draws(tiny_hparams: dict[str, Any]) -> None:
    # a head input that changes size each step fragments the allocator's heap (BENCHMARKS.md, memory)
    data = FakeDataModule(tiny_hparams)
    task = PtMaskTask(tiny_hparams, data.alphabet)
    tokens = data.data["train"].tokens[:4]
    shapes, counts = set(), set()
    task.head.register_forward_hook(lambda module, args, output: shapes.add(tuple(args[0].shape)))
    for seed in range(5):
        torch.manual_seed(seed)
        counts.add(task._selected({"tokens": tokens}).losses.numel())
    assert len(counts) > 1  # the draws differ in how many positions carry loss
    assert shapes == {(*tokens.shape, tiny_hparams["d_model"])}


class CopyInput(torch.nn.Module):
    """An 'encoder' whose prediction at each position is the token it was given: right wherever the input
    was kept, never where the mask token replaced it."""

    def __init__(self, n_tokens: int) -> None:
        super().__init__()
        self.n_tokens = n_tokens

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(tokens.long(), self.n_tokens).float()  # [B, L, V]


def copying_task(hparams: dict[str, Any]) -> tuple[PtMaskTask, torch.Tensor]:
    data = FakeDataModule(hparams)
    task = PtMaskTask({**hparams, "mask_prop": 0.3, "random_prop": 0.3, "keep_prop": 0.3}, data.alphabet)
    task.encoder, task.head = CopyInput(data.alphabet.n_tokens), torch.nn.Identity()
    return task, data.data["valid"].tokens[:16]


def test_masked_acc_counts_only_the_positions_the_mask_token_replaced(tiny_hparams: dict[str, Any]) -> None:
    task, tokens = copying_task(tiny_hparams)
    torch.manual_seed(0)
    task._evaluate("val", {"tokens": tokens})
    accuracy = {kind: task.metrics[f"val_{kind}_acc"].compute().item() for kind in ("masked", "random", "kept")}
    assert accuracy["masked"] == 0.0 and accuracy["kept"] == 1.0  # kept positions never count as masked
    assert accuracy["random"] == pytest.approx(0.25, abs=0.1)  # a random base is the original one time in 4
    assert task.metrics["val_baseline"].counts.sum() == task.metrics["val_masked_acc"].weight  # on masked ones


def test_predictions_split_each_window_by_kind_of_position(tiny_hparams: dict[str, Any]) -> None:
    task, tokens = copying_task(tiny_hparams)
    torch.manual_seed(0)
    rows = task.test_step({"tokens": tokens, "index": torch.arange(len(tokens))}, 0)["values"]  # [B, 9]
    columns = dict(zip(task.prediction_columns, rows.T))
    assert list(columns) == ["n_masked", "masked_loss", "masked_acc", "n_random", "random_loss", "random_acc",
                             "n_kept", "kept_loss", "kept_acc"]
    assert (columns["masked_acc"] == 0).all() and (columns["kept_acc"] == 1).all()
    torch.manual_seed(0)
    kinds = mask_tokens(tokens, task.masking, task.base_indices)
    assert torch.equal(columns["n_kept"], (kinds.selected & (kinds.kind == KEPT)).sum(dim=1).float())


def finetune_on_both_strands(hparams: dict[str, Any], rc_average: bool) -> tuple[FineTuneTask, dict]:
    data = FakeDataModule(hparams)
    torch.manual_seed(0)
    task = build_task({**hparams, "task": "finetune", "rc_average": rc_average}, data.alphabet, data.label_names)
    windows = data.data["valid"]
    return task.eval(), {"tokens": windows.tokens[:6], "labels": windows.labels[:6], "index": torch.arange(6)}


def test_rc_average_gives_a_window_and_its_reverse_complement_one_prediction(tiny_hparams: dict[str, Any]) -> None:
    task, batch = finetune_on_both_strands(tiny_hparams, rc_average=True)
    other = {**batch, "tokens": task.reverse_complement(batch["tokens"])}
    assert torch.equal(other["tokens"], torch.as_tensor(task.alphabet.reverse_complement(batch["tokens"].numpy())).long())
    with torch.no_grad():
        assert torch.allclose(task.test_step(batch, 0)["values"], task.test_step(other, 0)["values"], atol=1e-6)
    plain, _ = finetune_on_both_strands(tiny_hparams, rc_average=False)  # the same weights, one strand
    with torch.no_grad():
        assert not torch.allclose(plain.test_step(batch, 0)["values"], plain.test_step(other, 0)["values"])


def test_constant_baseline_is_the_most_frequent_target_share() -> None:
    metric = ConstantBaselineAccuracy(n_tokens=6)
    metric.update(torch.tensor([2, 2, 3]))
    metric.update(torch.tensor([2, 5]))
    assert metric.compute().item() == pytest.approx(3 / 5)


def test_optimizer_decays_matrices_only_and_warms_up_linearly(tiny_hparams: dict[str, Any]) -> None:
    hp = {**tiny_hparams, "lr": 1e-3, "warmup_steps": 4, "weight_decay": 0.1}
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    optimizer, scheduler = build_optimizer(model, hp)
    decayed, plain = optimizer.param_groups
    assert [p.dim() for p in decayed["params"]] == [2] and decayed["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in plain["params"]) and plain["weight_decay"] == 0.0
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


@pytest.mark.parametrize("decay, after_warmup", [
    ("constant", [1.0, 1.0, 1.0, 1.0, 1.0]),
    ("linear", [1.0, 0.75, 0.5, 0.25, 0.0]),
    ("cosine", [1.0, 0.853553, 0.5, 0.146447, 0.0]),
])
def test_the_learning_rate_decays_after_the_warmup_to_zero_at_the_last_step(
        tiny_hparams: dict[str, Any], decay: str, after_warmup: list[float]) -> None:
    hp = {**tiny_hparams, "lr": 1.0, "warmup_steps": 2, "lr_decay": decay}
    optimizer, scheduler = build_optimizer(torch.nn.Linear(2, 2), hp, total_steps=6)
    rates = []
    for _ in range(7):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.5, 1.0, *after_warmup], abs=1e-6)


def test_a_decay_needs_the_runs_length(tiny_hparams: dict[str, Any]) -> None:
    hp = {**tiny_hparams, "lr_decay": "cosine"}
    with pytest.raises(HparamError, match="lr_decay.*needs max_steps or max_epochs"):
        build_optimizer(torch.nn.Linear(2, 2), hp, total_steps=float("inf"))
    build_optimizer(torch.nn.Linear(2, 2), {**hp, "lr_decay": "constant"}, total_steps=float("inf"))


def test_compile_option_keeps_parameter_names(tiny_hparams: dict[str, Any]) -> None:
    data = FakeDataModule(tiny_hparams)
    plain = PtMaskTask(tiny_hparams, data.alphabet)
    compiled = PtMaskTask({**tiny_hparams, "compile": True}, data.alphabet)
    plain.configure_model()
    compiled.configure_model()
    assert plain.encoder._compiled_call_impl is None
    assert compiled.encoder._compiled_call_impl is not None
    assert compiled.state_dict().keys() == plain.state_dict().keys()


def test_repeat_weight_weighs_soft_masked_positions_in_the_loss_and_leaves_them_out_of_metrics(
        tiny_hparams: dict[str, Any]) -> None:
    task, tokens = copying_task({**tiny_hparams, "repeat_weight": 0.1})
    soft = torch.zeros(tokens.shape, dtype=torch.bool)
    soft[:, : tokens.shape[1] // 2] = True  # the first half of every window is a repeat
    torch.manual_seed(0)
    selected = task._selected({"tokens": tokens, "soft": soft})
    torch.manual_seed(0)
    chosen = mask_tokens(tokens, task.masking, task.base_indices).selected
    in_repeat = soft[chosen]
    assert torch.equal(selected.weights, torch.where(in_repeat, 0.1, 1.0))
    expected = (0.1 * selected.losses[in_repeat].sum() + selected.losses[~in_repeat].sum()) / (
        0.1 * in_repeat.sum() + (~in_repeat).sum())
    assert selected.loss().item() == pytest.approx(expected.item())
    torch.manual_seed(0)
    rows = task.test_step({"tokens": tokens, "soft": soft, "index": torch.arange(len(tokens))}, 0)["values"]
    counted = dict(zip(task.prediction_columns, rows.T))
    everywhere = chosen.sum(dim=1).float()
    outside = (chosen & ~soft).sum(dim=1).float()
    assert torch.equal(counted["n_masked"] + counted["n_random"] + counted["n_kept"], outside)
    assert (outside < everywhere).all()
    # repeat_weight 1 (the default): case is ignored, every position counts alike
    plain, _ = copying_task(tiny_hparams)
    torch.manual_seed(0)
    assert (plain._selected({"tokens": tokens, "soft": soft}).weights == 1).all()
