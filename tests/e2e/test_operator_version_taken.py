"""The volume has the last word on versions: a directory that holds another run's files (a cluster whose
state was lost, over kept volumes) is never written; the operator moves the job to the next version."""

from __future__ import annotations

from typing import Callable

from kubernetes import client

from e2e_support import RUN_TIMEOUT, Claims, kubectl_apply, small_job, wait_stj_phase
from seqmodel.hparam import registry


def test_a_version_directory_with_another_runs_files_is_skipped(
        cluster, api: client.ApiClient, core: client.CoreV1Api, op_namespace: str,
        claims: Callable[[str], Claims]) -> None:
    ns, mine = op_namespace, claims(op_namespace)
    manifest = small_job("lost-state", mine)
    canonical = registry().canonical_name(manifest["spec"]["hparams"])
    earlier = mine.output_dir / "runs" / canonical / "version_0"
    earlier.mkdir(parents=True)
    (earlier / ".seqmodel-owner").write_text("some-other-cluster/0\n")
    (earlier / "metrics.json").write_text('{"kept": true}\n')

    kubectl_apply(cluster.kubectl, ns, manifest, check=True)
    status = wait_stj_phase(api, ns, "lost-state", "Succeeded", RUN_TIMEOUT)["status"]

    assert status["replicates"][0]["version"] == 1 and status["replicates"][0]["job"] == "lost-state-0-v1"
    assert (earlier / "metrics.json").read_text() == '{"kept": true}\n'  # nothing lost
    assert (mine.run_dir(status) / "checkpoints" / "last.ckpt").is_file()
    events = core.list_namespaced_event(ns, field_selector="reason=VersionTaken").items
    assert [e.involved_object.name for e in events] == ["lost-state"]
    assert "version_0 holds another run's files; using version 1" in events[0].message
