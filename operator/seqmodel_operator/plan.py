"""What a SeqTrainingJob means, as data: hparams checked, canonical name, arguments, mounts, names.

Pure functions of the object (and of the checkpoint source's status), so they are tested without a
cluster. What the CRD schema cannot check is checked here and raised as a `SpecError` naming the field.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Mapping

from seqmodel import contract
from seqmodel.contract import CHECKPOINT_USES, checkpoint_use
from seqmodel.hparam import digest, registry
from seqmodel_operator import config_from
from seqmodel_operator.settings import Settings

OUTPUT_MOUNT = "/output"  # the replicate's version directory (a subPath of the output claim)
SCRATCH_MOUNT = "/scratch"  # the working directory: staged data/ and writable temp
DATA_MOUNT = "/data-source"  # the data claim, read-only, for the staging step
CHECKPOINT_MOUNT = "/checkpoint"  # the source checkpoint's directory, read-only
CONFIG_MOUNT = "/etc/seqmodel/config"  # spec.configFrom's ConfigMap, read-only
CODE_MOUNT = "/opt/seqmodel/src"  # spec.code, read-only, on PYTHONPATH
STAGED_DATA = "data"  # relative to the working directory (scratch), where the stage step copies data/<type>
TERMINATION_LOG = "/dev/termination-log"  # the kubelet mounts it, even on a read-only root filesystem
TMP_MOUNT = "/tmp"


class SpecError(ValueError):
    """A job the operator cannot run; the message names the field. The job ends Failed with it."""


@dataclass(frozen=True)
class CheckpointMount:
    claim: str
    sub_path: str  # directory in the claim
    file: str  # file name inside it
    flag: str  # the seqmodel.run flag that takes it


@dataclass(frozen=True)
class Plan:
    """Everything about a job that does not depend on the replicate."""

    name: str
    namespace: str
    uid: str
    mode: str
    hparams: dict[str, Any]  # as the user wrote them (validated)
    canonical: str
    image: str
    output_claim: str
    output_root: str
    replicates: int
    seed_pinned: bool
    checkpoint: CheckpointMount | None
    data: Mapping[str, Any] | None
    spec: Mapping[str, Any]
    config_key: str | None = None  # spec.configFrom's file, mounted at CONFIG_MOUNT
    component_hparams: Mapping[str, Any] = field(default_factory=dict)  # passed as flags, checked by the run
    # spec.checkpoint.eachReplicate: replicate -> its own checkpoint directory (else checkpoint.sub_path)
    checkpoint_dirs: Mapping[int, str] = field(default_factory=dict)

    def checkpoint_dir(self, replicate: int) -> str:
        assert self.checkpoint is not None
        return self.checkpoint_dirs.get(replicate, self.checkpoint.sub_path)

    @property
    def version_key(self) -> str:
        """Versions count per (output claim, root, canonical name): the directory they live in."""
        return digest(f"{self.output_claim}\0{self.output_root}\0{self.canonical}")

    def child_name(self, replicate: int, version: int) -> str:
        return f"{self.name}-{replicate}-v{version}"

    def output_path(self, version: int) -> str:
        """Claim-relative directory of one version."""
        return posixpath.join(self.output_root, self.canonical, f"version_{version}")

    def owner(self, replicate: int) -> str:
        """Who owns a version directory: the replicate of this object, whatever its child Job is called."""
        return f"{self.uid}/{replicate}"

    def run_args(self, version: int) -> list[str]:
        """`seqmodel.run` arguments of one replicate, by the contract's rules, with the pod's paths."""
        checkpoint = ((self.checkpoint.flag, posixpath.join(CHECKPOINT_MOUNT, self.checkpoint.file))
                      if self.checkpoint else None)
        return contract.run_args(
            self.hparams, mode=self.mode, root_dir=OUTPUT_MOUNT,
            seed=contract.replicate_seed(version, self.hparams, pinned_elsewhere=self.seed_pinned),
            data_root=STAGED_DATA if self.data else None, checkpoint=checkpoint,
            config=posixpath.join(CONFIG_MOUNT, self.config_key) if self.config_key else None,
            component_hparams=self.component_hparams)


def checked_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """spec.hparams by the contract's rule, against the built-in registry (the CRD schema should have
    checked them already, unless it is stale)."""
    try:
        return contract.checked_hparams(hparams, registry(), "spec.hparams")
    except contract.ContractError as err:
        raise SpecError(str(err)) from None


def source_checkpoint(spec: Mapping[str, Any], source: Mapping[str, Any] | None
                      ) -> tuple[CheckpointMount, dict, dict[int, str]]:
    """The checkpoint to mount, the hparams that named its job (for the canonical name), and with
    eachReplicate each replicate's own checkpoint directory.

    `source` is the SeqTrainingJob named by spec.checkpoint.fromJob; the caller waits until it succeeded.
    """
    ckpt = spec["checkpoint"]
    flag = CHECKPOINT_USES[checkpoint_use(spec.get("mode", "train"), ckpt)]
    if "path" in ckpt:
        directory, file = posixpath.split(ckpt["path"])
        return CheckpointMount(_output_claim_of(spec, None), directory, file, flag), {}, {}
    assert source is not None
    entries = {r.get("index"): r for r in (source.get("status") or {}).get("replicates") or []}

    def directory_of(index: int, field: str) -> tuple[str, str]:
        entry = entries.get(index) or {}
        if not entry.get("outputPath"):
            raise SpecError(f"spec.checkpoint.{field}: job {ckpt['fromJob']} has no replicate {index}")
        return posixpath.split(posixpath.join(entry["outputPath"], ckpt.get("file", "checkpoints/last.ckpt")))

    directory, file = directory_of(int(ckpt.get("replicate", 0)), "replicate")
    dirs = ({r: directory_of(r, "eachReplicate")[0] for r in range(int(spec.get("replicates", 1)))}
            if ckpt.get("eachReplicate") else {})
    claim = (source["spec"].get("output") or {}).get("claim") or ""
    named = {**(source["spec"].get("componentHparams") or {}), **(source["spec"].get("hparams") or {})}
    return CheckpointMount(claim, directory, file, flag), named, dirs


def _output_claim_of(spec: Mapping[str, Any], config: Settings | None) -> str:
    claim = (spec.get("output") or {}).get("claim") or (config.output_claim if config else None)
    return claim or ""


def make_plan(body: Mapping[str, Any], config: Settings, source: Mapping[str, Any] | None = None,
              config_files: Mapping[str, str] | None = None) -> Plan:
    """The plan of a SeqTrainingJob object; `source` is its checkpoint.fromJob object, if any, and
    `config_files` the data of its spec.configFrom ConfigMap."""
    meta, spec = body["metadata"], body.get("spec") or {}
    mode = spec.get("mode", "train")
    hparams = checked_hparams(spec.get("hparams") or {})
    config_ref = spec.get("configFrom")
    try:
        from_config = config_from.config_values(config_files or {}, config_ref.get("key", "config.yaml"),
                                                config_ref["name"]) if config_ref else {}
        config_builtin, custom = config_from.split(from_config, spec.get("componentHparams") or {})
    except config_from.ConfigSpecError as err:
        raise SpecError(str(err)) from None
    output_claim = _output_claim_of(spec, config)
    if not output_claim:
        raise SpecError("spec.output.claim: not set, and the operator has no default output claim")
    checkpoint, inherited, checkpoint_dirs = None, {}, {}
    if spec.get("checkpoint"):
        checkpoint, inherited, checkpoint_dirs = source_checkpoint(
            {**spec, "mode": mode, "output": {"claim": output_claim}}, source)
        # A source that named no claim wrote to the operator's default claim, not necessarily to ours.
        checkpoint = CheckpointMount(checkpoint.claim or config.output_claim or output_claim, checkpoint.sub_path,
                                     checkpoint.file, checkpoint.flag)
    own = {**config_builtin, **custom, **hparams}
    try:
        canonical = contract.canonical_name(contract.named_hparams(own, inherited, checkpoint and checkpoint.flag))
    except contract.ContractError as err:
        raise SpecError(f"spec.{err}") from None
    return Plan(
        name=meta["name"], namespace=meta["namespace"], uid=meta["uid"], mode=mode, hparams=hparams,
        canonical=canonical, image=spec.get("image") or config.image, output_claim=output_claim,
        output_root=(spec.get("output") or {}).get("root", "runs"), replicates=int(spec.get("replicates", 1)),
        seed_pinned="seed" in own, checkpoint=checkpoint, data=spec.get("data"), spec=spec,
        config_key=config_ref.get("key", "config.yaml") if config_ref else None,
        component_hparams=dict(spec.get("componentHparams") or {}),  # the config's own come with --config
        checkpoint_dirs=checkpoint_dirs,
    )
