"""The adaptive-sweep benchmark's accounting (the sweeps themselves run in `python -m bench asha`)."""

from __future__ import annotations

from bench.bench_asha import ASHA, GRID, asha_steps
from seqmodel.contract.asha import Asha
from seqmodel.contract.space import count


def test_asha_runs_count_the_steps_from_the_rung_below_to_their_own_budget() -> None:
    asha = Asha.from_spec(ASHA)
    assert asha.budgets == (20, 60, 180)
    assert asha_steps([0, 0, 0, 1, 2], asha) == 3 * 20 + 40 + 120
    assert asha_steps([0] * 27, asha) * 9 == 27 * 180  # rung 0 alone is a ninth of the grid


def test_the_grid_is_the_27_configurations_the_issue_names() -> None:
    assert count({"grid": GRID}) == 27
