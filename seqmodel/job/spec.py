"""What a job is before it runs, for both backends: its checked hparams, its canonical name and the
SeqTrainingJob it becomes. The rules are seqmodel.contract's, which the operator follows too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from seqmodel import contract
from seqmodel.contract import API_VERSION, CHECKPOINT_USES, JOB_KIND, MODES, ContractError
from seqmodel.components import registry_for
from seqmodel.hparam import registry

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


def source_named(checkpoint_file: Path) -> dict[str, Any]:
    """The hparams that named the run that wrote a checkpoint, from its stamp (torch: read only for a
    local job that starts from a checkpoint, which the same machine is about to load anyway)."""
    from seqmodel.outputs import checkpoint

    ckpt = checkpoint.read(checkpoint_file)
    return contract.saved_named(checkpoint.hparams_of(ckpt), checkpoint.named_of(ckpt))


def canonical_name(hparams: Mapping[str, Any], source: Mapping[str, Any] | None = None,
                   flag: str | None = None) -> str:
    """The run's name by the contract's rule: its hparams (custom components' included), over its
    source's named hparams when `flag` loads the whole model."""
    return contract.canonical_name(contract.named_hparams(hparams, source, flag))


def job_body(name: str, namespace: str, spec: Mapping[str, Any], labels: Mapping[str, str] | None = None
             ) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": JOB_KIND, "metadata": metadata, "spec": dict(spec)}
