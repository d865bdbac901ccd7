"""Config files and the resolution of a run's hparams: `python -m seqmodel.run --config FILE --name=value`.

A config file is a YAML mapping of hparams. It may list `defaults:` (a name or a list), merged in order
before its own keys:
- an entry ending in `.yaml` or `.yml` is another config file, relative to the file that lists it;
- any other entry is a preset shipped inside the package: `seqmodel/config/presets/<entry>.yaml`, e.g.
  `model/small`, `model/base`, `task/ptmask`, `task/finetune`.
`--config` takes a file or a preset the same way (relative to the working directory) and may be given
more than once. A run's `hparams.yaml` (keys `version`, `name`, `hparams`) is a config file too: its
hparams are migrated from the version that wrote it, so `--config <run dir>/hparams.yaml` re-runs it.

Precedence, lowest first: the registry's defaults (and $SEQMODEL_DATA_ROOT for `data_root`) < each
`--config` in order, each one's defaults in order before its own keys < command-line flags. Unknown keys
and wrong types are errors naming the file and key, as on the command line; so are a cycle in
`defaults`, an unknown preset and a missing file. Paths inside config files mean what they mean on the
command line (dataset paths relative to data_root, others to the working directory).

Resolution takes two passes: the component slots (`dataset`, `encoder`, `head`, `task`, `loss`) are
read first from the command line and the config files (and, for a run that starts from a checkpoint,
from that checkpoint, through `peek`), which gives the registry with the chosen components' own hparams
(`registry_for`); then everything is parsed against it. Torch-free unless a custom component is.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Optional, Sequence

import yaml

from seqmodel.components import SLOTS, choices_of, component_group
from seqmodel.contract import CHECKPOINT_FLAGS
from seqmodel.errors import UserError
from seqmodel.hparam import Hparams, HparamError, registry, registry_for
from seqmodel.config.migrations import migrate_hparams
from seqmodel.workspace.paths import env_data_root

CONFIG_SUFFIXES = (".yaml", ".yml")
DEFAULTS_KEY = "defaults"
SAVED_KEYS = frozenset({"version", "name", "hparams"})  # the form of a run's hparams.yaml


class ConfigError(HparamError):
    """A config file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ConfigFile:
    """One loaded config file: its own keys (its defaults are separate entries before it)."""

    name: str  # as messages show it: the path as given or joined, or `preset <name>`
    values: dict[str, Any]


def presets_dir() -> Any:
    return resources.files("seqmodel.config") / "presets"


def preset_names() -> list[str]:
    """Every preset shipped with the package, as `defaults:` names them (`model/small`)."""
    root = presets_dir()
    found = []
    for group in root.iterdir():
        if group.is_dir():
            found += [f"{group.name}/{entry.name.rsplit('.', 1)[0]}" for entry in group.iterdir()
                      if entry.name.endswith(CONFIG_SUFFIXES)]
    return sorted(found)


def _is_file_ref(entry: str) -> bool:
    return entry.endswith(CONFIG_SUFFIXES)


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{name}: not valid YAML{where}: {problem}") from None


def _read(ref: str, base: Optional[Path], listed_by: Optional[str]) -> tuple[str, str, Any, Optional[Path]]:
    """(display name, identity for cycle checks, parsed YAML, directory for relative defaults) of a
    file or preset reference."""
    prefix = f"{listed_by}: defaults: " if listed_by else ""
    if _is_file_ref(ref):
        path = Path(ref).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        name = os.path.normpath(path)
        if not path.is_file():
            what = "is not a file" if path.exists() else "no such file"
            raise ConfigError(f"{prefix}config file {name}: {what}")
        return name, str(path.resolve()), _parse_yaml(path.read_text(), name), path.parent
    preset = presets_dir().joinpath(*f"{ref}.yaml".split("/"))
    if not ref or ref.startswith("/") or ".." in ref.split("/") or not preset.is_file():
        known = ", ".join(preset_names())
        raise ConfigError(f"{prefix}unknown preset '{ref}' (presets: {known}; config files end in .yaml)")
    name = f"preset {ref}"
    return name, name, _parse_yaml(preset.read_text(), name), None


def _saved_run(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The hparams of a run's hparams.yaml, migrated from the version that wrote it."""
    extra = sorted(set(data) - SAVED_KEYS)
    if extra:
        raise ConfigError(f"{name}: unknown key '{extra[0]}' in a saved run config (keys: version, name, hparams)")
    hparams, version = data.get("hparams"), data.get("version")
    if not isinstance(hparams, dict):
        raise ConfigError(f"{name}: 'hparams' must be a mapping of hparams")
    if not isinstance(version, str):
        raise ConfigError(f"{name}: a saved run config needs the seqmodel 'version' that wrote it")
    return migrate_hparams(dict(hparams), version, name, what="config")


def load(ref: str, base: Optional[Path] = None, *, _stack: tuple[tuple[str, str], ...] = (),
         _listed_by: Optional[str] = None) -> list[ConfigFile]:
    """A config file (or preset) and its defaults, flattened in merge order: each file's defaults (and
    theirs, depth first) come before the file itself."""
    name, identity, data, directory = _read(ref, base, _listed_by)
    if any(identity == seen for _, seen in _stack):
        chain = [shown for shown, _ in _stack[[seen for _, seen in _stack].index(identity):]] + [name]
        raise ConfigError(f"cycle in defaults: {' -> '.join(chain)}")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: a config file holds a mapping of hparams, not a {type(data).__name__}")
    if not all(isinstance(key, str) for key in data):
        raise ConfigError(f"{name}: every key must be an hparam name")
    if "hparams" in data and DEFAULTS_KEY not in data:
        return [ConfigFile(name, _saved_run(data, name))]
    defaults = data.pop(DEFAULTS_KEY, None) or []
    if isinstance(defaults, str):
        defaults = [defaults]
    if not isinstance(defaults, list) or not all(isinstance(entry, str) for entry in defaults):
        raise ConfigError(f"{name}: 'defaults' must be a config file or preset name, or a list of them")
    stack = (*_stack, (name, identity))
    files: list[ConfigFile] = []
    for entry in defaults:
        files += load(entry, directory, _stack=stack, _listed_by=name)
    files.append(ConfigFile(name, data))
    return files


@dataclass
class Resolution:
    """A run's hparams: typed, full; `explicit` are the names that a config file or flag set, which a
    checkpoint's hparams do not override; `registry` holds the chosen components' hparams."""

    hparams: dict[str, Any]
    explicit: set[str]
    registry: Hparams
    files: list[ConfigFile] = field(default_factory=list)


def _refuse(message: str) -> NoReturn:
    raise UserError(message)


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("config files")
    group.add_argument("--config", action="append", default=[], metavar="FILE",
                       help="hparams from a YAML file or a preset (model/small, model/base, task/ptmask, "
                            "task/finetune); repeatable, later ones win, flags win over all")


def _first_pass_parser() -> argparse.ArgumentParser:
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


Peek = Callable[[str, str, str], Optional[Mapping[str, Any]]]


@dataclass
class _FirstPass:
    files: list[ConfigFile]
    merged: dict[str, Any]  # the config files' hparams, merged in order
    given: set[str]  # names of the flags on the command line
    registry: Hparams


def first_pass(argv: Sequence[str], peek: Optional[Peek] = None) -> _FirstPass:
    """Config files loaded and merged, component slots chosen, and the registry they make."""
    first, _ = _first_pass_parser().parse_known_args(list(argv))
    given = _flag_names(argv)
    files = [f for ref in first.config for f in load(ref)]
    merged: dict[str, Any] = {}
    for f in files:
        for slot in SLOTS:  # a bad choice names the file it is written in
            if slot in f.values:
                registry().parse_dict({slot: f.values[slot]}, where=f"{f.name}: ")
        merged.update(f.values)

    decisive = (*SLOTS, *CHECKPOINT_FLAGS, "default_root_dir")
    raw = {name: merged[name] for name in decisive if name in merged}
    raw.update({name: getattr(first, name) for name in decisive if name in given})
    chosen = {slot: raw[slot] for slot in SLOTS if slot in raw}
    from_checkpoint: Optional[str] = None
    flags = [flag for flag in CHECKPOINT_FLAGS if raw.get(flag)]
    if peek is not None and len(flags) == 1:
        inherit = ("encoder",) if flags[0] == "load_encoder_from_checkpoint" else tuple(SLOTS)
        if any(slot not in chosen for slot in inherit):
            root = raw.get("default_root_dir") or registry()["default_root_dir"].default
            source = peek(flags[0], str(raw[flags[0]]), str(root)) or {}
            inherited = {slot: source[slot] for slot in inherit if slot in source and slot not in chosen}
            if inherited:
                from_checkpoint = str(raw[flags[0]])
            chosen = {**chosen, **inherited}
    choices = choices_of(chosen)
    for slot, value in choices.items():  # import each custom component once, naming where a choice came from
        try:
            component_group(slot, value)
        except HparamError as err:
            came_from = from_checkpoint if slot not in raw and from_checkpoint else None
            raise HparamError(f"{came_from}: {err}" if came_from else str(err)) from None
    return _FirstPass(files=files, merged=merged, given=given, registry=registry_for(choices))


def registry_of(argv: Sequence[str]) -> Hparams:
    """The registry that `argv` (its config files and component flags) makes, e.g. for `--help`."""
    return first_pass(argv).registry


def resolve(argv: Sequence[str], *, peek: Optional[Peek] = None,
            parser: Optional[Callable[[Hparams], argparse.ArgumentParser]] = None) -> Resolution:
    """The run's hparams from `--config` files and `--name=value` flags (see the module's docstring).

    `peek(flag, value, default_root_dir)` returns the hparams of the checkpoint the run starts from, so
    the component slots the user did not set come from it; `parser(registry)` makes the final parser
    (default: the registry's own, with `--config`).
    """
    chosen = first_pass(argv, peek)
    reg, merged = chosen.registry, chosen.merged
    for f in chosen.files:  # every file's keys are checked where they are written, even those overridden later
        reg.parse_dict(f.values, where=f"{f.name}: ")
    final = (parser or default_parser)(reg)
    final.error = _refuse  # type: ignore[method-assign]
    namespace, rest = final.parse_known_args(list(argv))
    if rest:
        raise reg.unknown_error(rest[0].lstrip("-").split("=")[0])
    flagged = chosen.given & set(reg.names())
    values = {**merged, **{name: getattr(namespace, name) for name in flagged}}
    if "data_root" not in values and env_data_root():
        values["data_root"] = env_data_root()
    hparams = reg.parse_dict(values)
    return Resolution(hparams=hparams, explicit=set(merged) | flagged, registry=reg, files=chosen.files)


def default_parser(reg: Hparams, **kwargs: Any) -> argparse.ArgumentParser:
    """Every hparam of `reg` as a flag, and `--config`."""
    parser = reg.parser(allow_abbrev=False, **kwargs)
    add_config_argument(parser)
    return parser
