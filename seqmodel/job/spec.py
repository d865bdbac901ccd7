"""What a job is before it runs, for every backend: its checked hparams, its canonical name, its run
arguments and the SeqTrainingJob it becomes. Pure functions, no I/O beyond a checkpoint's hparams.yaml.

The names, owned hparams, checkpoint flags and phase rules are seqmodel.contract's. The rules here still
mirror the operator's (operator/seqmodel_operator/plan.py): the same hparams are refused, a replicate runs
with `seed = <its version>` unless the hparams pin one, and a run that loads a whole model is named by
that model's hparams. (Moving them into the contract too is the next step of the job-contract issue.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from seqmodel.contract import API_VERSION, CHECKPOINT_USES, JOB_KIND, JOB_OWNED_HPARAMS, MODES, ContractError
from seqmodel.hparam import format_value, registry, registry_for

# A job the client cannot submit: the contract's error, under the name notebooks catch.
JobSpecError = ContractError


def checked_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The user's hparams, typed by the registry of the components they choose; unknown names, wrong
    types and names a job sets itself are refused naming the hparam."""
    for name in hparams:
        if name in JOB_OWNED_HPARAMS:
            raise JobSpecError(f"hparams.{name}: set by the job (mode, checkpoint, output, data), not in hparams")
    full = registry_for(hparams).parse_dict(dict(hparams), where="hparams: ")
    return {name: full[name] for name in hparams}


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
    from seqmodel.config import load  # the config loader migrates saved runs; torch-free

    saved = checkpoint_file.parent.parent / "hparams.yaml"
    if not saved.is_file():
        return {}
    return {k: v for f in load(str(saved)) for k, v in f.values.items()}


def canonical_name(hparams: Mapping[str, Any], inherited: Mapping[str, Any] | None = None) -> str:
    """The run's name: its tracked hparams that differ from their defaults (seqmodel.hparam). A run that
    loads a whole model passes that model's hparams as `inherited`, as the operator does."""
    named = {k: v for k, v in {**(inherited or {}), **hparams}.items() if k not in JOB_OWNED_HPARAMS}
    return registry_for(named).canonical_name(named)


def seed_of(hparams: Mapping[str, Any], version: int) -> int:
    """Replicates are independent samples: each version its own seed unless the hparams pin one."""
    return int(hparams["seed"]) if "seed" in hparams else version


def run_args(hparams: Mapping[str, Any], *, mode: str, root_dir: Path, version: int,
             data_root: str | None = None, checkpoint: tuple[str, Path] | None = None) -> list[str]:
    """`python -m seqmodel.run` arguments of one replicate, in the operator's order: the user's hparams,
    then what the job owns. `checkpoint` is (flag, file)."""
    args = [f"--{name}={format_value(value)}" for name, value in sorted(hparams.items()) if name != "seed"]
    if data_root is not None:
        args.append(f"--data_root={data_root}")
    args += [f"--mode={mode}", f"--default_root_dir={root_dir}", f"--seed={seed_of(hparams, version)}"]
    if checkpoint is not None:
        args.append(f"--{checkpoint[0]}={checkpoint[1]}")
    return args


def job_body(name: str, namespace: str, spec: Mapping[str, Any], labels: Mapping[str, str] | None = None
             ) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": API_VERSION, "kind": JOB_KIND, "metadata": metadata, "spec": dict(spec)}
