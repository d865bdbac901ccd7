"""Asynchronous successive halving (ASHA; Li et al., 2018) as pure functions of the results at each rung.

Every trial first trains `min` steps: rung 0. Rung k trains to min * eta**k steps, capped at `max`, the top
rung. A trial that finishes a rung is promoted when it is in the top 1/eta of the trials finished at that
rung so far (ranked by the objective; ties go to the lower trial index). A promoted trial resumes from its
last checkpoint and trains on to the next rung's budget, so no step is trained twice. Promotions are never
undone, and a trial leaves a rung at most once. The rule is asynchronous: as more trials finish a rung,
its top 1/eta grows, and a trial that waited there may still be promoted. A trial that failed, or reports
no finite objective value, takes no part in its rung's ranking.

The operator and the local backend both call `promotions` with what they know, so one rule decides on
both; it is a function of its inputs alone, so a restarted operator makes the same decisions again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from seqmodel.contract.space import SearchError

RESOURCES = ("max_steps",)  # what a rung's budget sets


@dataclass(frozen=True)
class RungResult:
    """How trial `index` ended rung `rung`: its objective `value`, None when it failed or has none."""

    index: int
    rung: int
    value: Optional[float]


@dataclass(frozen=True)
class Asha:
    min: int
    max: int
    eta: int = 3
    resource: str = "max_steps"

    @classmethod
    def from_spec(cls, spec: Mapping[str, object], field: str = "schedule.asha") -> "Asha":
        """From a sweep's `schedule.asha` (or the Python API's `asha=`); a bad value names its field."""
        unknown = sorted(set(spec) - {"min", "max", "eta", "resource"})
        if unknown:
            raise SearchError(f"{field}.{unknown[0]}: unknown setting (expected resource, min, max, eta)")
        values = {}
        for name, default in (("min", None), ("max", None), ("eta", 3)):
            value = spec.get(name, default)
            if value is None or isinstance(value, bool) or not isinstance(value, int):
                raise SearchError(f"{field}.{name}: expected a whole number, got {value!r}")
            values[name] = value
        resource = spec.get("resource", "max_steps")
        if resource not in RESOURCES:
            raise SearchError(f"{field}.resource: expected one of {', '.join(RESOURCES)}, got {resource!r}")
        if values["min"] < 1:
            raise SearchError(f"{field}.min: must be at least 1, got {values['min']}")
        if values["max"] < values["min"]:
            raise SearchError(f"{field}.max: must be at least min ({values['min']}), got {values['max']}")
        if values["eta"] < 2:
            raise SearchError(f"{field}.eta: must be at least 2, got {values['eta']}")
        return cls(values["min"], values["max"], values["eta"], str(resource))

    @property
    def budgets(self) -> tuple[int, ...]:
        """Each rung's budget: min, min * eta, ... while below max, then max."""
        out = [self.min]
        while out[-1] * self.eta < self.max:
            out.append(out[-1] * self.eta)
        if out[-1] < self.max:
            out.append(self.max)
        return tuple(out)

    @property
    def top(self) -> int:
        return len(self.budgets) - 1

    def promotions(self, results: Iterable[RungResult], promoted: Iterable[tuple[int, int]],
                   goal: str = "min") -> list[tuple[int, int]]:
        """(trial index, rung it is promoted to) for each promotion the rule makes now that is not among
        `promoted` (those made before), the highest rungs first, each rung's best first."""
        done, results = set(promoted), list(results)
        out = []
        for rung in range(self.top - 1, -1, -1):
            ranked = ranking([r for r in results if r.rung == rung], goal)
            for index in ranked[:len(ranked) // self.eta]:
                if (index, rung + 1) not in done:
                    out.append((index, rung + 1))
        return out


def standing(results: Iterable[RungResult], index: int, rung: int, goal: str = "min") -> str:
    """Where trial `index` stands among the results at `rung` ("rank 2 of 9 finished at rung 0"): what a
    promotion from that rung was decided on, recorded with it so that it can be checked afterwards."""
    ranked = ranking([r for r in results if r.rung == rung], goal)
    return f"rank {ranked.index(index) + 1} of {len(ranked)} finished at rung {rung}"


def ranking(results: Iterable[RungResult], goal: str = "min") -> list[int]:
    """Trial indices of the results with a finite value, best first; ties go to the lower index."""
    sign = -1.0 if goal == "max" else 1.0
    scored = [(sign * r.value, r.index) for r in results if r.value is not None and math.isfinite(r.value)]
    return [index for _, index in sorted(scored)]
