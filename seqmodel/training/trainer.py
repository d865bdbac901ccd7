"""Map the trainer hparams onto a Lightning Trainer writing into the run's output directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from seqmodel.outputs.checkpoint import AtomicCheckpointIO
from seqmodel.errors import UserError


def fraction_or_count(value: float) -> float | int:
    """Lightning reads a float as a fraction of the epoch and an int as a number of batches."""
    return value if value <= 1.0 else int(value)


class LineProgress(ProgressBar):
    """Progress as plain lines, for logs that are no terminal (a pod's `kubectl logs`): one line every
    log_every_n_steps optimizer steps and one after each validation, with the newest logged metrics."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._last_step = -1
        self._start = 0.0

    def disable(self) -> None:  # Lightning disables it on every rank but 0
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self._enabled and step != self._last_step and (step % trainer.log_every_n_steps == 0
                                                         or step == trainer.max_steps):
            self._last_step = step
            total = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
            self._line(trainer, f"step {step}{total} epoch {trainer.current_epoch}", "train/")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled and not trainer.sanity_checking:
            self._line(trainer, f"validation at step {trainer.global_step}", "val/")

    def _line(self, trainer: pl.Trainer, head: str, prefix: str) -> None:
        metrics = "  ".join(f"{k} {float(v):.4f}" for k, v in sorted(trainer.callback_metrics.items())
                            if k.startswith(prefix))
        print(f"{head}  {time.monotonic() - self._start:.0f} s  {metrics}".rstrip(), flush=True)


def build_trainer(hparams: Mapping[str, Any], out: Path, callbacks: Sequence[pl.Callback]) -> pl.Trainer:
    """Loggers write out/tensorboard/version_<n> and out/csv/version_<n>/metrics.csv: a resumed run adds a
    version instead of overwriting the logs of the first attempt."""
    val_check = fraction_or_count(hparams["val_check_interval"])
    try:
        return pl.Trainer(
            default_root_dir=out,
            max_steps=hparams["max_steps"],
            max_epochs=hparams["max_epochs"],
            accelerator=hparams["accelerator"],
            devices=hparams["devices"],
            num_nodes=hparams["num_nodes"],
            val_check_interval=val_check,
            # a batch count may span epochs (step-based validation), a fraction is per epoch
            check_val_every_n_epoch=None if isinstance(val_check, int) else 1,
            limit_train_batches=fraction_or_count(hparams["limit_train_batches"]),
            limit_val_batches=fraction_or_count(hparams["limit_val_batches"]),
            limit_test_batches=fraction_or_count(hparams["limit_test_batches"]),
            limit_predict_batches=fraction_or_count(hparams["limit_test_batches"]),  # test mode's other outputs
            log_every_n_steps=hparams["log_every_n_steps"],
            precision=hparams["precision"],
            accumulate_grad_batches=hparams["accumulate_grad_batches"],
            gradient_clip_val=hparams["gradient_clip_val"] or None,
            logger=[TensorBoardLogger(out, name="tensorboard"), CSVLogger(out, name="csv")],
            # a bar on a terminal, lines in a log (a pod's log is no terminal)
            callbacks=[*callbacks, TQDMProgressBar() if sys.stderr.isatty() else LineProgress()],
            enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
            plugins=[AtomicCheckpointIO()],
            enable_model_summary=False,
        )
    except (MisconfigurationException, ValueError, TypeError) as err:  # Lightning raises all three
        raise UserError(f"trainer settings: {str(err).strip().splitlines()[0]}") from None
