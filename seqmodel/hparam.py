"""The hparam registry: one flat namespace of hyperparameters for every component.

Each component declares its hparams in a torch-free module as an `HparamGroup`; the registry joins them,
refuses clashes, parses command lines and dicts, names runs, and exports JSON Schema for the operator's
CRD. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import importlib
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from seqmodel.errors import UserError

# Modules whose `HPARAMS` group is part of every run (order = order in --help).
BUILTIN_GROUP_MODULES: tuple[str, ...] = (
    "seqmodel.training.hparams",
    "seqmodel.dataset.hparams",
    "seqmodel.model.hparams",
    "seqmodel.task.hparams",
)

_TRUE_WORDS = frozenset({"true", "yes", "on", "1", "t", "y"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0", "f", "n"})
_NONE_WORDS = frozenset({"none", "null", "~"})
_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}
_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}
# Characters kept as they are in canonical names; everything else is %-escaped, so names never collide.
_SAFE_CHARS = "._-+"
_MAX_NAME_CHARS = 200  # a path component must stay under 255 bytes
DIGEST_CHARS = 10
# A component given by its qualified path, `package.module:Class` (see seqmodel.components). RE2-compatible:
# the CRD schema uses it as a pattern.
QUALIFIED_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"
_QUALIFIED_RE = re.compile(QUALIFIED_PATH)
# A string hparam ends up in file names, YAML, logs and a pod's command line: no control characters (a NUL
# byte cannot even be passed as an argument). The same pattern guards the CRD (Go's RE2 reads \xNN too).
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"  # Unicode's control characters (category Cc)
_PRINTABLE_RE = re.compile(PRINTABLE)


def is_qualified_path(value: object) -> bool:
    """Whether `value` has the form `package.module:Class`."""
    return isinstance(value, str) and _QUALIFIED_RE.fullmatch(value) is not None


class HparamError(UserError, ValueError):
    """A user error in hparams: the message is one line that names the hparam."""


@dataclass(frozen=True)
class Hparam:
    """One hyperparameter. `short` is its name inside canonical run names.

    `builtins` makes it a component slot (see seqmodel.components): its value is one of those built-in
    names or the qualified path `package.module:Class` of a class to import at run time.
    """

    name: str
    default: Any
    type: type
    help: str
    short: str
    tracked: bool = True
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    builtins: tuple[str, ...] | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        if self.type not in _TYPE_NAMES:
            raise TypeError(f"hparam {self.name!r}: unsupported type {self.type!r}")
        if self.default is None and not self.nullable:
            raise TypeError(f"hparam {self.name!r}: default None needs nullable=True")
        if self.builtins is not None and (self.type is not str or self.choices is not None):
            raise TypeError(f"hparam {self.name!r}: a component slot is a str without choices")
        if self.default is not None:
            object.__setattr__(self, "default", self.convert(self.default))

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type] + (" or none" if self.nullable else "")

    def convert(self, value: Any) -> Any:
        """Convert a CLI string or a JSON/YAML value to this hparam's type, checking its range."""
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
            if self.nullable:
                return None
            raise HparamError(f"hparam '{self.name}' expects {self.type_name}, got none")
        try:
            out = _CONVERTERS[self.type](value)
        except (TypeError, ValueError):
            raise HparamError(f"hparam '{self.name}' expects {self.type_name}, got {value!r}") from None
        if self.choices is not None and out not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise HparamError(f"hparam '{self.name}' must be one of: {allowed}; got {value!r}")
        if self.builtins is not None and out not in self.builtins and not is_qualified_path(out):
            allowed = ", ".join(self.builtins)
            raise HparamError(
                f"hparam '{self.name}' must be one of: {allowed}, or a class as package.module:Class; got {value!r}"
            )
        if self.minimum is not None and out < self.minimum:
            raise HparamError(f"hparam '{self.name}' must be >= {self.minimum}; got {value!r}")
        if self.maximum is not None and out > self.maximum:
            raise HparamError(f"hparam '{self.name}' must be <= {self.maximum}; got {value!r}")
        if self.type is str and not _PRINTABLE_RE.fullmatch(out):
            raise HparamError(f"hparam '{self.name}' must not contain control characters; got {value!r}")
        return out

    def json_schema(self) -> dict[str, Any]:
        """OpenAPI v3 flavour of JSON Schema (`nullable`), as Kubernetes structural schemas need."""
        schema: dict[str, Any] = {"type": _JSON_TYPES[self.type], "description": self.help}
        if self.default is not None:
            schema["default"] = self.default
        if self.nullable:
            schema["nullable"] = True
        if self.choices is not None:
            schema["enum"] = list(self.choices)
        if self.builtins is not None:
            names = "|".join(re.escape(name) for name in self.builtins)
            schema["pattern"] = f"^(?:{names}|{QUALIFIED_PATH})$"
        elif self.type is str and self.choices is None:
            schema["pattern"] = PRINTABLE
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return _to_int(float(text))  # "1e3" is an int; "1.5" is not
    raise TypeError(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, (int, float)):
        out = float(value)
    elif isinstance(value, str):
        out = float(value.strip())
    else:
        raise TypeError(value)
    if not math.isfinite(out):
        raise ValueError(value)
    return out


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(value)


_CONVERTERS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


@dataclass(frozen=True)
class HparamGroup:
    """The hparams one component declares; `owner` names the component in error messages."""

    owner: str
    hparams: tuple[Hparam, ...] = field(default_factory=tuple)

    def __init__(self, owner: str, hparams: Iterable[Hparam]) -> None:
        object.__setattr__(self, "owner", owner)
        owned = tuple(
            Hparam(**{**h.__dict__, "owner": owner}) for h in hparams  # stamp the owner on each
        )
        object.__setattr__(self, "hparams", owned)


def format_value(value: Any) -> str:
    """The canonical text of a value: equal values give equal text (1e-4 and 0.0001)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form: deterministic and injective
    return str(value)


class Hparams:
    """A registry of hparam groups: the flat namespace that parses, names and exports hparams."""

    def __init__(self, groups: Iterable[HparamGroup]) -> None:
        self.groups: tuple[HparamGroup, ...] = tuple(groups)
        self._by_name: dict[str, Hparam] = {}
        by_short: dict[str, Hparam] = {}
        for group in self.groups:
            for hp in group.hparams:
                if hp.name in self._by_name:
                    other = self._by_name[hp.name]
                    raise HparamError(
                        f"hparam '{hp.name}' is declared by both '{other.owner}' and '{hp.owner}'"
                    )
                if hp.short in by_short:
                    other = by_short[hp.short]
                    raise HparamError(
                        f"short name '{hp.short}' is used by both '{other.owner}.{other.name}' "
                        f"and '{hp.owner}.{hp.name}'"
                    )
                self._by_name[hp.name] = hp
                by_short[hp.short] = hp

    @classmethod
    def from_modules(cls, modules: Sequence[str]) -> "Hparams":
        return cls(importlib.import_module(m).HPARAMS for m in modules)

    def with_groups(self, groups: Iterable[HparamGroup]) -> "Hparams":
        """A registry extended by more groups (custom components); clashes are refused."""
        return Hparams((*self.groups, *groups))

    def __getitem__(self, name: str) -> Hparam:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._by_name.values())

    def names(self) -> list[str]:
        return list(self._by_name)

    def defaults(self) -> dict[str, Any]:
        return {hp.name: hp.default for hp in self}

    def unknown_error(self, key: str, where: str = "") -> HparamError:
        close = difflib.get_close_matches(key, self.names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return HparamError(f"{where}unknown hparam '{key}'{hint}")

    def parse_dict(self, values: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Full, typed hparams: defaults filled in, unknown keys and wrong types refused.

        `where` prefixes error messages (e.g. "configs/my.yaml: ").
        """
        out = self.defaults()
        for key, value in values.items():
            if key not in self._by_name:
                raise self.unknown_error(key, where)
            try:
                out[key] = self._by_name[key].convert(value)
            except HparamError as err:
                raise HparamError(f"{where}{err}") from None
        return out

    def parser(self, **kwargs: Any) -> argparse.ArgumentParser:
        """An argparse parser holding every hparam with its help and default (`--help` lists them)."""
        parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kwargs)
        for group in self.groups:
            section = parser.add_argument_group(group.owner)
            for hp in group.hparams:
                section.add_argument(
                    f"--{hp.name}",
                    default=hp.default,
                    type=_ArgConverter(hp),
                    metavar=hp.type_name.upper().replace(" ", "_"),
                    help=hp.help + ("" if hp.tracked else " (untracked)"),
                )
        return parser

    def parse_args(self, argv: Sequence[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        return vars(self.parser(**kwargs).parse_args(argv))

    def tracked_changes(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        """Tracked hparams whose value differs from the default, sorted by name."""
        full = self.parse_dict(hparams)
        return {
            name: full[name]
            for name in sorted(full)
            if self._by_name[name].tracked and full[name] != self._by_name[name].default
        }

    def canonical_name(self, hparams: Mapping[str, Any]) -> str:
        """The run's name for humans and paths: sorted `short=value` pairs of changed tracked hparams.

        Values are %-escaped, so two different configurations never share a name. A name too long for
        a path component keeps its first part and ends in the digest of the whole.
        """
        changes = self.tracked_changes(hparams)
        pairs = sorted(
            f"{self._by_name[name].short}={quote(format_value(value), safe=_SAFE_CHARS)}"
            for name, value in changes.items()
        )
        name = ",".join(pairs) or "default"
        if len(name) > _MAX_NAME_CHARS:
            name = f"{name[: _MAX_NAME_CHARS - DIGEST_CHARS - 1]}~{digest(name)}"
        return name

    def json_schema(self) -> dict[str, Any]:
        """The registry as one object schema: the CRD's `spec.hparams`."""
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {hp.name: hp.json_schema() for hp in self},
        }


class _ArgConverter:
    """argparse `type=` that reports errors in our one-line form."""

    def __init__(self, hp: Hparam) -> None:
        self.hp = hp
        self.__name__ = hp.type_name  # argparse uses it in "invalid <type> value" messages

    def __call__(self, text: str) -> Any:
        try:
            return self.hp.convert(text)
        except HparamError as err:
            raise argparse.ArgumentTypeError(str(err)) from None


def digest(text: str, chars: int = DIGEST_CHARS) -> str:
    """A short stable digest (hex sha256) for Kubernetes names and labels (63-character limit)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:chars]


@lru_cache(maxsize=1)
def registry() -> Hparams:
    """The built-in registry: every component shipped with seqmodel (what the operator's CRD holds)."""
    return Hparams.from_modules(BUILTIN_GROUP_MODULES)
