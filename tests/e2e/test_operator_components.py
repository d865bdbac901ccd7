"""Issue 7 on the cluster: a job takes its hparams from a config file in a ConfigMap and a custom
encoder's code from a mounted claim; the encoder's own hparams go in spec.componentHparams and a bad one
fails the job with a message naming it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml
from kubernetes import client

from e2e_support import REPO, RUN_TIMEOUT, Claims, kubectl_apply, pvc, small_job, wait_stj_phase

ENCODERS = REPO / "examples" / "custom_encoder" / "my_encoders"
CONFIG = {  # the custom encoder on top of a preset, small enough for a CPU
    "defaults": ["model/small"],
    "encoder": "my_encoders.conv:DilatedConvEncoder",
    "dilated_layers": 2,
    "d_model": 32,
    "seq_len": 100,
    "batch_size": 8,
    "max_steps": 20,
    "val_check_interval": 10,
    "limit_val_batches": 2,
    "accelerator": "cpu",
}


@pytest.fixture
def code_claim(cluster, core: client.CoreV1Api, op_namespace: str) -> Iterator[str]:
    """A claim holding `src/my_encoders` (the example encoder), as a team's code volume would."""
    name = f"code-{op_namespace}"
    shutil.copytree(ENCODERS, cluster.layout.volumes / name / "src" / "my_encoders")
    core.create_namespaced_persistent_volume_claim(op_namespace, pvc(name))
    yield name
    shutil.rmtree(cluster.layout.volumes / name, ignore_errors=True)


def config_map(core: client.CoreV1Api, ns: str) -> str:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "dilated"},
                                           "data": {"config.yaml": yaml.safe_dump(CONFIG)}})
    return "dilated"


def component_job(name: str, claims: Claims, code: str, config: str, **component_hparams: object) -> dict:
    manifest = small_job(name, claims, configFrom={"name": config}, code={"claim": code, "subPath": "src"},
                         componentHparams=component_hparams)
    manifest["spec"]["hparams"] = {"lr": 0.002, "warmup_steps": 5, "log_every_n_steps": 5}
    return manifest


def test_a_custom_encoder_from_a_volume_with_a_config_from_a_configmap_trains(
        cluster, api: client.ApiClient, core: client.CoreV1Api, op_namespace: str,
        claims: Callable[[str], Claims], code_claim: str) -> None:
    ns, mine = op_namespace, claims(op_namespace)
    kubectl_apply(cluster.kubectl, ns, component_job("dilated", mine, code_claim, config_map(core, ns),
                                                      dilation_base=3), check=True)
    status = wait_stj_phase(api, ns, "dilated", "Succeeded", RUN_TIMEOUT)["status"]
    # the custom hparams are in the directory name, the config's built-ins too, spec.hparams over the config
    assert "dilated_layers=2" in status["canonicalName"] and "dilation_base=3" in status["canonicalName"]
    assert "enc=my_encoders.conv%3ADilatedConvEncoder" in status["canonicalName"]
    run_dir = mine.run_dir(status)
    record = yaml.safe_load((run_dir / "hparams.yaml").read_text())
    assert record["name"] == status["canonicalName"]  # the pod names its run as the operator named its directory
    saved = record["hparams"]
    assert saved["encoder"] == "my_encoders.conv:DilatedConvEncoder"
    assert (saved["dilated_layers"], saved["dilation_base"], saved["d_model"], saved["lr"]) == (2, 3, 32, 0.002)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert status["metrics"]["train/loss"] > 0


def test_a_bad_component_hparam_fails_the_job_naming_it(
        cluster, api: client.ApiClient, core: client.CoreV1Api, op_namespace: str,
        claims: Callable[[str], Claims], code_claim: str) -> None:
    ns, mine = op_namespace, claims(op_namespace)
    kubectl_apply(cluster.kubectl, ns, component_job("bad-layers", mine, code_claim, config_map(core, ns),
                                                      dilated_layers=0), check=True)
    status = wait_stj_phase(api, ns, "bad-layers", "Failed", RUN_TIMEOUT)["status"]
    assert "dilated_layers" in status["message"] and ">= 1" in status["message"], status["message"]
    assert status["replicates"][0]["restarts"] == 0  # exit 2: the podFailurePolicy fails it without retries
    run_dir: Path = mine.run_dir(status)
    assert not (run_dir / "checkpoints").exists()


def test_a_missing_configmap_fails_the_job_naming_it(cluster, api: client.ApiClient, op_namespace: str,
                                                     claims: Callable[[str], Claims], code_claim: str) -> None:
    ns, mine = op_namespace, claims(op_namespace)
    kubectl_apply(cluster.kubectl, ns, component_job("no-config", mine, code_claim, "nosuch"), check=True)
    status = wait_stj_phase(api, ns, "no-config", "Failed", 60)["status"]
    assert "spec.configFrom.name: ConfigMap nosuch not found" in status["message"]
    assert not status.get("replicates")  # no child Job was made
