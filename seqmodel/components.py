"""Component slots: the hparams that choose a dataset, encoder, head, task or loss.

Each slot takes a built-in name or the qualified path `package.module:Class` of a class imported at run
time (from `./src`, which `python -m seqmodel.run` puts on sys.path, or from the environment). The class
must subclass the slot's base class:

| slot | built-in | base class | built as |
|---|---|---|---|
| `dataset` | `genome` (FASTA + BED) | `seqmodel.dataset.base.DataModuleBase` | `Cls.from_hparams(hparams, labelled=bool)` |
| `encoder` | `transformer` | `seqmodel.model.base.EncoderBase` | `Cls.from_hparams(hparams, n_tokens)` |
| `head` | `auto` (the task's own) | `seqmodel.model.base.HeadBase` | `Cls.from_hparams(hparams, d_model, n_outputs)` |
| `task` | `ptmask`, `finetune` | `seqmodel.task.base.SeqTask` | `Cls.from_hparams(hparams, alphabet, label_names)` |
| `loss` | `auto` (the task's own) | `seqmodel.task.loss.LossBase` | `Cls.from_hparams(hparams)` |

`from_hparams` calls the constructor with the same arguments unless a class overrides it. A custom
component declares its own hparams as a class attribute `HPARAMS = HparamGroup(...)`, like the built-in
`seqmodel/*/hparams.py` modules do; they join the run's one flat namespace (`registry_for`), so a name or
short name that another component already declares is refused naming both owners. The group's owner is
replaced by `<slot> <qualified path>`, which is how errors and `--help` name it.

Torch-free: base classes and components are imported only when a slot needs them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from seqmodel.hparam import HparamError, HparamGroup, Hparams, is_qualified_path, registry


@dataclass(frozen=True)
class Slot:
    """One component slot: its base class and built-in names (None: the task supplies its own)."""

    name: str
    base: str
    builtins: Mapping[str, Optional[str]]


SLOTS: dict[str, Slot] = {
    slot.name: slot
    for slot in (
        Slot("dataset", "seqmodel.dataset.base:DataModuleBase",
             {"genome": "seqmodel.dataset.datamodule:SeqDataModule"}),
        Slot("encoder", "seqmodel.model.base:EncoderBase", {"transformer": "seqmodel.model.encoder:Encoder"}),
        Slot("head", "seqmodel.model.base:HeadBase", {"auto": None}),
        Slot("task", "seqmodel.task.base:SeqTask",
             {"ptmask": "seqmodel.task.ptmask:PtMaskTask", "finetune": "seqmodel.task.finetune:FineTuneTask"}),
        Slot("loss", "seqmodel.task.loss:LossBase", {"auto": None}),
    )
}


def builtin_names(slot: str) -> tuple[str, ...]:
    return tuple(SLOTS[slot].builtins)


def group_owner(slot: str, path: str) -> str:
    """How errors and --help name a custom component's hparams."""
    return f"{slot} {path}"


def _import(path: str, slot: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:  # ModuleNotFoundError names the missing module, which may be a dependency
        raise HparamError(f"hparam '{slot}': cannot import '{module_name}': {err}") from None
    except Exception as err:  # the module itself failed: a syntax error, a bad HPARAMS declaration
        first = (str(err).strip().splitlines() or [""])[0]
        raise HparamError(f"hparam '{slot}': cannot import '{module_name}': {type(err).__name__}: {first}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise HparamError(f"hparam '{slot}': module '{module_name}' has no attribute '{attr}'") from None


def base_class(slot: str) -> type:
    """The class every component of `slot` must subclass (imports torch)."""
    return _import(SLOTS[slot].base, slot)


def load_class(slot: str, value: str) -> Optional[type]:
    """The class `value` names in `slot`, checked against the slot's base class; None for a built-in
    name that leaves the choice to the task (`auto`)."""
    spec = SLOTS[slot]
    if value in spec.builtins:
        path = spec.builtins[value]
        if path is None:
            return None
    elif is_qualified_path(value):
        path = value
    else:
        allowed = ", ".join(spec.builtins)
        raise HparamError(f"hparam '{slot}' must be one of: {allowed}, or a class as package.module:Class; got {value!r}")
    cls = _import(path, slot)
    base = base_class(slot)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        what = f"class {cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else f"a {type(cls).__name__}"
        raise HparamError(
            f"hparam '{slot}': {value} is {what}, not a subclass of {base.__module__}.{base.__qualname__}"
        )
    return cls


def component_group(slot: str, value: str) -> Optional[HparamGroup]:
    """The hparams a custom component declares (None for built-ins, whose hparams are always registered)."""
    if value in SLOTS[slot].builtins:
        return None
    cls = load_class(slot, value)
    group = getattr(cls, "HPARAMS", None)
    if group is None:
        return None
    if not isinstance(group, HparamGroup):
        raise HparamError(
            f"hparam '{slot}': {value}.HPARAMS must be a seqmodel.hparam.HparamGroup, got {type(group).__name__}"
        )
    return HparamGroup(group_owner(slot, value), group.hparams)


def choices_of(values: Mapping[str, Any]) -> dict[str, str]:
    """Every slot's choice in `values` (raw or typed), checked and with defaults filled in."""
    from seqmodel.hparam import registry

    reg = registry()
    return {slot: reg[slot].convert(values[slot]) if slot in values else reg[slot].default for slot in SLOTS}


def component_groups(values: Mapping[str, Any]) -> list[HparamGroup]:
    """The hparam groups of the custom components chosen in `values`, in slot order."""
    groups = []
    for slot, value in choices_of(values).items():
        group = component_group(slot, value)
        if group is not None:
            groups.append(group)
    return groups


def registry_for(choices: Mapping[str, Any]) -> Hparams:
    """The registry of a run whose component slots (`dataset`, `encoder`, `head`, `task`, `loss`) hold
    `choices` (other keys are ignored; a missing slot is its default): the built-in registry plus the
    `HPARAMS` of every custom component chosen. Imports those components' modules (which may import
    torch); this module itself stays torch-free. Errors are one-line `HparamError`s naming the slot."""
    groups = component_groups(choices)
    return registry().with_groups(groups) if groups else registry()
