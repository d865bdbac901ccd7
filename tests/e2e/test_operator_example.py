"""The user's path with the operator: `kubectl apply -f manifests/examples/job.yaml`, then inference.yaml.

One test, in the order a researcher works: train (version 0), the same hparams under another name
(version 1, deleted mid-run: the garbage collector takes its Job and pods, the version counter stays),
predictions from the first model (the next version of the same canonical name), and a job with the same
hparams after deletions (the next version again: versions are never reused). The example's hparams are
kept; only the claims are swapped for the test's own.
"""

from __future__ import annotations

import json
import time

import pytest

from e2e_support import (PhaseRecorder, child_jobs, get_stj, job_pods, kubectl_apply, load_example, pid_alive,
                         running_pid, wait_for, wait_stj_phase)
from seqmodel.hparam import registry

TRAIN_TIMEOUT = 900  # seconds; ~40 s on a quiet machine, minutes on 2 cores shared with other clusters
PHASE_ORDER = ["Pending", "Running", "Succeeded"]


def counter_maps(core, ns: str) -> list:
    """The operator's version counters: ConfigMaps labelled with a canonical-name digest."""
    return core.list_namespaced_config_map(ns, label_selector="seqmodel.dev/canonical-digest").items


def only(items: list, what: str):
    assert len(items) == 1, f"expected exactly one {what}, got {len(items)}: {items}"
    return items[0]


@pytest.mark.slow
def test_example_job_trains_versions_and_predicts(cluster, api, core, batch, op_namespace, claims):
    ns = op_namespace
    c = claims(ns)
    job = load_example("job.yaml", data=c.data, output=c.output)
    name = job["metadata"]["name"]
    canonical = registry().canonical_name(job["spec"]["hparams"])

    # --- train: version 0 -----------------------------------------------------------------------------
    with PhaseRecorder(api, ns, name) as phases:
        res = kubectl_apply(cluster.kubectl, ns, job)
        assert res.returncode == 0, res.stderr
        obj = wait_stj_phase(api, ns, name, "Succeeded", TRAIN_TIMEOUT)
    history = phases.phases()  # every status write, as a watch saw it
    ranks = [PHASE_ORDER.index(p) for p in history]
    assert ranks == sorted(set(ranks)) and history[-1] == "Succeeded", f"the phase went backwards: {history}"

    status = obj["status"]
    out_path = f"runs/{canonical}/version_0"
    assert status["canonicalName"] == canonical
    assert status["output"] == out_path
    rep = only(status["replicates"], "replicate")
    assert {k: rep[k] for k in ("index", "version", "outputPath", "job", "phase")} == {
        "index": 0, "version": 0, "outputPath": out_path, "job": f"{name}-0-v0", "phase": "Succeeded"}
    run_dir = c.output_dir / out_path
    for f in ("checkpoints/last.ckpt", "metrics.json", "hparams.yaml"):
        assert (run_dir / f).is_file(), f"{f} missing in {run_dir}: {sorted(p.name for p in run_dir.iterdir())}"

    # metrics come from the trainer's termination message, and say what the run wrote
    pod = only([p for p in job_pods(core, ns, f"{name}-0-v0") if p.status.phase == "Succeeded"], "succeeded pod")
    summary = json.loads(pod.status.container_statuses[0].state.terminated.message)
    assert summary["status"] == "succeeded", summary
    assert rep["metrics"] == summary["metrics"] == status["metrics"]
    assert "val/loss" in status["metrics"]
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["global_step"] == job["spec"]["hparams"]["max_steps"]
    assert status["metrics"] == pytest.approx(on_disk["metrics"])

    generation = obj["metadata"]["generation"]
    succeeded = next(cond for cond in status["conditions"] if cond["type"] == "Succeeded")
    assert (succeeded["status"], succeeded["observedGeneration"]) == ("True", generation)
    assert status["observedGeneration"] == generation
    assert not obj["metadata"].get("finalizers"), "deletion must never wait for the operator"

    # printer columns
    table = cluster.kubectl("get", "stj", name, "-n", ns).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "PHASE", "MODE", "REPLICAS", "OUTPUT"], table[0]
    assert table[1].split()[:5] == [name, "Succeeded", "train", "1", out_path], table[1]
    wide = cluster.kubectl("get", "stj", name, "-n", ns, "-o", "wide").stdout.splitlines()
    assert "CANONICAL" in wide[0] and canonical in wide[1], wide

    # an Event for the transition, from the operator
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    done = [e for e in events if e.involved_object.kind == "SeqTrainingJob" and e.reason == "Succeeded"]
    assert done, [(e.reason, e.message) for e in events]
    assert done[0].type == "Normal" and out_path in done[0].message
    assert "seqmodel-operator" in (done[0].reporting_component or done[0].source.component or "")

    # --- re-applying the same manifest changes nothing ---------------------------------------------------
    before = get_stj(api, ns, name)
    child = only(child_jobs(batch, ns, obj["metadata"]["uid"]), "child Job")
    res = kubectl_apply(cluster.kubectl, ns, job)
    assert res.returncode == 0 and "unchanged" in res.stdout, (res.stdout, res.stderr)
    time.sleep(3)  # room for an operator that would react
    again = get_stj(api, ns, name)
    assert again["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    same = only(child_jobs(batch, ns, obj["metadata"]["uid"]), "child Job")
    assert (same.metadata.uid, same.metadata.resource_version) == (child.metadata.uid, child.metadata.resource_version)

    # --- the same spec under another name: version 1; deleted mid-run ------------------------------------
    twin = {**job, "metadata": {"name": f"{name}-twin"}}
    assert kubectl_apply(cluster.kubectl, ns, twin).returncode == 0
    twin_obj = wait_for(lambda: (o := get_stj(api, ns, f"{name}-twin")) and (o.get("status") or {}).get("replicates")
                        and o, 60, "the twin's replicate status")
    twin_rep = twin_obj["status"]["replicates"][0]
    assert (twin_rep["version"], twin_rep["outputPath"], twin_rep["job"]) == (
        1, f"runs/{canonical}/version_1", f"{name}-twin-0-v1")
    pod_name = wait_for(lambda: [p.metadata.name for p in job_pods(core, ns, f"{name}-twin-0-v1")], 60,
                        "the twin's pod")[0]
    pid = running_pid(core, ns, pod_name, cluster.containerd, timeout=TRAIN_TIMEOUT)
    assert (c.output_dir / f"runs/{canonical}/version_1/.seqmodel-owner").read_text().strip() == \
        f"{twin_obj['metadata']['uid']}/0"

    res = cluster.kubectl("delete", "stj", f"{name}-twin", "-n", ns, check=False)
    assert res.returncode == 0, res.stderr
    wait_for(lambda: not child_jobs(batch, ns, twin_obj["metadata"]["uid"]), 120, "the twin's Job to be collected")
    wait_for(lambda: not job_pods(core, ns, f"{name}-twin-0-v1"), 120, "the twin's pod to be collected")
    wait_for(lambda: not pid_alive(pid), 60, "the twin's trainer process to stop")
    counter = only(counter_maps(core, ns), "version counter")
    assert counter.data["next"] == "2"

    # --- predictions from the first model: the next version of the same name ------------------------------
    inference = load_example("inference.yaml", data=c.data, output=c.output)
    assert inference["spec"]["checkpoint"] == {"fromJob": name}
    test_name = inference["metadata"]["name"]
    res = kubectl_apply(cluster.kubectl, ns, inference)
    assert res.returncode == 0, res.stderr
    status = wait_stj_phase(api, ns, test_name, "Succeeded", TRAIN_TIMEOUT)["status"]
    assert status["canonicalName"] == canonical
    rep = only(status["replicates"], "replicate")
    assert (rep["version"], rep["outputPath"]) == (2, f"runs/{canonical}/version_2")
    assert rep["predictions"] == f"runs/{canonical}/version_2/predictions.tsv"
    predictions = c.output_dir / rep["predictions"]
    assert predictions.is_file() and len(predictions.read_text().splitlines()) > 1

    # --- deleting the trained job takes its Job and pod, not the counter: the next job gets version 3 --------
    uid = obj["metadata"]["uid"]
    assert cluster.kubectl("delete", "stj", name, "-n", ns, check=False).returncode == 0
    wait_for(lambda: not child_jobs(batch, ns, uid), 120, "the Job to be collected")
    wait_for(lambda: not job_pods(core, ns, f"{name}-0-v0"), 120, "the pod to be collected")
    assert only(counter_maps(core, ns), "version counter").data["next"] == "3"
    later = {**job, "metadata": {"name": f"{name}-later"}, "spec": {**job["spec"], "suspend": True}}
    assert kubectl_apply(cluster.kubectl, ns, later).returncode == 0
    later_obj = wait_stj_phase(api, ns, f"{name}-later", "Suspended", 60)
    assert later_obj["status"]["replicates"][0]["version"] == 3
    assert (c.output_dir / f"runs/{canonical}/version_0/checkpoints/last.ckpt").is_file(), "outputs are records"
