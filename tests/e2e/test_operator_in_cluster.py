"""The operator as users run it: `helm install` of the chart with the operator image, its pod on node-0
under the chart's ServiceAccount and RBAC, real kubelet probes, and training pods from the trainer image.

Each test installs its own release, watching only the test's namespace (the session's host operator
watches `e2e-op-*` only), and uninstalls it after.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from e2e_support import (RUN_TIMEOUT, SMALL, Release, chart_image, child_jobs, example_job_succeeds, job_pods,
                         kubectl_apply, small_job, wait_for, wait_stj_phase)
from localcluster.nodeconfig import NODE_NAME
from security_policy import restricted_violations


def in_cluster(images: dict[str, str], namespace: str) -> dict[str, Any]:
    """Values that run the operator and its training pods on node-0 from the images built here."""
    return {
        "replicas": 1, "image": chart_image(images["operator"]), "trainerImage": chart_image(images["trainer"]),
        "watchNamespaces": [namespace],
    }


@pytest.fixture
def release(cluster, core, namespace, images, install) -> Release:
    """A release of the chart whose operator runs in the cluster, watching the test's namespace."""
    return install(namespace, **in_cluster(images, namespace))


@pytest.mark.slow
def test_the_example_job_trains_on_node_0_with_the_operator_in_the_cluster(cluster, api, batch, core, namespace,
                                                                             claims, images, release) -> None:
    pod = release.operator_pod(core)
    assert pod.spec.node_name == NODE_NAME
    assert pod.spec.containers[0].image == images["operator"]
    assert pod.spec.service_account_name == release.fullname
    status = pod.status.container_statuses[0]
    assert status.ready and status.image_id and status.container_id.startswith("containerd://")

    c = claims(namespace)
    obj, child = example_job_succeeds(cluster.kubectl, api, batch, namespace, c)
    name = obj["metadata"]["name"]
    (trainer,) = job_pods(core, namespace, child.metadata.name)
    assert trainer.spec.node_name == NODE_NAME
    spec = api.sanitize_for_serialization(trainer)["spec"]
    assert list(restricted_violations(spec)) == []
    assert {c.image for c in [*trainer.spec.init_containers, *trainer.spec.containers]} == {images["trainer"]}
    log = cluster.kubectl("logs", "-n", namespace, trainer.metadata.name, "-c", "trainer").stdout
    assert "step 300/300 epoch" in log and "validation at step 300" in log, log[-2000:]  # its progress lines
    runs = list((c.output_dir / "runs").glob("*/version_0/hparams.yaml"))
    assert len(runs) == 1, sorted(str(p) for p in c.output_dir.rglob("*"))[:20]
    # Written by uid 1000 in the container, through the claim's hostPath volume.
    assert runs[0].stat().st_uid == 1000
    # The operator's own log, through the kubelet: kopf's JSON lines.
    op_log = cluster.kubectl("logs", "-n", namespace, pod.metadata.name).stdout.splitlines()
    assert op_log and all(json.loads(line) for line in op_log[-5:])

    # Uninstall takes the operator away, and keeps the CRDs, the job and its claims.
    release.helm("uninstall", release.name, "--wait")
    assert release.get("deployment") is None and release.get("serviceaccount") is None
    mine = f"app.kubernetes.io/instance={release.name}"
    wait_for(lambda: not core.list_namespaced_pod(namespace, label_selector=mine).items, 120, "the operator pod gone")
    assert cluster.kubectl("get", "crd", "seqtrainingjobs.seqmodel.dev", check=False).returncode == 0
    assert cluster.kubectl("get", "stj", name, "-n", namespace, check=False).returncode == 0
    assert {p.metadata.name for p in core.list_namespaced_persistent_volume_claim(namespace).items} == {c.data, c.output}


@pytest.mark.slow
def test_a_killed_operator_pod_is_replaced_and_a_job_in_flight_finishes_once(cluster, api, batch, core, namespace,
                                                                             claims, release) -> None:
    first = release.operator_pod(core)
    c = claims(namespace)
    job = small_job("inflight", c, hparams={**SMALL, "max_steps": 300})
    assert kubectl_apply(cluster.kubectl, namespace, job).returncode == 0
    obj = wait_stj_phase(api, namespace, "inflight", "Running", RUN_TIMEOUT)
    (child,) = child_jobs(batch, namespace, obj["metadata"]["uid"])

    core.delete_namespaced_pod(first.metadata.name, namespace, grace_period_seconds=0)
    second = release.operator_pod(core)
    assert second.metadata.uid != first.metadata.uid and second.spec.node_name == NODE_NAME

    done = wait_stj_phase(api, namespace, "inflight", "Succeeded", RUN_TIMEOUT)
    assert [j.metadata.uid for j in child_jobs(batch, namespace, obj["metadata"]["uid"])] == [child.metadata.uid]
    assert len(job_pods(core, namespace, child.metadata.name)) == 1
    assert done["status"]["replicates"][0]["restarts"] == 0
