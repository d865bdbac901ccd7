"""Import boundaries: the torch-free core imports without torch; seqmodel never imports kopf/kubernetes."""

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
    ["seqmodel", "seqmodel.hparam", "seqmodel.job", "seqmodel.job.pod", "seqmodel.dataset.hparams",
     "seqmodel.model.hparams", "seqmodel.task.hparams", "seqmodel.trainer_hparams", "seqmodel.config",
     "seqmodel.components", "seqmodel.workspace", "seqmodel.migrations", "seqmodel.job.layout", "seqmodel.init"],
)
def test_core_imports_without_torch(module: str) -> None:
    code = (f"import {module}\nfrom seqmodel.hparam import registry, registry_for\nregistry().json_schema()\n"
            "from seqmodel.config import resolve\n"
            "assert registry_for({'task': 'finetune'}) is resolve(['--config', 'task/finetune']).registry\n"
            "print('ok')")
    result = run_blocked({"torch", "numpy", "pytorch_lightning", "lightning"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocker_really_blocks_torch() -> None:
    result = run_blocked({"torch"}, "import torch")
    assert result.returncode != 0 and "blocked for this test: torch" in result.stderr


def test_library_never_imports_kubernetes_clients() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "seqmodel").rglob("*.py")
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("import kopf", "from kopf", "import kubernetes", "from kubernetes"))
    ]
    assert offenders == []
