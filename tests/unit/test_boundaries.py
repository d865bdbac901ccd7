"""Import boundaries: the torch-free core imports without torch; seqmodel never imports kopf, and imports
the Kubernetes client in one module only (seqmodel.job.kubeapi), lazily, for the job API's kubernetes
backend: importing seqmodel.job or running local jobs never loads it."""

from __future__ import annotations

import ast
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
    ["seqmodel", "seqmodel.errors", "seqmodel.hparam", "seqmodel.components", "seqmodel.contract",
     "seqmodel.contract.space", "seqmodel.config.files", "seqmodel.config.resolve", "seqmodel.workspace.paths",
     "seqmodel.outputs.run_dir", "seqmodel.outputs.atomic", "seqmodel.outputs.migrations", "seqmodel.outputs.versions",
     "seqmodel.dataset.hparams", "seqmodel.model.hparams", "seqmodel.task.hparams", "seqmodel.training.hparams",
     "seqmodel.pod", "seqmodel.layout", "seqmodel.init", "seqmodel.job", "seqmodel.job.search", "seqmodel.job.api",
     "seqmodel.job.sweep", "seqmodel.job.spec", "seqmodel.job.kubeapi", "seqmodel.job.kube_backend",
     "seqmodel.job.local_backend", "seqmodel.job.defaults"],
)
def test_core_imports_without_torch(module: str) -> None:
    code = (f"import {module}\nfrom seqmodel.hparam import registry\nfrom seqmodel.components import registry_for\nregistry().json_schema()\n"
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


# --- the one-direction flow (docs/architecture.md) --------------------------------------------------------
# Each part of seqmodel and what it may import from the others: lower layers never import higher ones, so
# the flow reads one way, manifest or notebook -> contract -> resolution -> training -> outputs.
FOUNDATION = {"errors", "hparam", "components", "contract"}
MAY_IMPORT = {
    "errors": set(),
    "hparam": {"errors"},
    "components": {"errors", "hparam"},
    "contract": {"errors", "hparam"},
    "workspace": set(),
    "outputs": {"errors", "contract"},
    "config": FOUNDATION | {"workspace", "outputs"},
    "model": FOUNDATION,
    "dataset": FOUNDATION | {"workspace", "outputs"},
    "task": FOUNDATION | {"model", "outputs"},
    "training": FOUNDATION | {"config", "dataset", "model", "task", "outputs", "workspace"},
    "run": FOUNDATION | {"config", "training", "outputs", "workspace"},
    "pod": FOUNDATION | {"run", "outputs"},
    "layout": FOUNDATION | {"config", "outputs", "workspace"},
    "init": FOUNDATION | {"dataset", "workspace"},
    "job": FOUNDATION | {"outputs"},  # the notebook client: never the training code
}
# What the operator may import from seqmodel: the registry, the contract, config files (spec.configFrom).
OPERATOR_MAY_IMPORT = {"seqmodel", "seqmodel.errors", "seqmodel.hparam", "seqmodel.contract",
                       "seqmodel.contract.conditions", "seqmodel.contract.space", "seqmodel.contract.sweep_plan",
                       "seqmodel.contract.sweep_status", "seqmodel.config.files"}


def _imported(path: Path) -> set[str]:
    """Every seqmodel module `path` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "seqmodel"}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "seqmodel"


def test_every_part_of_seqmodel_imports_only_what_is_below_it() -> None:
    parts = {p.relative_to(ROOT / "seqmodel").with_suffix("").parts[0] for p in (ROOT / "seqmodel").rglob("*.py")}
    assert parts - {"__init__"} == set(MAY_IMPORT), "a new part of seqmodel needs its place in MAY_IMPORT"
    wrong = []
    for path in (ROOT / "seqmodel").rglob("*.py"):
        rel = path.relative_to(ROOT / "seqmodel").with_suffix("").parts
        if rel[0] == "__init__" or "template" in rel:
            continue
        for module in _imported(path):
            other = _part(module)
            if other not in (rel[0], "seqmodel") and other not in MAY_IMPORT[rel[0]]:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_the_operator_imports_only_the_registry_and_the_contract_from_seqmodel() -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {module}"
             for path in (ROOT / "operator" / "seqmodel_operator").rglob("*.py")
             for module in _imported(path) if module not in OPERATOR_MAY_IMPORT]
    assert wrong == []
