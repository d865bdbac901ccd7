"""One run, train or test: hparams resolved against checkpoints, then data, task, trainer, outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from seqmodel import checkpoint
from seqmodel.dataset.datamodule import SeqDataModule
from seqmodel.errors import UserError
from seqmodel.hparam import registry
from seqmodel.outputs import is_global_zero, prepare_output_dir, scalars, write_hparams, write_json
from seqmodel.task.base import SeqTask
from seqmodel.task.factory import build_task
from seqmodel.task.predictions import PredictionWriter
from seqmodel.trainer import build_trainer


def _inherit(hparams: dict[str, Any], source: Mapping[str, Any], names: Sequence[str], explicit: set[str],
             where: str) -> dict[str, Any]:
    """`hparams` with `names` taken from a checkpoint's hparams, except those given explicitly."""
    taken = {name: source[name] for name in names if name in source and name not in explicit}
    return registry().parse_dict({**hparams, **taken}, where=where)


def resolve(hparams: dict[str, Any], explicit: set[str], out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Final hparams and the checkpoints the run starts from ({flag name: (path, migrated checkpoint)}).

    A run that resumes or loads weights learns with the checkpoint's tracked hparams (its model must
    fit them); a run that loads only an encoder takes the model hparams. Explicit values win, so a
    mismatch is the user's choice and fails loudly at load time.
    """
    flags = [f for f in ("resume_from_checkpoint", "load_checkpoint_path", "load_encoder_from_checkpoint") if hparams[f]]
    if len(flags) > 1:
        raise UserError(f"--{flags[0]} and --{flags[1]} exclude each other: a run starts from one checkpoint")
    if hparams["mode"] == "test" and flags != ["load_checkpoint_path"]:
        raise UserError("--mode=test needs --load_checkpoint_path=<checkpoint of the model to test>")
    if not flags:
        return hparams, {}
    flag = flags[0]
    path = checkpoint.resolve_resume(hparams[flag], out) if flag == "resume_from_checkpoint" else Path(hparams[flag])
    ckpt = checkpoint.read(path)
    reg = registry()
    if flag == "load_encoder_from_checkpoint":
        names = [hp.name for group in reg.groups if group.owner == "model" for hp in group.hparams]
    else:
        names = [hp.name for hp in reg if hp.tracked]
    hparams = _inherit(hparams, checkpoint.hparams_of(ckpt), names, explicit, where=f"{path}: ")
    return hparams, {flag: (path, ckpt)}


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


def run(hparams: dict[str, Any], explicit: set[str], summary: dict[str, Any]) -> None:
    """Train or test as hparams['mode'] says, filling `summary` (metrics, output paths) as it goes."""
    out = Path(hparams["default_root_dir"])
    hparams, start = resolve(hparams, explicit, out)
    lead = is_global_zero()  # under DDP the other ranks start once it has prepared `out`
    prepare_output_dir(out, resuming=bool(hparams["resume_from_checkpoint"]) or not lead)
    name = registry().canonical_name(hparams)
    summary.update(name=name, mode=hparams["mode"])
    summary["outputs"]["dir"] = str(out)
    summary["outputs"]["hparams"] = str(write_hparams(out, hparams, name) if lead else out / "hparams.yaml")
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)

    datamodule = SeqDataModule(hparams)
    datamodule.setup("test" if hparams["mode"] == "test" else "fit")  # bad data fails before the trainer talks
    label_names = datamodule.label_names if hparams["task"] == "finetune" else None
    task = build_task(hparams, datamodule.alphabet, label_names)
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
