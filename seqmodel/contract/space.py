"""Search spaces as lists of hparam dicts: grids, random draws and explicit lists. Torch-free, and free
of everything else in seqmodel.job: the operator expands SeqSweeps with it.

Trial `i` of a sweep is `expand(parameters)[i]` wherever it is computed (the operator, a notebook's
`grid`/`random`), so order is part of the contract: names are sorted (a Kubernetes object's maps come back
sorted anyway) and random draws come from `random.Random(seed)`, whose sequence Python keeps stable.
"""

from __future__ import annotations

import itertools
import math
import random as _random
from typing import Any, Mapping, Sequence

from seqmodel.errors import UserError

DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
MAX_TRIALS = 100_000  # the most trials one SeqSweep runs (the operator's CRD says so too)


class SearchError(UserError, ValueError):
    """A bad search space: the message is one line that names the parameter."""


def grid(base: Mapping[str, Any], values: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of `values` over `base`; the last name (sorted) varies fastest."""
    names = sorted(values)
    for name in names:
        if isinstance(values[name], (str, bytes)) or not isinstance(values[name], Sequence):
            raise SearchError(f"grid.{name}: expected a list of values, got {values[name]!r}")
        if not values[name]:
            raise SearchError(f"grid.{name}: the list of values is empty")
    return [{**base, **dict(zip(names, combo))} for combo in itertools.product(*(values[n] for n in names))]


def random(base: Mapping[str, Any], space: Mapping[str, Mapping[str, Any]], n: int,
           seed: int = 0) -> list[dict[str, Any]]:
    """`n` draws from `space` (name -> {distribution, low, high} or {distribution: choice, values})."""
    if n < 1:
        raise SearchError(f"trials: must be at least 1, got {n}")
    names = sorted(space)
    for name in names:
        check_distribution(name, space[name])
    rng = _random.Random(seed)
    return [{**base, **{name: _draw(rng, space[name]) for name in names}} for _ in range(n)]


def expand(parameters: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The trials of a SeqSweep's `spec.parameters`: exactly one of `grid`, `random` (with `trials` and
    `seed`) or `list`."""
    base = dict(base or {})
    kinds = [k for k in ("grid", "random", "list") if parameters.get(k) is not None]
    if len(kinds) != 1:
        raise SearchError(f"parameters: set exactly one of grid, random and list (got {', '.join(kinds) or 'none'})")
    if kinds == ["grid"]:
        return grid(base, parameters["grid"])
    if kinds == ["random"]:
        if "trials" not in parameters:
            raise SearchError("parameters.trials: random search needs the number of trials")
        return random(base, parameters["random"], int(parameters["trials"]), int(parameters.get("seed", 0)))
    trials = parameters["list"]
    if not trials:
        raise SearchError("parameters.list: the list of trials is empty")
    return [{**base, **trial} for trial in trials]


def count(parameters: Mapping[str, Any]) -> int:
    """How many trials `expand(parameters)` gives, without building them (a grid can be large)."""
    if parameters.get("grid") is not None:
        return math.prod(len(v) for v in parameters["grid"].values())
    if parameters.get("random") is not None or parameters.get("tpe") is not None:
        return int(parameters.get("trials", 0))
    return len(parameters.get("list") or [])


def check_distribution(name: str, spec: Mapping[str, Any], field: str = "random") -> None:
    """One parameter of a random (or TPE) space; a bad one is refused naming `field.name`."""
    kind = spec.get("distribution")
    if kind not in DISTRIBUTIONS:
        raise SearchError(f"{field}.{name}.distribution: expected one of {', '.join(DISTRIBUTIONS)}, got {kind!r}")
    if kind == "choice":
        if not spec.get("values"):
            raise SearchError(f"{field}.{name}.values: choice needs a non-empty list of values")
        return
    low, high = spec.get("low"), spec.get("high")
    if low is None or high is None:
        raise SearchError(f"{field}.{name}: {kind} needs low and high")
    if not low <= high:
        raise SearchError(f"{field}.{name}: low ({low}) must not exceed high ({high})")
    if kind == "loguniform" and low <= 0:
        raise SearchError(f"{field}.{name}.low: loguniform needs low > 0, got {low}")
    if kind == "int" and (int(low) != low or int(high) != high):
        raise SearchError(f"{field}.{name}: int needs whole numbers for low and high")


def _draw(rng: _random.Random, spec: Mapping[str, Any]) -> Any:
    kind = spec["distribution"]
    if kind == "choice":
        return spec["values"][rng.randrange(len(spec["values"]))]
    low, high = spec["low"], spec["high"]
    if kind == "int":
        return rng.randint(int(low), int(high))
    if kind == "loguniform":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)
