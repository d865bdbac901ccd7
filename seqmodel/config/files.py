"""Config files: `python -m seqmodel.run --config FILE --name=value`.

A config file is a YAML mapping of hparams. It may list `defaults:` (a name or a list), merged in order
before its own keys:
- an entry ending in `.yaml` or `.yml` is another config file, relative to the file that lists it;
- any other entry is a preset shipped inside the package: `seqmodel/config/presets/<entry>.yaml`, e.g.
  `model/small`, `model/base`, `task/ptmask`, `task/finetune`.
`--config` takes a file or a preset the same way (relative to the working directory) and may be given
more than once. A run's `hparams.yaml` (keys `version`, `name`, `named`, `hparams`) is a config file too:
its hparams are migrated from the version that wrote it, so `--config <run dir>/hparams.yaml` re-runs it
under the same name.

Unknown keys and wrong types are errors naming the file and key, as on the command line (checked in
seqmodel.config.resolve, which knows the chosen components); so are a cycle in `defaults`, an unknown
preset and a missing file. Paths inside config files mean what they mean on the command line (dataset
paths relative to data_root, others to the working directory). Torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from seqmodel.outputs.migrations import migrate_hparams, migrate_named
from seqmodel.contract import saved_named
from seqmodel.hparam import HparamError

CONFIG_SUFFIXES = (".yaml", ".yml")
DEFAULTS_KEY = "defaults"
SAVED_KEYS = frozenset({"version", "name", "named", "hparams"})  # the form of a run's hparams.yaml


class ConfigError(HparamError):
    """A config file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class ConfigFile:
    """One loaded config file: its own keys (its defaults are separate entries before it)."""

    name: str  # as messages show it: the path as given or joined, or `preset <name>`
    values: dict[str, Any]
    named: tuple[str, ...]  # the keys that name a run using it: all, or for a saved run those it recorded


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


def _saved_run(data: Mapping[str, Any], name: str) -> ConfigFile:
    """A run's hparams.yaml: its hparams migrated from the version that wrote it, named as that run was."""
    extra = sorted(set(data) - SAVED_KEYS)
    if extra:
        raise ConfigError(f"{name}: unknown key '{extra[0]}' in a saved run config "
                          f"(keys: {', '.join(sorted(SAVED_KEYS))})")
    hparams, version, named = data.get("hparams"), data.get("version"), data.get("named")
    if not isinstance(hparams, dict):
        raise ConfigError(f"{name}: 'hparams' must be a mapping of hparams")
    if not isinstance(version, str):
        raise ConfigError(f"{name}: a saved run config needs the seqmodel 'version' that wrote it")
    if named is not None and not (isinstance(named, list) and all(isinstance(n, str) for n in named)):
        raise ConfigError(f"{name}: 'named' must be a list of hparam names")
    values = migrate_hparams(dict(hparams), version, name, what="config")
    return ConfigFile(name, values, tuple(saved_named(values, migrate_named(named, version))))


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
        return [_saved_run(data, name)]
    defaults = data.pop(DEFAULTS_KEY, None) or []
    if isinstance(defaults, str):
        defaults = [defaults]
    if not isinstance(defaults, list) or not all(isinstance(entry, str) for entry in defaults):
        raise ConfigError(f"{name}: 'defaults' must be a config file or preset name, or a list of them")
    stack = (*_stack, (name, identity))
    files: list[ConfigFile] = []
    for entry in defaults:
        files += load(entry, directory, _stack=stack, _listed_by=name)
    files.append(ConfigFile(name, data, tuple(data)))
    return files
