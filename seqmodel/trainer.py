"""Map the trainer hparams onto a Lightning Trainer writing into the run's output directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytorch_lightning as pl
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from seqmodel.checkpoint import AtomicCheckpointIO
from seqmodel.errors import UserError


def fraction_or_count(value: float) -> float | int:
    """Lightning reads a float as a fraction of the epoch and an int as a number of batches."""
    return value if value <= 1.0 else int(value)


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
            log_every_n_steps=hparams["log_every_n_steps"],
            precision=hparams["precision"],
            accumulate_grad_batches=hparams["accumulate_grad_batches"],
            gradient_clip_val=hparams["gradient_clip_val"] or None,
            logger=[TensorBoardLogger(out, name="tensorboard"), CSVLogger(out, name="csv")],
            callbacks=list(callbacks),
            enable_checkpointing=any(isinstance(c, pl.callbacks.ModelCheckpoint) for c in callbacks),
            plugins=[AtomicCheckpointIO()],
            enable_model_summary=False,
            enable_progress_bar=sys.stderr.isatty(),  # a pod's log is no terminal
        )
    except (MisconfigurationException, ValueError, TypeError) as err:  # Lightning raises all three
        raise UserError(f"trainer settings: {str(err).strip().splitlines()[0]}") from None
