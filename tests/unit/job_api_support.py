"""Test doubles for the job API: an in-memory KubeApi whose SeqTrainingJobs are named by the operator's own
planner, and a stand-in interpreter for local runs that records its arguments and writes what a run writes."""

from __future__ import annotations

import copy
import itertools
import json
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from seqmodel.job.kubeapi import KubeError
from seqmodel.contract import JOB_PLURAL
from seqmodel_operator.plan import make_plan
from seqmodel_operator.settings import Settings

NAMESPACE = "research"
METRICS = {"val/loss": 1.25, "train/loss": 1.5}

# `python -m seqmodel.run ARGS` for the local backend, without torch: writes ARGS to argv.json and the files a
# run leaves (hparams.yaml, metrics.json, checkpoints/last.ckpt) in --default_root_dir, and the summary to
# $SEQMODEL_TERMINATION_LOG. $FAKE_RUN_EXIT makes it fail with that code, $FAKE_RUN_SLEEP makes it slow.
# $FAKE_RUN_OBJECTIVE, an expression over the run's numeric flags (`lr`, `max_steps`), is its val/loss;
# $FAKE_RUN_CHECKPOINT, a real checkpoint (stamped_checkpoint), is copied to last.ckpt, for a run that
# resumes from it to read its name from.
FAKE_RUN = '''#!{python}
import json, math, os, shutil, sys, time
args = sys.argv[3:]
assert sys.argv[1:3] == ["-m", "seqmodel.run"], sys.argv
out = [a.split("=", 1)[1] for a in args if a.startswith("--default_root_dir=")][-1]
json.dump(args, open(os.path.join(out, "argv.json"), "w"))
print("training", flush=True)
time.sleep(float(os.environ.get("FAKE_RUN_SLEEP", "0")))
code = int(os.environ.get("FAKE_RUN_EXIT", "0"))
metrics = {metrics}
flags = {{}}
for arg in args:
    key, _, value = arg[2:].partition("=")
    try:
        flags[key] = float(value)
    except ValueError:
        pass
if os.environ.get("FAKE_RUN_OBJECTIVE"):
    metrics["val/loss"] = eval(os.environ["FAKE_RUN_OBJECTIVE"], {{"math": math}}, flags)
summary = {{"status": "succeeded", "metrics": metrics}}
if code:
    summary = {{"status": "failed", "error": "hparam 'x' is bad", "metrics": {{}}}}
    print("error: hparam 'x' is bad", file=sys.stderr)
else:
    os.makedirs(os.path.join(out, "checkpoints"))
    for name in ("hparams.yaml", "metrics.json", "checkpoints/last.ckpt"):
        open(os.path.join(out, name), "w").write("x")
    if os.environ.get("FAKE_RUN_CHECKPOINT"):
        shutil.copy(os.environ["FAKE_RUN_CHECKPOINT"], os.path.join(out, "checkpoints", "last.ckpt"))
open(os.environ["SEQMODEL_TERMINATION_LOG"], "w").write(json.dumps(summary))
sys.exit(code)
'''


def fake_python(directory: Path) -> Path:
    path = directory / "fake-python"
    path.write_text(FAKE_RUN.format(python=sys.executable, metrics=json.dumps(METRICS)))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def stamped_checkpoint(path: Path, hparams: Mapping[str, Any]) -> Path:
    """A checkpoint as seqmodel writes them, of a run named by `hparams`, for FAKE_RUN_CHECKPOINT."""
    import torch

    from seqmodel.outputs import checkpoint

    ckpt = {"hyper_parameters": dict(hparams), "state_dict": {}}
    checkpoint.stamp(ckpt, None, list(hparams))
    torch.save(ckpt, path)
    return path


def argv_of(run_dir: Path) -> list[str]:
    return json.loads((run_dir / "argv.json").read_text())


class FakeKube:
    """KubeApi's methods over dicts. `operator(plural, obj)` runs before every read, standing in for the
    operator; `calls` records (method, plural, name) in order; `pod_list` and `pod_logs` serve pods."""

    default_namespace = NAMESPACE

    def __init__(self, operator: Optional[Callable[[str, dict], None]] = None) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.operator = operator
        self.calls: list[tuple[str, str, str]] = []
        self.uids = itertools.count(1)
        self.pod_list: list[dict[str, Any]] = []
        self.pod_logs: dict[str, str] = {}

    def create(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.calls.append(("create", plural, name))
        if (plural, namespace, name) in self.objects:
            raise KubeError(f"{plural} {namespace}/{name}: 409 Conflict: already exists")
        obj = copy.deepcopy(dict(body))
        obj["metadata"].update(namespace=namespace, uid=f"uid-{next(self.uids)}")
        self.objects[(plural, namespace, name)] = obj
        return copy.deepcopy(obj)

    def get(self, plural: str, namespace: str, name: str) -> Optional[dict[str, Any]]:
        self.calls.append(("get", plural, name))
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            return None
        if self.operator:
            self.operator(plural, obj)
        return copy.deepcopy(obj)

    def list(self, plural: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return [self.get(p, ns, name) for (p, ns, name), o in list(self.objects.items())  # type: ignore[misc]
                if p == plural and ns == namespace
                and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]

    def delete(self, plural: str, namespace: str, name: str) -> bool:
        self.calls.append(("delete", plural, name))
        return self.objects.pop((plural, namespace, name), None) is not None

    def pods(self, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return [p for p in self.pod_list if all(p["metadata"]["labels"].get(k) == v for k, v in labels.items())]

    def pod_log(self, namespace: str, pod: str, container: str) -> str:
        return self.pod_logs[f"{pod}/{container}"]


class NamingOperator:
    """Names SeqTrainingJobs as the operator does: the canonical name from its planner (make_plan), versions
    counted per (claim, root, canonical name), after `delay` reads; `finish` sets a phase and metrics."""

    def __init__(self, delay: int = 1, phase: str = "Running") -> None:
        self.delay, self.phase = delay, phase
        self.reads: dict[str, int] = {}
        self.next_version: dict[str, int] = {}

    def __call__(self, plural: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        self.reads[name] = self.reads.get(name, 0) + 1
        if plural != JOB_PLURAL or obj.get("status") or self.reads[name] <= self.delay:
            return
        plan = make_plan(obj, Settings(output_claim="default-out"))
        replicates = []
        for i in range(plan.replicates):
            version = self.next_version.get(plan.version_key, 0)
            self.next_version[plan.version_key] = version + 1
            replicates.append({"index": i, "version": version, "outputPath": plan.output_path(version),
                               "phase": self.phase, "job": plan.child_name(i, version)})
        obj["status"] = {"phase": self.phase, "canonicalName": plan.canonical, "replicates": replicates}


def finish(obj: dict[str, Any], phase: str = "Succeeded", metrics: Mapping[str, float] = METRICS,
           message: Optional[str] = None) -> None:
    """Make a named SeqTrainingJob end as the operator would write it."""
    status = obj["status"]
    status["phase"] = phase
    for r in status["replicates"]:
        r["phase"] = phase
        r["metrics"] = dict(metrics) if phase == "Succeeded" else {}
    status["metrics"] = dict(metrics) if phase == "Succeeded" else {}
    if message:
        status["message"] = message
