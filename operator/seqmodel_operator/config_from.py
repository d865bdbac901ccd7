"""A job's hparams from three places: spec.configFrom (a seqmodel config file in a ConfigMap),
spec.hparams and spec.componentHparams, checked as far as the operator can.

Built-in hparams are checked here (and those in spec.hparams by the API server already). Hparams of
custom components are declared by code the operator does not run, so they are only checked for shape
here, and by seqmodel.run when the pod starts: a bad one fails the job with a message naming it. They
enter the canonical name by their full names (seqmodel.contract.canonical_name).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from seqmodel.config.files import load
from seqmodel.errors import UserError
from seqmodel.hparam import registry
from seqmodel_operator import constants as C

SCALARS = (str, int, float, bool)
HPARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch: what an argparse flag can be


class ConfigSpecError(ValueError):
    """A config or component hparam the operator refuses; the message names the field or file and key."""


def config_values(files: Mapping[str, str], key: str, configmap: str) -> dict[str, Any]:
    """The hparams a config file in a ConfigMap sets, its `defaults:` merged in order (other keys of
    the ConfigMap are the files it may name; presets come from the seqmodel package)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        try:
            loaded = load(key, Path(tmp))
        except UserError as err:
            raise ConfigSpecError(f"spec.configFrom: {str(err).replace(tmp + '/', f'ConfigMap {configmap} key ')}") from None
    merged: dict[str, Any] = {}
    for config_file in loaded:
        merged.update(config_file.values)
    owned = sorted(set(merged) & set(C.JOB_OWNED_HPARAMS))
    if owned:
        raise ConfigSpecError(f"spec.configFrom: ConfigMap {configmap} key {key} sets {owned[0]}, "
                              "which the operator sets from other spec fields")
    return merged


def split(config: Mapping[str, Any], component_hparams: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(built-in hparams of the config, checked; custom component hparams from both places)."""
    reg = registry()
    builtin = {k: v for k, v in config.items() if k in reg}
    try:
        checked = reg.parse_dict(builtin, where="spec.configFrom: ")
    except UserError as err:
        raise ConfigSpecError(str(err)) from None
    for name, value in component_hparams.items():
        if not HPARAM_NAME.fullmatch(name):
            raise ConfigSpecError(f"spec.componentHparams.{name}: not an hparam name (letters, digits, _)")
        if name in reg:
            raise ConfigSpecError(f"spec.componentHparams.{name}: a built-in hparam; set it in spec.hparams")
        if not isinstance(value, SCALARS) and value is not None:
            raise ConfigSpecError(f"spec.componentHparams.{name}: must be a string, number or boolean")
    custom = {**{k: v for k, v in config.items() if k not in reg}, **component_hparams}
    return {k: checked[k] for k in builtin}, custom
