"""ASHA on the sample genome (issue 15): against the full grid over the same 27 configurations, median
over the seeds that shuffle ASHA's start order. TPE against random search is `bench tpe`.

Every sweep runs on the local backend (`search.sweep(..., backend="local")`), whose planner and status
code are the operator's, with real training of tiny models through `python -m seqmodel.run`. Compute is
counted in training steps, which the machine's noise does not move: a grid trial trains `max` steps, an
ASHA run the steps from the rung below it to its own budget (a promotion resumes, so none twice).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any, Mapping

from bench.report import write_section
from seqmodel.contract.asha import Asha
from seqmodel.job import search
from seqmodel.job.sweep import SweepHandle

Halving = tuple[int, float, list[int]]  # an ASHA sweep's training steps, best value and runs per rung

ROOT = Path(__file__).resolve().parent.parent
BASE = {"seq_len": 100, "batch_size": 16, "n_heads": 2, "accelerator": "cpu", "warmup_steps": 10,
        "limit_val_batches": 8, "log_every_n_steps": 20}
GRID = {"lr": [3e-4, 2e-3, 1e-2], "d_model": [16, 32, 64], "n_layers": [1, 2, 3]}  # 27 configurations
ASHA = {"min": 20, "max": 180, "eta": 3}
SEEDS = (0, 1, 2)
PARALLELISM = 2  # the machine's cores


def run_sweep(name: str, out: Path, parameters: Mapping[str, Any], hparams: Mapping[str, Any],
              **kwargs: Any) -> SweepHandle:
    sweep = search.sweep(name, {**BASE, **hparams}, parameters, backend="local", parallelism=PARALLELISM,
                         output_dir=str(out), data_root=str(ROOT / "data"), **kwargs)
    sweep.wait(progress=False)
    return sweep


def asha_steps(rungs: list[int], asha: Asha) -> int:
    """Training steps of ASHA runs at these rungs: each trains from the rung below's budget to its own."""
    budgets = (0, *asha.budgets)
    return sum(budgets[rung + 1] - budgets[rung] for rung in rungs)


def best_value(sweep: SweepHandle) -> float:
    best = sweep.best()
    assert best is not None and best.value is not None, f"sweep {sweep.name} has no best trial"
    return float(best.value)


def halving(sweep: SweepHandle, asha: Asha) -> Halving:
    rungs = [int(job.name.rsplit("-r", 1)[1]) if "-r" in job.name else 0 for job in sweep.trials()]
    return asha_steps(rungs, asha), best_value(sweep), [rungs.count(k) for k in range(asha.top + 1)]


def main() -> None:
    asha = Asha.from_spec(ASHA)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        grid = run_sweep("grid", out, {"grid": GRID}, {"max_steps": ASHA["max"], "val_check_interval": ASHA["max"]})
        halvings = [halving(run_sweep(f"asha-{seed}", out, {"grid": GRID, "seed": seed},
                                      {"val_check_interval": ASHA["min"]}, asha=ASHA), asha) for seed in SEEDS]
    grid_best, grid_steps = best_value(grid), len(grid.trials()) * ASHA["max"]
    steps, asha_best = statistics.median(h[0] for h in halvings), statistics.median(h[1] for h in halvings)
    met = asha_best <= grid_best * 1.02 and steps * 3 <= grid_steps
    rows = "\n".join(
        f"| ASHA, seed {seed}: {', '.join(f'{n} at rung {k}' for k, n in enumerate(per_rung))} | {sum(per_rung)} | "
        f"{spent:,} ({spent / grid_steps:.0%}) | {best:.4f} ({best / grid_best - 1:+.1%}) |"
        for seed, (spent, best, per_rung) in zip(SEEDS, halvings))
    body = f"""
The sample genome (`data/genome`), tiny transformers, `python -m seqmodel.run` for every run, through
`search.sweep(..., backend="local")` (the operator's planner and status code), {PARALLELISM} runs at a time.
Base hparams: {", ".join(f"{k} {v}" for k, v in BASE.items())}. Objective: the last validation's val/loss.

ASHA against the full grid, over the same {len(grid.trials())} configurations ({" x ".join(f"{k} {v}" for k, v in GRID.items())}).
ASHA (min {ASHA["min"]}, max {ASHA["max"]}, eta {ASHA["eta"]}: rungs of {", ".join(map(str, asha.budgets))} steps) starts the grid's
trials in an order shuffled by the sweep's seed, so it runs once per seed ({", ".join(map(str, SEEDS))}):

| search | runs | training steps | best val/loss |
|---|---|---|---|
| grid, every trial {ASHA["max"]} steps | {len(grid.trials())} | {grid_steps:,} | {grid_best:.4f} |
{rows}
| ASHA, median over seeds | | {steps:,.0f} ({steps / grid_steps:.0%}) | {asha_best:.4f} ({asha_best / grid_best - 1:+.1%}) |

Goal: within 2% of the grid's best at a third of its steps or less (medians): **{'met' if met else 'NOT met'}**.
"""
    write_section("asha", "Adaptive sweeps: ASHA against the grid",
                  ".venv/bin/python -m bench asha", body)
    print(body)


if __name__ == "__main__":
    main()
