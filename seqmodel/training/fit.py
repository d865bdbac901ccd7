"""One run, train or test: hparams resolved against checkpoints, then data, task, trainer, outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from seqmodel.outputs import checkpoint
from seqmodel.components import SLOTS, group_owner, load_class
from seqmodel.contract import CHECKPOINT_FLAGS
from seqmodel.dataset.base import DataModuleBase
from seqmodel.errors import UserError
from seqmodel.hparam import Hparams, registry_for
from seqmodel.outputs.run_dir import is_global_zero, prepare_output_dir, scalars, write_hparams, write_json
from seqmodel.task.base import SeqTask
from seqmodel.task.predictions import PredictionWriter
from seqmodel.training.trainer import build_trainer


Preloaded = Mapping[str, tuple[Path, dict[str, Any]]]


def inherited_names(reg: Hparams, flag: str, hparams: Mapping[str, Any]) -> list[str]:
    """The hparams a run takes from the checkpoint it starts from: the tracked ones, or for an encoder
    only the model's (the built-in `model` group with the `encoder` slot, and the encoder's own)."""
    if flag == "load_encoder_from_checkpoint":
        owners = {"model", group_owner("encoder", hparams["encoder"])}
        return [hp.name for group in reg.groups if group.owner in owners for hp in group.hparams]
    return [hp.name for hp in reg if hp.tracked]


def resolve(hparams: dict[str, Any], explicit: set[str], out: Path, reg: Hparams | None = None,
            preloaded: Preloaded | None = None) -> tuple[dict[str, Any], dict[str, Any], Hparams]:
    """Final hparams, the checkpoints the run starts from ({flag name: (path, migrated checkpoint)}) and
    the registry of its components.

    A run that resumes or loads weights learns with the checkpoint's tracked hparams (its model must
    fit them), components included; a run that loads only an encoder takes the model hparams. Explicit
    values win, so a mismatch is the user's choice and fails loudly at load time.
    """
    reg = reg or registry_for(hparams)
    flags = [f for f in CHECKPOINT_FLAGS if hparams[f]]
    if len(flags) > 1:
        raise UserError(f"--{flags[0]} and --{flags[1]} exclude each other: a run starts from one checkpoint")
    if hparams["mode"] == "test" and flags != ["load_checkpoint_path"]:
        raise UserError("--mode=test needs --load_checkpoint_path=<checkpoint of the model to test>")
    if not flags:
        return hparams, {}, reg
    flag = flags[0]
    path = checkpoint.resolve_resume(hparams[flag], out) if flag == "resume_from_checkpoint" else Path(hparams[flag])
    path, ckpt = (preloaded or {}).get(flag) or (path, checkpoint.read(path))
    source = checkpoint.hparams_of(ckpt)
    where = f"{path}: "
    # The checkpoint's components first: they decide which hparams exist (seqmodel.run chose them already).
    slots = [s for s in SLOTS if s in inherited_names(reg, flag, hparams) and s in source and s not in explicit]
    effective = {**hparams, **{s: source[s] for s in slots}}
    if any(source[s] != hparams[s] for s in slots):
        reg = registry_for(effective)
    taken = {name: source[name] for name in inherited_names(reg, flag, effective)
             if name in source and name not in explicit}
    merged = {k: v for k, v in {**hparams, **taken}.items() if k in reg}
    return reg.parse_dict(merged, where=where), {flag: (path, ckpt)}, reg


def load_weights(task: SeqTask, flag: str, path: Path, ckpt: dict[str, Any]) -> None:
    """Initialise the task from a checkpoint: the whole model, or only its encoder."""
    source_task = checkpoint.hparams_of(ckpt).get("task")
    if flag == "load_checkpoint_path" and source_task != task.hparams["task"]:
        raise UserError(
            f"{path}: a {source_task} checkpoint cannot initialise a {task.hparams['task']} model; "
            f"use --load_encoder_from_checkpoint for its encoder"
        )
    labels = checkpoint.label_names_of(ckpt)
    if flag == "load_checkpoint_path" and labels is not None and labels != getattr(task, "label_names", None):
        raise UserError(f"{path}: the model predicts labels {labels}, the data has {task.label_names}")
    module, state = (task.encoder, checkpoint.encoder_state(ckpt)) if flag == "load_encoder_from_checkpoint" \
        else (task, ckpt["state_dict"])
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:300]  # load_state_dict lists every mismatch on its own line
        raise UserError(f"{path}: weights do not fit this model ({detail})") from None


def build_datamodule(hparams: Mapping[str, Any], labelled: bool) -> DataModuleBase:
    """The data module that hparam `dataset` names."""
    return load_class("dataset", hparams["dataset"]).from_hparams(hparams, labelled=labelled)


def run(hparams: dict[str, Any], explicit: set[str], summary: dict[str, Any], reg: Hparams | None = None,
        preloaded: Preloaded | None = None) -> None:
    """Train or test as hparams['mode'] says, filling `summary` (metrics, output paths) as it goes.

    `reg` is the registry of the chosen components (default: made from hparams); `preloaded` holds the
    checkpoints already read while choosing them."""
    out = Path(hparams["default_root_dir"])
    hparams, start, reg = resolve(hparams, explicit, out, reg, preloaded)
    lead = is_global_zero()  # under DDP the other ranks start once it has prepared `out`
    prepare_output_dir(out, resuming=bool(hparams["resume_from_checkpoint"]) or not lead)
    name = reg.canonical_name(hparams)
    summary.update(name=name, mode=hparams["mode"])
    summary["outputs"]["dir"] = str(out)
    summary["outputs"]["hparams"] = str(write_hparams(out, hparams, name) if lead else out / "hparams.yaml")
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)

    task_class: type[SeqTask] = load_class("task", hparams["task"])
    datamodule = build_datamodule(hparams, labelled=task_class.needs_labels)
    datamodule.setup("test" if hparams["mode"] == "test" else "fit")  # bad data fails before the trainer talks
    label_names = datamodule.label_names if task_class.needs_labels else None
    task = task_class.from_hparams(hparams, datamodule.alphabet, label_names)
    for flag, (path, ckpt) in start.items():
        if flag != "resume_from_checkpoint":
            load_weights(task, flag, path, ckpt)

    if hparams["mode"] == "test":
        writer = PredictionWriter(out / "predictions.tsv")
        trainer = build_trainer(hparams, out, [writer])
        metrics = scalars(trainer.test(task, datamodule=datamodule, verbose=False)[0])
        summary["outputs"]["predictions"] = str(writer.path)
    else:
        has_val = hparams["limit_val_batches"] > 0
        checkpoints = ModelCheckpoint(
            dirpath=out / "checkpoints", filename="best", save_last=True,
            monitor=task.monitor if has_val else None, mode=task.monitor_mode,
        )
        trainer = build_trainer(hparams, out, [checkpoints])
        resume = start.get("resume_from_checkpoint")
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume[0] if resume else None)
        metrics = scalars(trainer.callback_metrics)
        last = out / "checkpoints" / "last.ckpt"
        trainer.save_checkpoint(last, weights_only=False)  # the final step, which may fall between validations
        if trainer.interrupted:  # Lightning turns Ctrl-C/SIGTERM into a quiet return; the run did not finish
            raise KeyboardInterrupt(f"interrupted at step {trainer.global_step}; resume with --resume_from_checkpoint=last")
        summary["outputs"]["last_checkpoint"] = str(last)
        if checkpoints.best_model_path:
            summary["outputs"]["best_checkpoint"] = checkpoints.best_model_path
            metrics[f"best/{task.monitor}"] = float(checkpoints.best_model_score)
    summary["metrics"] = metrics
    summary["outputs"]["metrics"] = str(out / "metrics.json")
    if trainer.is_global_zero:
        write_json(out / "metrics.json", {"metrics": metrics, "global_step": trainer.global_step})
