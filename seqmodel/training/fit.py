"""One resolved run (seqmodel.config.resolve), train or test: data, task, trainer, outputs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from seqmodel.components import load_class
from seqmodel.config.resolve import Resolved
from seqmodel.dataset.base import DataModuleBase
from seqmodel.errors import Stopped, UserError
from seqmodel.outputs import checkpoint
from seqmodel.outputs.run_dir import is_global_zero, prepare_output_dir, scalars, write_hparams, write_json
from seqmodel.task.base import SeqTask
from seqmodel.training import predict
from seqmodel.training.trainer import build_trainer


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


def run(resolved: Resolved, summary: dict[str, Any]) -> None:
    """Train or test as the resolved hparams' `mode` says, filling `summary` (metrics, output paths) as it
    goes."""
    hparams, start = resolved.hparams, resolved.start
    predict.check_shard(hparams)
    out = Path(hparams["default_root_dir"])
    lead = is_global_zero()  # under DDP the other ranks start once it has prepared `out`
    prepare_output_dir(out, resuming=bool(hparams["resume_from_checkpoint"]) or not lead)
    name = resolved.name
    summary.update(name=name, mode=hparams["mode"])
    summary["outputs"]["dir"] = str(out)
    summary["outputs"]["hparams"] = str(write_hparams(out, hparams, name, resolved.named) if lead
                                        else out / "hparams.yaml")
    pl.seed_everything(hparams["seed"], workers=True, verbose=False)

    task_class: type[SeqTask] = load_class("task", hparams["task"])
    datamodule = build_datamodule(hparams, labelled=task_class.needs_labels)
    testing = start is not None and start.flag == "load_checkpoint_path" and hparams["mode"] == "test"
    labels = checkpoint.label_names_of(start.ckpt) if testing else None
    if labels is not None:  # the model's labels, not those of the files it was trained on
        datamodule.use_label_names(labels)
    if not (hparams["mode"] == "test" and hparams["predict"] == "variant_effect"):  # that reads a VCF alone
        datamodule.setup("test" if hparams["mode"] == "test" else "fit")  # bad data fails before the trainer talks
    label_names = datamodule.label_names if task_class.needs_labels else None
    task = task_class.from_hparams(hparams, datamodule.alphabet, label_names)
    task.named_hparams = sorted(resolved.named)
    if start is not None and start.flag != "resume_from_checkpoint":
        load_weights(task, start.flag, start.path, start.ckpt)

    if hparams["mode"] == "test":
        trainer, outputs, metrics = predict.test(hparams, out, task, datamodule)
        summary["outputs"].update(outputs)
    else:
        has_val = hparams["limit_val_batches"] > 0
        checkpoints = ModelCheckpoint(  # without validation there is no best: only last.ckpt
            dirpath=out / "checkpoints", filename="best", save_last=True, save_top_k=1 if has_val else 0,
            monitor=task.monitor if has_val else None, mode=task.monitor_mode,
        )
        trainer = build_trainer(hparams, out, [checkpoints])
        resume = start is not None and start.flag == "resume_from_checkpoint"
        if resume:  # an ASHA promotion's log shows it continues its trial's run, not a new one
            print(f"resuming from {start.path} at step {start.ckpt.get('global_step', 0)}", file=sys.stderr, flush=True)
        last = out / "checkpoints" / "last.ckpt"
        try:
            trainer.fit(task, datamodule=datamodule, ckpt_path=start.path if resume else None)
        except SIGTERMException:  # Lightning's SystemExit of status 0 at a step's end: not a finished run
            trainer.save_checkpoint(last, weights_only=False)
            raise Stopped(f"stopped by SIGTERM at step {trainer.global_step}; {last} resumes the run") from None
        metrics = scalars(trainer.callback_metrics)
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
