"""One job, two paths: Kubernetes (the operator's plan, its rendered pod arguments, then the pod's own
resolution of them) and this machine (the job API's local backend, or the layout CLI for a config file, then
seqmodel.run's resolution) give the same canonical name, output directory, final hparams and phase rules.

Nothing is faked on either path but the interpreter the local backend starts (it records its arguments)
and the volumes (pod paths are mapped onto the test's directories)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml

from job_api_support import argv_of, fake_python
from operator_support import child_job, job_body, with_replicates
from seqmodel import VERSION, contract, pod
from seqmodel.config.resolve import Resolved, resolve
from seqmodel.job import Job
from seqmodel.job.local_backend import JOB_FILES, LocalBackend
from seqmodel.job.status import Placed
from seqmodel_operator import status as operator_status
from seqmodel_operator.plan import CHECKPOINT_MOUNT, CONFIG_MOUNT, OUTPUT_MOUNT, make_plan
from seqmodel_operator.render import Replicate, render_job
from seqmodel_operator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / f"v{VERSION}" / "ptmask.ckpt"
# The hparams tests/fixtures/make_fixtures.sh trained the fixture with: its job's spec.hparams.
FIXTURE_HPARAMS = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 64, "batch_size": 8,
                   "max_steps": 4, "val_check_interval": 2, "limit_val_batches": 2, "accelerator": "cpu",
                   "log_every_n_steps": 1, "seed": 1}
SOURCE_DIR = "runs/source/version_0"
DILATED = "my_encoders.conv:DilatedConvEncoder"
CONFIG_FILE = {"defaults": "model/small", "lr": 0.005, "dilation_base": 3, "encoder": DILATED}
OPERATOR = Settings(image="seqmodel-trainer:test", output_claim="out")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    hparams: dict[str, Any]
    custom: dict[str, Any] = dataclasses.field(default_factory=dict)  # the custom components' own hparams
    config_file: Optional[dict[str, Any]] = None
    mode: str = "train"
    checkpoint_use: Optional[str] = None  # from the source model
    replicates: int = 1


CASES = [
    Case("built-in", {"d_model": 32, "lr": 0.01, "max_steps": 7}),
    Case("custom component", {"encoder": DILATED, "d_model": 16}, custom={"dilated_layers": 2, "dilated_kernel": 5}),
    Case("config file", {"seq_len": 128}, custom={"dilated_layers": 3}, config_file=CONFIG_FILE),
    Case("checkpoint inheritance", {"lr": 0.003}, checkpoint_use="weights"),
    Case("encoder init", {"lr": 0.003, "task": "finetune"}, checkpoint_use="encoder"),
    Case("test mode", {"limit_test_batches": 2}, mode="test", checkpoint_use="weights"),
    Case("replicates", {"d_model": 24, "n_layers": 3}, replicates=3),
]


@pytest.fixture
def claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The output claim, holding the source model's run; the example encoder importable (`./src`)."""
    root = tmp_path / "claim"
    (root / SOURCE_DIR / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURE, root / SOURCE_DIR / "checkpoints" / "last.ckpt")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "my_encoders").symlink_to(ROOT / "examples" / "custom_encoder" / "my_encoders")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.chdir(tmp_path)
    return root


def source_job() -> dict[str, Any]:
    return with_replicates(job_body("source", uid="uid-src", hparams=FIXTURE_HPARAMS), SOURCE_DIR)


@dataclasses.dataclass
class PathResult:
    canonical: str
    outputs: list[str]  # claim-relative version directories, one per replicate
    resolved: list[Resolved]  # each replicate's resolution, where it runs


def kubernetes_path(case: Case, claim: Path) -> PathResult:
    """The operator plans and renders each replicate's Job; the pod's entry point turns the rendered
    arguments into seqmodel.run's, which resolve them (pod mounts mapped onto the claim)."""
    spec: dict[str, Any] = {"hparams": case.hparams, "mode": case.mode, "replicates": case.replicates,
                            "output": {"claim": "out"}}
    if case.custom:
        spec["componentHparams"] = case.custom
    files = None
    if case.config_file is not None:
        spec["configFrom"] = {"name": "cfg"}
        files = {"config.yaml": yaml.safe_dump(case.config_file)}
    if case.checkpoint_use:
        spec["checkpoint"] = {"fromJob": "source", "use": case.checkpoint_use}
    plan = make_plan(job_body("demo", **spec), OPERATOR, source=source_job() if case.checkpoint_use else None,
                     config_files=files)
    config_dir = claim.parent / "configmap"
    if files:
        config_dir.mkdir(exist_ok=True)
        (config_dir / "config.yaml").write_text(files["config.yaml"])
    resolved = []
    for replicate in range(case.replicates):
        job = render_job(plan, Replicate(replicate, replicate), OPERATOR)
        trainer = job["spec"]["template"]["spec"]["containers"][0]
        assert trainer["command"] == ["python", "-m", "seqmodel.pod", "run"]
        mounts = {OUTPUT_MOUNT: str(claim / plan.output_path(replicate)), CONFIG_MOUNT: str(config_dir)}
        if plan.checkpoint:
            mounts[CHECKPOINT_MOUNT] = str(claim / plan.checkpoint_dir(replicate))
        args = [_mapped(arg, mounts) for arg in trainer["args"]]
        resolved.append(resolve(pod.run_args(args)))
    return PathResult(plan.canonical, [plan.output_path(r) for r in range(case.replicates)], resolved)


def _mapped(arg: str, mounts: dict[str, str]) -> str:
    name, _, value = arg.partition("=")
    for mount, here in mounts.items():
        if value == mount or value.startswith(mount + "/"):
            return f"{name}={here}{value[len(mount):]}"
    return arg


def local_path(case: Case, claim: Path) -> PathResult:
    """The job API's local backend (its interpreter records the arguments), or, for a config file, which
    the job API does not take, the documented local way: the layout CLI picks the version directory."""
    if case.config_file is not None:
        (claim.parent / "my.yaml").write_text(yaml.safe_dump(case.config_file))
        flags = ["--config=my.yaml", *(f"--{k}={v}" for k, v in {**case.hparams, **case.custom}.items())]
        layout = subprocess.run([sys.executable, "-m", "seqmodel.layout", str(claim / "runs"), *flags],
                                capture_output=True, text=True, check=True, cwd=claim.parent)
        out = Path(layout.stdout.strip())
        resolved = resolve([*flags, f"--default_root_dir={out}", f"--seed={0}"])
        return PathResult(out.parent.name, [str(out.relative_to(claim))], [resolved])
    checkpoint = {"path": f"{SOURCE_DIR}/checkpoints/last.ckpt", "use": case.checkpoint_use} \
        if case.checkpoint_use else None
    job = Job({**case.hparams, **case.custom}, backend="local", python=str(fake_python(claim.parent)),
              output_dir=str(claim), mode=case.mode, replicates=case.replicates, checkpoint=checkpoint).submit()
    job.wait(timeout=60, poll=0.05, progress=False)
    outputs = job.outputs()
    return PathResult(job.canonical or "", [str(o.relative_to(claim)) for o in outputs],
                      [resolve(argv_of(o)) for o in outputs])


def comparable(resolved: Resolved) -> dict[str, Any]:
    """Final hparams without what the job sets from where it runs (output, checkpoint and data paths)."""
    return {k: v for k, v in resolved.hparams.items() if k not in contract.JOB_OWNED_HPARAMS}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_both_paths_name_place_and_resolve_a_job_alike(case: Case, claim: Path) -> None:
    k8s = kubernetes_path(case, claim)
    here = local_path(case, claim)
    assert k8s.canonical == here.canonical
    assert [r.name for r in k8s.resolved] == [r.name for r in here.resolved] == [k8s.canonical] * case.replicates
    assert k8s.outputs == here.outputs == [f"runs/{k8s.canonical}/version_{v}" for v in range(case.replicates)]
    assert [comparable(r) for r in k8s.resolved] == [comparable(r) for r in here.resolved]
    assert [r.named for r in k8s.resolved] == [r.named for r in here.resolved]
    seeds = [r.hparams["seed"] for r in k8s.resolved]
    assert seeds == list(range(case.replicates))  # each replicate its own: the version
    for name, value in {**case.hparams, **case.custom}.items():
        assert k8s.resolved[0].hparams[name] == value


def test_the_cases_show_what_they_are_about(claim: Path) -> None:
    """Each case exercises its rule, so the table cannot pass by naming everything `default`."""
    names = {case.name: kubernetes_path(case, claim).canonical for case in CASES}
    assert "dilated_kernel=5,dilated_layers=2" in names["custom component"]
    assert {"dilation_base=3", "dilated_layers=3", "lr=0.005", "len=128"} <= set(names["config file"].split(","))
    source = set(names["test mode"].split(","))
    assert {"dm=16", "nl=1", "len=64"} <= source  # the model it tests names it
    assert {"dm=16", "lr=0.003"} <= set(names["checkpoint inheritance"].split(","))
    assert "dm=16" not in names["encoder init"]  # an encoder init is named by its own hparams


# --- the phase rules of a job of replicates ------------------------------------------------------------
OUTCOMES = [
    ("Succeeded", "Succeeded", "Succeeded"),
    ("Succeeded", "Failed", "Running"),  # failed at once: the other replicates run on
    ("Succeeded", "Running", "Running"),
    ("Failed", "Failed", "Succeeded"),
    ("Running", "Pending", "Pending"),
]


def _child(index: int, phase: str) -> dict[str, Any]:
    return child_job(index, index, complete=phase == "Succeeded", failed="BackoffLimitExceeded" if phase == "Failed" else None,
                     active=int(phase == "Running"), ready=int(phase == "Running"), start=phase != "Pending")


def operator_phase(phases: tuple[str, ...]) -> str:
    body = job_body("demo", replicates=len(phases))
    status, _ = operator_status.compute(body, "x", [_child(i, p) for i, p in enumerate(phases)],
                                        lambda _name: [], "2025-01-01T00:00:00Z")
    return status["phase"]


class _Alive:
    def poll(self) -> None:
        return None


def local_phase(phases: tuple[str, ...], tmp_path: Path) -> str:
    backend = LocalBackend.__new__(LocalBackend)
    backend.job_name, backend.canonical, backend.process = "demo", "x", _Alive()
    backend.placed = []
    for index, phase in enumerate(phases):
        out = tmp_path / f"version_{index}"
        (out / JOB_FILES).mkdir(parents=True)
        if phase in ("Succeeded", "Failed"):
            (out / JOB_FILES / "exit_code").write_text("0" if phase == "Succeeded" else "1")
        elif phase == "Running":
            (out / JOB_FILES / "output.log").write_text("training\n")
        backend.placed.append(Placed(index, index, out))
    return backend.status().phase


@pytest.mark.parametrize("phases", OUTCOMES, ids=["-".join(p) for p in OUTCOMES])
def test_both_paths_add_replicates_up_to_the_same_phase(phases: tuple[str, ...], tmp_path: Path) -> None:
    expected = contract.job_phase(list(phases), len(phases))
    assert operator_phase(phases) == local_phase(phases, tmp_path) == expected

