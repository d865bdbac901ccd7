"""Build the task named by hparams['task'] (a built-in name or package.module:Class)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from seqmodel.components import load_class
from seqmodel.task.base import SeqTask


def task_class(hparams: Mapping[str, Any]) -> type[SeqTask]:
    return load_class("task", hparams["task"])


def build_task(hparams: Mapping[str, Any], alphabet: Any, label_names: Sequence[str] | None) -> SeqTask:
    cls = task_class(hparams)
    return cls.from_hparams(hparams, alphabet, list(label_names or []) if cls.needs_labels else None)
