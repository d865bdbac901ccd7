"""A run's final hparams, in one pass: flags + config files + the checkpoint it starts from -> `Resolved`.

Precedence, lowest first: the registry's defaults (and $SEQMODEL_DATA_ROOT for `data_root`) < each
`--config` in order, each one's defaults in order before its own keys < command-line flags. A run that
resumes or loads weights learns with the checkpoint's tracked hparams (its model must fit them),
components included; a run that loads only an encoder takes the model's. What a config file or a flag
sets wins, so a mismatch is the user's choice and fails loudly when the weights load.

The steps, each once: config files are loaded; the component slots (`dataset`, `encoder`, `head`, `task`,
`loss`) are chosen from the flags, the files and the checkpoint (read here, once, with torch only then),
which gives the registry with the chosen components' own hparams; everything is parsed against it; the
checkpoint's hparams are inherited; the hparams that name the run are collected (seqmodel.contract).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence

from seqmodel import contract
from seqmodel.components import SLOTS, choices_of, component_group, group_owner, registry_for
from seqmodel.config.files import ConfigFile, load
from seqmodel.contract import CHECKPOINT_FLAGS
from seqmodel.errors import UserError
from seqmodel.hparam import HparamError, Hparams, registry
from seqmodel.workspace.paths import env_data_root

ParserFactory = Callable[[Hparams], argparse.ArgumentParser]


@dataclass(frozen=True)
class Start:
    """The checkpoint a run starts from, read once: `flag` is the seqmodel.run flag that named it,
    `hparams` the hparams it was trained with and `named` those that named its run."""

    flag: str
    path: Path
    ckpt: dict[str, Any]
    hparams: dict[str, Any]
    named: dict[str, Any]


@dataclass
class Resolved:
    """A run, decided: its full typed hparams, the registry of its components, the checkpoint it starts
    from, and the hparams that name it (`name`). `explicit`: the names a config file or flag set."""

    hparams: dict[str, Any]
    registry: Hparams
    explicit: set[str]
    named: dict[str, Any]
    start: Optional[Start] = None

    @property
    def name(self) -> str:
        return contract.canonical_name(self.named)


def _refuse(message: str) -> NoReturn:
    raise UserError(message)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config files")
    group.add_argument("--config", action="append", default=[], metavar="FILE",
                       help="hparams from a YAML file or a preset (model/small, model/base, task/ptmask, "
                            "task/finetune); repeatable, later ones win, flags win over all")


def default_parser(reg: Hparams, **kwargs: Any) -> argparse.ArgumentParser:
    """Every hparam of `reg` as a flag, and `--config`."""
    parser = reg.parser(allow_abbrev=False, **kwargs)
    add_config_argument(parser)
    return parser


def _decisive_parser() -> argparse.ArgumentParser:
    """The arguments that decide the registry: config files, component slots, the checkpoint a run
    starts from (whose components it rebuilds) and the output dir (where `last` is)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_config_argument(parser)
    for name in (*SLOTS, *CHECKPOINT_FLAGS, "default_root_dir"):
        parser.add_argument(f"--{name}")
    parser.error = _refuse  # type: ignore[method-assign]
    return parser


def _flag_names(argv: Sequence[str]) -> set[str]:
    return {arg[2:].split("=", 1)[0] for arg in argv if arg.startswith("--")}


def _files(refs: Sequence[str]) -> tuple[list[ConfigFile], dict[str, Any]]:
    """The config files in merge order, and their hparams merged; a bad component choice names its file."""
    files = [f for ref in refs for f in load(ref)]
    merged: dict[str, Any] = {}
    for f in files:
        for slot in SLOTS:
            if slot in f.values:
                registry().parse_dict({slot: f.values[slot]}, where=f"{f.name}: ")
        merged.update(f.values)
    return files, merged


def _start_flag(raw: Mapping[str, Any]) -> Optional[str]:
    """The checkpoint flag the decisive arguments set; None without one. Two are refused."""
    flags = [flag for flag in CHECKPOINT_FLAGS if raw.get(flag)]
    if len(flags) > 1:
        raise UserError(f"--{flags[0]} and --{flags[1]} exclude each other: a run starts from one checkpoint")
    return flags[0] if flags else None


def _read_start(flag: str, raw: Mapping[str, Any]) -> Start:
    from seqmodel.outputs import checkpoint  # torch: only for runs that start from a checkpoint

    value = str(raw[flag])
    root = Path(str(raw.get("default_root_dir") or registry()["default_root_dir"].default))
    path = checkpoint.resolve_resume(value, root) if flag == "resume_from_checkpoint" else Path(value)
    ckpt = checkpoint.read(path)
    hparams = checkpoint.hparams_of(ckpt)
    return Start(flag, path, ckpt, hparams, contract.saved_named(hparams, checkpoint.named_of(ckpt)))


def _registry(chosen: Mapping[str, Any], inherited: Mapping[str, Any], start: Optional[Start]) -> Hparams:
    """The registry of the chosen components, each imported once; an import error of a component the
    checkpoint chose names the checkpoint."""
    choices = choices_of({**inherited, **chosen})
    for slot, value in choices.items():
        try:
            component_group(slot, value)
        except HparamError as err:
            raise HparamError(f"{start.path}: {err}" if start and slot in inherited else str(err)) from None
    return registry_for(choices)


def _inherited_names(reg: Hparams, flag: str, hparams: Mapping[str, Any]) -> list[str]:
    """The hparams a run takes from the checkpoint it starts from: the tracked ones, or for an encoder
    only the model's (the built-in `model` group with the `encoder` slot, and the encoder's own)."""
    if flag == "load_encoder_from_checkpoint":
        owners = {"model", group_owner("encoder", hparams["encoder"])}
        return [hp.name for group in reg.groups if group.owner in owners for hp in group.hparams]
    return [hp.name for hp in reg if hp.tracked]


@dataclass
class _Decisive:
    """What the first look at `argv` finds: its config files, their merged hparams, the flags given, and
    the arguments that decide the registry (slots, checkpoint flags, output dir) as files and flags set them."""

    files: list[ConfigFile]
    merged: dict[str, Any]
    given: set[str]
    raw: dict[str, Any]

    @property
    def chosen(self) -> dict[str, Any]:
        return {slot: self.raw[slot] for slot in SLOTS if slot in self.raw}


def _decisive(argv: Sequence[str]) -> _Decisive:
    parsed, _ = _decisive_parser().parse_known_args(list(argv))
    given = _flag_names(argv)
    files, merged = _files(parsed.config)
    names = (*SLOTS, *CHECKPOINT_FLAGS, "default_root_dir")
    raw = {name: merged[name] for name in names if name in merged}
    raw.update({name: getattr(parsed, name) for name in names if name in given})
    return _Decisive(files, merged, given, raw)


def registry_of(argv: Sequence[str]) -> Hparams:
    """The registry that `argv`'s config files and component flags make, for `--help` (no checkpoint read)."""
    return _registry(_decisive(argv).chosen, {}, None)


def resolve(argv: Sequence[str], *, parser: Optional[ParserFactory] = None,
            read_checkpoint: bool = True) -> Resolved:
    """The run that `argv` (`--config` files and `--name=value` flags) describes; see the module's
    docstring. `parser(registry)` makes the final parser (default: the registry's own, with `--config`);
    without `read_checkpoint`, the checkpoint a run would start from is neither read nor inherited."""
    decisive = _decisive(argv)
    files, merged, given, chosen = decisive.files, decisive.merged, decisive.given, decisive.chosen
    flag = _start_flag(decisive.raw)
    start = _read_start(flag, decisive.raw) if flag and read_checkpoint else None

    inherited_slots: dict[str, Any] = {}
    if start is not None:
        slots = ("encoder",) if start.flag == "load_encoder_from_checkpoint" else tuple(SLOTS)
        inherited_slots = {s: start.hparams[s] for s in slots if s in start.hparams and s not in chosen}
    reg = _registry(chosen, inherited_slots, start)

    for f in files:  # every file's keys are checked where they are written, even those overridden later
        reg.parse_dict(f.values, where=f"{f.name}: ")
    final = (parser or default_parser)(reg)
    final.error = _refuse  # type: ignore[method-assign]
    namespace, rest = final.parse_known_args(list(argv))
    if rest:
        raise reg.unknown_error(rest[0].lstrip("-").split("=")[0])
    flagged = given & set(reg.names())
    values = {**inherited_slots, **merged, **{name: getattr(namespace, name) for name in flagged}}
    if "data_root" not in values and env_data_root():
        values["data_root"] = env_data_root()
    hparams = reg.parse_dict(values)
    explicit = set(merged) | flagged
    if hparams["mode"] == "test" and flag != "load_checkpoint_path":
        raise UserError("--mode=test needs --load_checkpoint_path=<checkpoint of the model to test>")

    if start is not None:
        taken = {name: start.hparams[name] for name in _inherited_names(reg, start.flag, hparams)
                 if name in start.hparams and name not in explicit}
        try:  # only the checkpoint's values are new here: each value is parsed once
            hparams.update({name: reg[name].convert(value) for name, value in taken.items()})
        except HparamError as err:
            raise HparamError(f"{start.path}: {err}") from None
    own = {name: hparams[name] for f in files for name in f.named if name in hparams}
    own.update({name: hparams[name] for name in flagged})
    named = contract.named_hparams(own, start.named if start else None, flag)
    return Resolved(hparams=hparams, registry=reg, explicit=explicit, named=named, start=start)
