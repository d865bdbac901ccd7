"""What a job is before it runs, for every backend: its checked hparams, its canonical name, its run
arguments and the SeqTrainingJob it becomes. Pure functions, no I/O beyond a checkpoint's hparams.yaml.

The rules themselves (owned hparams, checks, seeds, run arguments, phases) are seqmodel.contract's, which
the operator follows too. The canonical name here still mirrors the operator's plan.py: a run that loads a
whole model is named by that model's hparams (its move into the contract is the job-contract issue's
next step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from seqmodel import contract
from seqmodel.contract import API_VERSION, CHECKPOINT_USES, JOB_KIND, JOB_OWNED_HPARAMS, MODES, ContractError
from seqmodel.hparam import registry, registry_for

# A job the client cannot submit: the contract's error, under the name notebooks catch.
JobSpecError = ContractError


def checked_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The user's hparams, typed by the registry of the components they choose (the contract's rule)."""
    return contract.checked_hparams(hparams, registry_for(hparams), "hparams")


def split_component_hparams(hparams: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(built-in hparams, the chosen custom components' own): the CRD's `hparams` and `componentHparams`."""
    builtin = registry()
    return ({k: v for k, v in hparams.items() if k in builtin},
            {k: v for k, v in hparams.items() if k not in builtin})


def checked_checkpoint(mode: str, checkpoint: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The CRD's rules for spec.mode and spec.checkpoint, checked before anything is sent or started."""
    if mode not in MODES:
        raise JobSpecError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if checkpoint is None:
        if mode == "test":
            raise JobSpecError("checkpoint: required in test mode (the model to test)")
        return None
    ckpt = dict(checkpoint)
    if ("fromJob" in ckpt) == ("path" in ckpt):
        raise JobSpecError("checkpoint: set exactly one of fromJob and path")
    use = ckpt.get("use")
    if use is not None and use not in CHECKPOINT_USES:
        raise JobSpecError(f"checkpoint.use: expected one of {', '.join(CHECKPOINT_USES)}, got {use!r}")
    if mode == "test" and use not in (None, "weights"):
        raise JobSpecError("checkpoint.use: must be weights in test mode")
    return ckpt


def saved_hparams(checkpoint_file: Path) -> dict[str, Any]:
    """The hparams of the run that wrote `<run>/checkpoints/<file>`, from its `<run>/hparams.yaml`
    (migrated like any saved config); {} when there is none."""
    from seqmodel.config.files import load  # the config loader migrates saved runs; torch-free

    saved = checkpoint_file.parent.parent / "hparams.yaml"
    if not saved.is_file():
        return {}
    return {k: v for f in load(str(saved)) for k, v in f.values.items()}


def canonical_name(hparams: Mapping[str, Any], inherited: Mapping[str, Any] | None = None) -> str:
    """The run's name: its tracked hparams that differ from their defaults (seqmodel.hparam). A run that
    loads a whole model passes that model's hparams as `inherited`, as the operator does."""
    named = {k: v for k, v in {**(inherited or {}), **hparams}.items() if k not in JOB_OWNED_HPARAMS}
    return registry_for(named).canonical_name(named)


def job_body(name: str, namespace: str, spec: Mapping[str, Any], labels: Mapping[str, str] | None = None
             ) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": JOB_KIND, "metadata": metadata, "spec": dict(spec)}
