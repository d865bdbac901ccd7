"""examples/notebooks/quickstart.ipynb runs top to bottom on the local cluster (its own asserts check the
results), so the example cannot rot. The kernel is this venv's Python; the notebook finds the cluster, the
namespace and the claims through the job config file that SEQMODEL_JOB_CONFIG names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from e2e_support import REPO, RUN_TIMEOUT
from seqmodel.job import joblog
from seqmodel.job.defaults import CONFIG_ENV

NOTEBOOK = REPO / "examples" / "notebooks" / "quickstart.ipynb"


def venv_kernel(directory: Path) -> str:
    """A kernelspec that starts this interpreter (the one with seqmodel installed), whatever `python` on
    PATH is; found through JUPYTER_PATH."""
    spec = directory / "kernels" / "seqmodel-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "seqmodel test", "language": "python"}))
    return spec.name


def test_the_committed_notebook_holds_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_quickstart_notebook_runs_on_the_local_cluster(cluster, op_namespace, claims, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    c = claims(op_namespace)
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump({
        "kubeconfig": str(cluster.kubeconfig), "namespace": op_namespace,
        "data": {"claim": c.data, "types": ["genome"]}, "output": {"claim": c.output},
        "output_dir": str(c.output_dir),
        "resources": {"gpus": 1, "cpu": 1, "memory": "2Gi"}, "backoff_limit": 2, "data_root": str(REPO / "data")}))
    monkeypatch.setenv(CONFIG_ENV, str(config))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=venv_kernel(tmp_path / "jupyter"), timeout=RUN_TIMEOUT,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # a failing cell raises CellExecutionError with its traceback

    rows = joblog.read(c.output_dir / "runs" / "jobs.jsonl")
    assert [r["backend"] for r in rows] == ["kubernetes", "local"]
    assert rows[0]["canonical"] == rows[1]["canonical"] and rows[0]["version"] != rows[1]["version"]
    shown = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "best: lr-" in shown
