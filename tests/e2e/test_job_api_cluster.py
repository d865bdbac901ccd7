"""The Python job API on the local cluster: Job.submit with both backends gives the same layout and job log
rows; search.sweep runs a grid as a SeqSweep and its handle reports the best trial."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from e2e_support import REPO, RUN_TIMEOUT, SMALL, Claims
from seqmodel.job import Job, joblog, search
from seqmodel.job.spec import canonical_name

FAST = {**SMALL, "max_steps": 20}  # validates and checkpoints at steps 10 and 20


def cluster_settings(cluster, namespace: str, claims: Claims) -> dict:
    """Job settings for the operator's namespace and the test's claims; outputs read from the claim's
    host directory, logs through the API server."""
    return {"namespace": namespace, "kubeconfig": str(cluster.kubeconfig), "output_dir": str(claims.output_dir),
            "data": {"claim": claims.data, "types": ["genome"]}, "output": {"claim": claims.output},
            "resources": {"gpus": 1, "cpu": 1, "memory": "2Gi"}, "backoff_limit": 2}


def files_of(run_dir: Path) -> set[str]:
    """What a run left, as relative paths; dot entries are the backends' own (owner marker, local scripts),
    and TensorBoard names its event files after the host, PID and time."""
    return {str(p.relative_to(run_dir)) if not p.name.startswith("events.out.tfevents.") else str(p.parent.relative_to(run_dir))
            for p in run_dir.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(run_dir).parts)}


def test_both_backends_make_the_same_layout_and_job_log_rows(cluster, op_namespace, claims, tmp_path: Path) -> None:
    c = claims(op_namespace)
    remote = Job(FAST, backend="kubernetes", name="same", **cluster_settings(cluster, op_namespace, c)).submit()
    here = Job(FAST, backend="local", name="same", output_dir=str(tmp_path), data_root=str(REPO / "data")).submit()
    assert remote.canonical == here.canonical == canonical_name(FAST)
    statuses = {job.backend: job.wait(timeout=RUN_TIMEOUT, poll=1) for job in (remote, here)}

    (remote_dir,), (local_dir,) = remote.outputs(), here.outputs()
    assert remote_dir == c.output_dir / "runs" / remote.canonical / "version_0"
    assert local_dir == tmp_path / "runs" / here.canonical / "version_0"
    assert files_of(remote_dir) == files_of(local_dir)
    assert {"hparams.yaml", "metrics.json", "checkpoints/last.ckpt"} <= files_of(local_dir)
    for run_dir in (remote_dir, local_dir):
        assert yaml.safe_load((run_dir / "hparams.yaml").read_text())["name"] == here.canonical
    assert set(statuses["kubernetes"].metrics) == set(statuses["local"].metrics) >= {"val/loss", "train/loss"}
    assert json.loads((remote_dir / "metrics.json").read_text())["global_step"] == 20

    rows = {r["backend"]: r for path in (c.output_dir / "runs" / "jobs.jsonl", tmp_path / "runs" / "jobs.jsonl")
            for r in joblog.read(path)}
    assert set(rows) == {"kubernetes", "local"}
    assert set(rows["kubernetes"]) == set(rows["local"]) == set(joblog.KEYS)
    for key in ("name", "replicate", "canonical", "version"):
        assert rows["kubernetes"][key] == rows["local"][key], key
    assert (rows["kubernetes"]["output"], rows["local"]["output"]) == (str(remote_dir), str(local_dir))
    for job in (remote, here):
        assert "`Trainer.fit` stopped: `max_steps=20` reached" in job.logs(), job.backend


def test_a_sweep_from_python_runs_its_grid_and_names_the_best_trial(cluster, op_namespace, claims) -> None:
    c = claims(op_namespace)
    lrs = [0.0005, 0.004]
    sweep = search.sweep("lr", FAST, {"grid": {"lr": lrs}}, parallelism=2, **cluster_settings(cluster, op_namespace, c))
    status = sweep.wait(timeout=RUN_TIMEOUT, poll=1)
    assert (status.phase, status.trials, status.succeeded, status.failed) == ("Succeeded", 2, 2, 0)

    trials = sweep.trials()
    assert [t.name for t in trials] == ["lr-0", "lr-1"]
    losses = {}
    for trial, lr in zip(trials, lrs):
        assert trial.hparams == {**FAST, "lr": lr}
        assert trial.canonical == canonical_name({**FAST, "lr": lr})  # the operator's name is the local one
        (out,) = trial.outputs()
        assert (out / "hparams.yaml").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
        losses[trial.name] = trial.status().metrics["val/loss"]
    best = sweep.best()
    assert best.name == min(losses, key=losses.get) and best.value == losses[best.name]
    assert best.hparams["lr"] == lrs[best.index]
    assert sweep.delete()
