"""A pod shaped as the operator renders them, on node-0 from the trainer image: data staged from a claim by
an init container into an ephemeral scratch volume (a claim of its own), `python -m seqmodel.run` from
there under a restricted securityContext that runc enforces, and the run's JSON summary written to the
terminationMessagePath that an env var names (the root filesystem is read-only).

A bad hparam makes seqmodel.run exit 2, which the Job's podFailurePolicy turns into a failed Job at once.
"""

from __future__ import annotations

import json
import shutil

from e2e_support import job, job_condition, job_pods, pvc, wait_for
from localcluster.nodeconfig import NODE_NAME

RESTRICTED = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
MESSAGE_PATH = "/run/seqmodel/termination-log"  # not the default, as on a read-only root filesystem


def training_pod(image: str, data_claim: str, out_claim: str) -> dict:
    scratch = {"name": "scratch", "mountPath": "/scratch"}
    stage = {"name": "stage-data", "image": image, "imagePullPolicy": "Never", "securityContext": RESTRICTED,
             "command": ["sh", "-c", "mkdir -p /scratch/data && cp -R /data/genome /scratch/data/"],
             "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}, scratch]}
    trainer = {
        "name": "trainer", "image": image, "imagePullPolicy": "Never",
        "securityContext": RESTRICTED, "workingDir": "/scratch",
        "command": ["python", "-m", "seqmodel.run"],
        "args": ["--no_such_hparam=1", "--default_root_dir=/output"],
        "terminationMessagePath": MESSAGE_PATH, "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": [{"name": "SEQMODEL_TERMINATION_LOG", "value": MESSAGE_PATH},
                {"name": "HOME", "value": "/scratch/home"},
                {"name": "RUN", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}}],
        "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "1", "memory": "2Gi"}},
        "volumeMounts": [scratch, {"name": "output", "mountPath": "/output", "subPathExpr": "runs/$(RUN)/version_0"}],
    }
    claim_template = {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False, "enableServiceLinks": False,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "initContainers": [stage], "containers": [trainer],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": data_claim, "readOnly": True}},
                    {"name": "output", "persistentVolumeClaim": {"claimName": out_claim}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": claim_template}}],
    }


def test_operator_training_pod_stages_data_runs_seqmodel_and_reports_its_summary(cluster, core, batch, namespace,
                                                                                 images):
    data_claim, out_claim = f"data-{namespace}", f"out-{namespace}"  # claim directories are cluster-wide
    genome = cluster.layout.volumes / data_claim / "genome"
    genome.mkdir(parents=True)
    (genome / "train.bed").write_text("chr1\t0\t1000\n")
    for claim in (data_claim, out_claim):
        core.create_namespaced_persistent_volume_claim(namespace, pvc(claim))
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                              "values": [2]}}]}
    body = job("train", training_pod(images["trainer"], data_claim, out_claim), backoff_limit=3,
               podFailurePolicy=policy)
    try:
        batch.create_namespaced_job(namespace, body)

        assert wait_for(lambda: job_condition(batch, namespace, "train"), 180, "the Job to finish") == "Failed"
        status = batch.read_namespaced_job_status("train", namespace).status
        assert next(c.reason for c in status.conditions if c.type == "Failed") == "PodFailurePolicy"
        assert status.failed == 1
        pod = job_pods(core, namespace, "train")[0]
        assert pod.spec.node_name == NODE_NAME
        assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0
        term = pod.status.container_statuses[0].state.terminated
        assert (term.exit_code, term.reason) == (2, "Error")
        summary = json.loads(term.message)
        assert summary["status"] == "failed" and "no_such_hparam" in summary["error"]
        scratch = cluster.layout.volumes / f"{pod.metadata.name}-scratch"  # its claim, provisioned like any
        assert (scratch / "data" / "genome" / "train.bed").read_text() == "chr1\t0\t1000\n"
        assert (cluster.layout.volumes / out_claim / "runs" / "train" / "version_0").is_dir()
    finally:
        ephemeral = [f"{p.metadata.name}-scratch" for p in job_pods(core, namespace, "train")]  # provisioned too
        for claim in (data_claim, out_claim, *ephemeral):
            shutil.rmtree(cluster.layout.volumes / claim, ignore_errors=True)
