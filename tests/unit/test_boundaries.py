"""Import boundaries: the torch-free core imports without torch; seqmodel never imports kopf, and imports
the Kubernetes client in one module only (seqmodel.job.kubeapi), lazily, for the job API's kubernetes
backend: importing seqmodel.job or running local jobs never loads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def run_blocked(blocked: set[str], code: str) -> subprocess.CompletedProcess[str]:
    script = BLOCKER.format(blocked=blocked) + code
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize(
    "module",
    ["seqmodel", "seqmodel.contract", "seqmodel.hparam", "seqmodel.job", "seqmodel.pod", "seqmodel.dataset.hparams",
     "seqmodel.model.hparams", "seqmodel.task.hparams", "seqmodel.training.hparams", "seqmodel.config.files",
     "seqmodel.components", "seqmodel.workspace.paths", "seqmodel.config.migrations", "seqmodel.outputs.versions", "seqmodel.init",
     "seqmodel.job.search", "seqmodel.job.api", "seqmodel.job.sweep", "seqmodel.job.kubeapi",
     "seqmodel.job.kube_backend", "seqmodel.job.local_backend", "seqmodel.job.defaults"],
)
def test_core_imports_without_torch(module: str) -> None:
    code = (f"import {module}\nfrom seqmodel.hparam import registry, registry_for\nregistry().json_schema()\n"
            "from seqmodel.config.resolve import resolve\n"
            "assert registry_for({'task': 'finetune'}) is resolve(['--config', 'task/finetune']).registry\n"
            "print('ok')")
    result = run_blocked({"torch", "numpy", "pytorch_lightning", "lightning"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocker_really_blocks_torch() -> None:
    result = run_blocked({"torch"}, "import torch")
    assert result.returncode != 0 and "blocked for this test: torch" in result.stderr


def _import_lines(path: Path, package: str) -> list[str]:
    return [line for line in path.read_text().splitlines()
            if line.lstrip().startswith((f"import {package}", f"from {package}"))]


def test_library_never_imports_kopf() -> None:
    assert [str(p.relative_to(ROOT)) for p in (ROOT / "seqmodel").rglob("*.py") if _import_lines(p, "kopf")] == []


def test_only_kubeapi_imports_the_kubernetes_client_and_only_inside_functions() -> None:
    importers = {str(p.relative_to(ROOT)): _import_lines(p, "kubernetes") for p in (ROOT / "seqmodel").rglob("*.py")}
    importers = {path: lines for path, lines in importers.items() if lines}
    assert list(importers) == ["seqmodel/job/kubeapi.py"]
    assert all(line.startswith(" ") for line in importers["seqmodel/job/kubeapi.py"])  # never at module level


def test_job_api_loads_no_kubernetes_client_until_a_kubernetes_job_talks_to_the_cluster() -> None:
    """Importing everything, building a kubernetes Job (checks only) and running the local backend's
    pieces work with the client blocked; the first API call says which extra to install."""
    code = (
        "import sys\n"
        "from seqmodel.job import Job, search, Sweep, KubeError\n"
        "import seqmodel.job.kubeapi, seqmodel.job.kube_backend, seqmodel.job.local_backend\n"
        "job = Job({'lr': 0.01}, backend='kubernetes', kubeconfig='/nonexistent')\n"
        "assert job.spec['hparams'] == {'lr': 0.01}\n"
        "assert 'kubernetes' not in sys.modules\n"
        "try:\n"
        "    job.submit()\n"
        "except KubeError as err:\n"
        "    print(err)\n"
    )
    result = run_blocked({"kubernetes", "kopf", "torch", "pytorch_lightning", "lightning"}, code)
    assert result.returncode == 0, result.stderr
    assert "pip install 'seqmodel[client]'" in result.stdout
