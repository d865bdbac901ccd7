"""Build the task named by hparams['task']."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from seqmodel.task.base import SeqTask
from seqmodel.task.finetune import FineTuneTask
from seqmodel.task.ptmask import PtMaskTask


def build_task(hparams: Mapping[str, Any], alphabet: Any, label_names: Sequence[str] | None) -> SeqTask:
    if hparams["task"] == "finetune":
        return FineTuneTask(hparams, alphabet, label_names or [])
    return PtMaskTask(hparams, alphabet)
