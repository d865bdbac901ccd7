"""TPE against random search on the sample genome (issue 15): the best val/loss each finds at an equal
number of trials, median over seeds. Both run on the local backend with the operator's planner, as in
`bench asha` (tiny transformers, real training), and at two budgets: a small sweep, where TPE has few
finished trials to model, and one twice its size.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench.bench_asha import BASE, PARALLELISM, best_value, run_sweep
from bench.report import write_section
from seqmodel.contract.tpe import default_startup
from seqmodel.job import search

SPACE = {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 3e-2},
         "d_model": {"distribution": "choice", "values": [16, 32, 64]},
         "n_layers": {"distribution": "int", "low": 1, "high": 3}}
BUDGETS, STEPS, SEEDS = (12, 24), 60, (0, 1, 2)


def main() -> None:
    fixed = {"max_steps": STEPS, "val_check_interval": STEPS}
    best: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for trials in BUDGETS:
            for seed in SEEDS:
                best.setdefault(("random", trials), []).append(best_value(run_sweep(
                    f"random-{trials}-{seed}", out, {"random": SPACE, "trials": trials, "seed": seed}, fixed)))
                best.setdefault(("tpe", trials), []).append(best_value(run_sweep(
                    f"tpe-{trials}-{seed}", out, search.tpe(SPACE, trials=trials, seed=seed), fixed)))
    median = {key: statistics.median(values) for key, values in best.items()}
    rows = "\n".join(
        f"| {kind}, {trials} trials{f' ({default_startup(trials)} random first)' if kind == 'tpe' else ''} | "
        f"{', '.join(f'{v:.4f}' for v in best[(kind, trials)])} | {median[(kind, trials)]:.4f} |"
        for trials in BUDGETS for kind in ("random", "tpe"))
    met = {trials: median[("tpe", trials)] < median[("random", trials)] for trials in BUDGETS}
    verdicts = "; ".join(f"{trials} trials: **{'met' if met[trials] else 'NOT met'}**" for trials in BUDGETS)
    body = f"""
The sample genome, tiny transformers ({", ".join(f"{k} {v}" for k, v in BASE.items())}), {STEPS} steps per
trial, {PARALLELISM} trials at a time (TPE's constant liar counts the one in flight), over lr (log-uniform 1e-4
to 3e-2), d_model (16, 32, 64) and n_layers (1 to 3). TPE draws at random until `startupTrials` trials
have finished (default: a quarter of the trials, from 2 to 10). Best val/loss per seed
({", ".join(map(str, SEEDS))}) and the median:

| search | best per seed | median |
|---|---|---|
{rows}

Goal: TPE's median best is better than random's. {verdicts}.
"""
    write_section("tpe", "Adaptive sweeps: TPE against random search", ".venv/bin/python -m bench tpe", body)
    print(body)


if __name__ == "__main__":
    main()
