"""Sweeps on the local backend: the operator's planner and status code over local runs (the stand-in
interpreter of job_api_support, whose val/loss is a function of the run's flags), and one real ASHA
sweep that promotes by resuming."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from job_api_support import argv_of, fake_python, stamped_checkpoint
from seqmodel.contract.sweep_plan import Run, Search
from seqmodel.job import search
from seqmodel.job.defaults import CONFIG_ENV
from seqmodel.job.spec import JobSpecError
from seqmodel.job.sweep import SweepFailed

ROOT = Path(__file__).resolve().parents[2]
LRS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
# best at lr 0.01; more steps always help, so a promoted run is better than its rung below
OBJECTIVE = "abs(math.log10(lr) + 2) + 1 / max_steps"


@pytest.fixture(autouse=True)
def fake_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FAKE_RUN_OBJECTIVE", OBJECTIVE)


def local_sweep(tmp_path: Path, name: str, parameters: dict, **kwargs):
    return search.sweep(name, {"d_model": 16, "max_steps": 10}, parameters, backend="local", output_dir=str(tmp_path / "out"),
                        python=str(fake_python(tmp_path)), **kwargs)


def test_asha_promotes_by_resuming_each_replicate_and_ends_at_the_top_rung(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RUN_CHECKPOINT", str(stamped_checkpoint(tmp_path / "model.ckpt", {"d_model": 16})))
    sweep = local_sweep(tmp_path, "asha", {"grid": {"lr": LRS}}, replicates=2, parallelism=3,
                        asha={"min": 1, "max": 9, "eta": 3})
    status = sweep.wait(timeout=240, poll=0.1, progress=False)
    assert status.phase == "Succeeded" and status.trials == 9 and status.succeeded == 9
    assert status.best is not None and (status.best.index, status.best.rung) == (2, 2)
    assert status.best.value == pytest.approx(1 / 9) and status.best.n == 2 and status.best.hparams == {"lr": 0.01}
    runs = {key(job.name): job for job in sweep.trials()}
    assert len(runs) == len(sweep.trials()) and {index for index, _ in runs} == set(range(9))  # every run once
    promoted = sorted(k for k in runs if k[1] > 0)
    assert (2, 1) in promoted and (2, 2) in promoted
    for index, rung in promoted:
        for mine, theirs in zip(runs[index, rung].outputs(), runs[index, rung - 1].outputs()):  # each its own
            argv = argv_of(mine)
            assert f"--max_steps={3 ** rung}" in argv
            assert argv[-1] == f"--resume_from_checkpoint={theirs / 'checkpoints' / 'last.ckpt'}"
    # the status is the operator's: one entry per rung, promotions counted from the runs
    rungs = sweep._object()["status"]["rungs"]
    assert [r["budget"] for r in rungs] == [1, 3, 9] and rungs[0]["started"] == 9
    assert rungs[0]["promoted"] == rungs[1]["started"] == sum(rung == 1 for _, rung in promoted)
    # as the results stand at the end, no promotion the rule makes is missing
    done = [Run(index, rung, {}, "Succeeded", job.status().metrics["val/loss"]) for (index, rung), job in runs.items()]
    assert Search({"grid": {"lr": LRS}}, {"asha": {"min": 1, "max": 9, "eta": 3}},
                  {"metric": "val/loss"}).promotions(done) == []


def key(run_name: str) -> tuple[int, int]:
    """(index, rung) of `<sweep>-<index>[-r<rung>]`."""
    parts = run_name.split("-")
    return int(parts[1]), int(parts[2][1:]) if len(parts) > 2 else 0


def test_tpe_one_at_a_time_suggests_what_the_planner_suggests_from_the_same_history(tmp_path: Path) -> None:
    parameters = search.tpe({"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1.0}}, trials=5, seed=7)
    sweep = local_sweep(tmp_path, "tpe", parameters, parallelism=1)
    status = sweep.wait(timeout=120, poll=0.1, progress=False)
    assert status.phase == "Succeeded" and status.succeeded == 5
    planner, runs = Search(parameters, None, {"metric": "val/loss"}), []
    for job in sweep.trials():
        (launch,) = planner.plan(runs, 1)
        assert job.hparams == {"d_model": 16, "max_steps": 10, **launch.params}
        lr = launch.params["lr"]
        runs.append(Run(launch.index, 0, launch.params, "Succeeded", abs(math.log10(lr) + 2) + 1 / 10))
    best = min(sweep.trials(), key=lambda job: job.status().metrics["val/loss"])
    assert status.best is not None and status.best.name == best.name


def test_failed_trials_stop_the_sweep_at_max_failed_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RUN_EXIT", "1")
    sweep = local_sweep(tmp_path, "bad", {"grid": {"lr": LRS}}, parallelism=2, max_failed_trials=1)
    with pytest.raises(SweepFailed, match="2 trials failed, more than maxFailedTrials \\(1\\)"):
        sweep.wait(timeout=60, poll=0.1, progress=False)
    assert len(sweep.trials()) < len(LRS)  # no more trials started
    status = sweep.status()
    assert status.failures[0].message and "hparam 'x' is bad" in status.failures[0].message


def test_a_local_sweep_is_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match="trial_retries: local trials are not retried"):
        local_sweep(tmp_path, "r", {"grid": {"lr": LRS}}, trial_retries=2)
    with pytest.raises(search.SearchError, match="parameters.grid"):
        local_sweep(tmp_path, "r", {"grid": {"lr": [-1.0]}})
    assert not (tmp_path / "out").exists()
    local_sweep(tmp_path, "once", {"grid": {"lr": [0.01]}}).wait(timeout=60, poll=0.1, progress=False)
    with pytest.raises(JobSpecError, match="name: a local sweep named once ran under .* already"):
        local_sweep(tmp_path, "once", {"grid": {"lr": [0.01]}})


def test_a_real_asha_sweep_promotes_by_resuming_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """seqmodel.run itself, tiny, on the sample genome: the promoted run continues from step 2."""
    monkeypatch.setenv("SEQMODEL_CACHE_DIR", str(tmp_path / "cache"))
    tiny = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 64, "batch_size": 8,
            "accelerator": "cpu", "limit_val_batches": 2, "val_check_interval": 2, "log_every_n_steps": 1,
            "warmup_steps": 1}
    sweep = search.sweep("real", tiny, {"grid": {"lr": [1e-3, 1e-2, 1e-1]}}, backend="local", parallelism=2,
                         asha={"min": 2, "max": 6, "eta": 3}, output_dir=str(tmp_path / "out"),
                         data_root=str(ROOT / "data"))
    status = sweep.wait(timeout=600, poll=0.5, progress=False)
    assert status.phase == "Succeeded" and status.best is not None and status.best.rung == 1
    (promoted,) = [job for job in sweep.trials() if job.name.endswith("-r1")]
    assert "resuming from" in promoted.logs() and "at step 2" in promoted.logs()
    out = promoted.outputs()[0]
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 6
