"""Version checks and hparam migrations, shared by checkpoints (`seqmodel.outputs.checkpoint`) and saved run
configs (`hparams.yaml` given to `--config`). Torch-free.

VERSION is major.minor.build. Something written by the same major and the same or an older minor is
brought up to this version by the migrations from its minor up to ours, in order; another major, or a
newer minor, is refused with one line naming both versions. The build number never matters.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from seqmodel import VERSION
from seqmodel.errors import UserError


def major_minor(version: str) -> tuple[int, int]:
    major, minor, _build = (int(part) for part in version.split("."))
    return major, minor


def check(version: str, source: str, what: str, error: type[UserError] = UserError) -> int:
    """The minor version of `version`, which this code can load; else `error` naming both versions."""
    try:
        major, minor = major_minor(version)
    except ValueError:
        raise error(f"{source}: {what} has a malformed seqmodel version {version!r}") from None
    our_major, our_minor = major_minor(VERSION)
    if major != our_major:
        raise error(
            f"{source}: {what} is from seqmodel {version} (major {major}); this is seqmodel {VERSION} "
            f"(major {our_major}), which cannot load it: use seqmodel {major}.x"
        )
    if minor > our_minor:
        raise error(f"{source}: {what} is from newer seqmodel {version}; upgrade seqmodel (this is {VERSION})")
    return minor


def _hparams_from_1_0(hparams: dict[str, Any]) -> None:
    """1.0 -> 1.1: `pos_encoding` became `positional_encoding`; `conv_kernel` is new and 0 (no convolution)
    is what 1.0 encoders were."""
    if "pos_encoding" in hparams:
        hparams["positional_encoding"] = hparams.pop("pos_encoding")
    hparams["conv_kernel"] = 0


def _hparams_from_1_1(hparams: dict[str, Any]) -> None:
    """1.1 -> 1.2: no hparam changed (`accelerator` only lost values nobody could use)."""


def _hparams_from_1_2(hparams: dict[str, Any]) -> None:
    """1.2 -> 1.3: dataset paths resolve against the new `data_root` (default `data`); 1.2 read them from
    the working directory, which is data_root `.`. The component slots (`dataset`, `encoder`, `head`,
    `task`, `loss`) are new; their defaults are the built-in components 1.2 always used."""
    hparams.setdefault("data_root", ".")


def _hparams_from_1_3(hparams: dict[str, Any]) -> None:
    """1.3 -> 1.4: `attention_dropout` is new (default 0, which keeps the fused attention kernel); 1.3
    applied `dropout` to the attention weights too, so its runs continue with that. Saved runs and
    checkpoints record the hparams that name the run (seqmodel.contract.canonical_name)."""
    hparams.setdefault("attention_dropout", hparams.get("dropout", 0.1))


# The pretraining defaults 1.5 changed (chosen on a real genome: BENCHMARKS.md, `bench recipe`), as 1.4 had them.
DEFAULTS_OF_1_4: dict[str, Any] = {
    "dropout": 0.1, "lr": 1e-3, "batch_size": 32, "positional_encoding": "sinusoidal",
    "mask_prop": 0.12, "random_prop": 0.015, "keep_prop": 0.015,
}


def _hparams_from_1_4(hparams: dict[str, Any]) -> None:
    """1.4 -> 1.5: the defaults of DEFAULTS_OF_1_4 changed; hparams written by 1.4 without one meant 1.4's."""
    for name, default in DEFAULTS_OF_1_4.items():
        hparams.setdefault(name, default)


def _named_from_1_4(named: list[str]) -> list[str]:
    """1.4 -> 1.5: a run is named by its changes from today's defaults, so a value a 1.4 run left at a
    default that 1.5 changed names it now (a 1.4 default model is `do0.1,lr0.001,...` beside 1.5's)."""
    return sorted(set(named) | set(DEFAULTS_OF_1_4))


# Hparam migration from minor m to m + 1, keyed by m, for the current major.
HPARAM_MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {
    0: _hparams_from_1_0,
    1: _hparams_from_1_1,
    2: _hparams_from_1_2,
    3: _hparams_from_1_3,
    4: _hparams_from_1_4,
}

# Migration of the list of hparams that named a run (recorded since 1.4), from minor m to m + 1.
NAMED_MIGRATIONS: dict[int, Callable[[list[str]], list[str]]] = {4: _named_from_1_4}


def migrate_hparams(hparams: dict[str, Any], version: str, source: str, what: str = "config") -> dict[str, Any]:
    """Bring hparams written by `version` up to this one, in place (refusing what cannot be loaded)."""
    minor = check(version, source, what)
    for step in range(minor, major_minor(VERSION)[1]):
        HPARAM_MIGRATIONS[step](hparams)
    return hparams


def migrate_named(named: Optional[list[str]], version: str) -> Optional[list[str]]:
    """The hparams that named a run saved by `version` (checked already), as this version names runs; None
    (from before 1.4, which did not record them) stays None."""
    for step in range(major_minor(version)[1], major_minor(VERSION)[1]):
        if named is not None and step in NAMED_MIGRATIONS:
            named = NAMED_MIGRATIONS[step](named)
    return named
