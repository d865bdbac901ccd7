"""Version checks and hparam migrations, shared by checkpoints (`seqmodel.outputs.checkpoint`) and saved run
configs (`hparams.yaml` given to `--config`). Torch-free.

VERSION is major.minor.build. Something written by the same major and the same or an older minor is
brought up to this version by the migrations from its minor up to ours, in order; another major, or a
newer minor, is refused with one line naming both versions. The build number never matters.
"""

from __future__ import annotations

from typing import Any, Callable

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


# Hparam migration from minor m to m + 1, keyed by m, for the current major.
HPARAM_MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {
    0: _hparams_from_1_0,
    1: _hparams_from_1_1,
    2: _hparams_from_1_2,
    3: _hparams_from_1_3,
}


def migrate_hparams(hparams: dict[str, Any], version: str, source: str, what: str = "config") -> dict[str, Any]:
    """Bring hparams written by `version` up to this one, in place (refusing what cannot be loaded)."""
    minor = check(version, source, what)
    for step in range(minor, major_minor(VERSION)[1]):
        HPARAM_MIGRATIONS[step](hparams)
    return hparams
