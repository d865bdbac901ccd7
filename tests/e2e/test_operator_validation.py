"""What the operator refuses, and how: at `kubectl apply` (the CRD schema, server-side), or as a job that
ends Failed saying why. Strings are only strings: values that look like YAML, shell or Jinja reach the
trainer as one verbatim argument. None of it harms the session's operator (the last test checks).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from e2e_support import (child_jobs, get_stj, job_pods, kubectl_apply, load_example, stj, wait_for,
                         wait_stj_phase)

# A valid spec that runs nothing: suspended, so the operator makes its child Job and no pod starts.
BASE: dict[str, Any] = {"hparams": {"max_steps": 1, "lr": 0.001}, "output": {"claim": "out-unused"},
                        "suspend": True}
LONG_NAME = "j" * 46  # one more than the operator allows (child Job names add a suffix)


def case(change: Callable[[dict], None], name: str = "bad") -> dict:
    manifest = stj(name, copy.deepcopy(BASE))
    change(manifest)
    return manifest


def hp(**values: Any) -> Callable[[dict], None]:
    return lambda m: m["spec"]["hparams"].update(values)


def spec(**values: Any) -> Callable[[dict], None]:
    return lambda m: m["spec"].update(values)


REFUSED = {  # id: (manifest, what stderr must name)
    "unknown-hparam": (case(hp(no_such_hparam=1)), "spec.hparams.no_such_hparam"),
    "hparam-wrong-type": (case(hp(lr="abc")), "spec.hparams.lr"),
    "hparam-below-minimum": (case(hp(batch_size=0)), "spec.hparams.batch_size"),
    "hparam-above-maximum": (case(hp(dropout=1.5)), "spec.hparams.dropout"),
    "hparam-not-in-enum": (case(hp(accelerator="tpu")), "spec.hparams.accelerator"),
    "hparam-bool-as-string": (case(hp(compile="yes")), "spec.hparams.compile"),
    "operator-owned-default_root_dir": (case(hp(default_root_dir="/tmp/x")), "spec.hparams.default_root_dir"),
    "operator-owned-resume": (case(hp(resume_from_checkpoint="last")), "spec.hparams.resume_from_checkpoint"),
    "negative-gpus": (case(spec(resources={"gpus": -1})), "spec.resources.gpus"),
    "bad-memory-quantity": (case(spec(resources={"memory": "lots"})), "spec.resources.memory"),
    "mode-not-train-or-test": (case(spec(mode="predict")), "spec.mode"),
    "test-mode-without-checkpoint": (case(spec(mode="test")), "spec.checkpoint"),
    "test-mode-encoder-checkpoint": (case(spec(mode="test", checkpoint={"fromJob": "a", "use": "encoder"})),
                                     "spec.checkpoint.use"),
    "checkpoint-fromJob-and-path": (case(spec(checkpoint={"fromJob": "a", "path": "runs/x/last.ckpt"})),
                                    "spec.checkpoint"),
    "checkpoint-path-dotdot": (case(spec(checkpoint={"path": "runs/../../etc/x.ckpt"})), "spec.checkpoint.path"),
    "data-subPath-dotdot": (case(spec(data={"claim": "d", "subPath": "a/../.."})), "spec.data.subPath"),
    "data-without-claim": (case(spec(data={"types": ["genome"]})), "spec.data.claim"),
    "absolute-output-root": (case(spec(output={"claim": "o", "root": "/etc"})), "spec.output.root"),
    "unknown-output-field": (case(spec(output={"claim": "o", "path": "x"})), "spec.output.path"),
    "zero-replicates": (case(spec(replicates=0)), "spec.replicates"),
    "name-longer-than-45": (case(lambda m: None, name=LONG_NAME), "metadata.name"),
    "unknown-spec-field": (case(spec(retries=3)), "spec.retries"),
    # Control characters: a NUL cannot even be a process argument; a newline could start YAML of its own.
    "string-hparam-nul-byte": (case(hp(seq_file="genome\x00.fa")), "spec.hparams.seq_file"),
    "string-hparam-newline-yaml": (case(hp(seq_file='x"\n  hostNetwork: true\n  hostPID: true')),
                                   "spec.hparams.seq_file"),
}


@pytest.mark.parametrize("manifest, field", REFUSED.values(), ids=REFUSED.keys())
def test_malformed_manifest_is_refused_at_apply_naming_the_field(cluster, api, op_namespace, manifest, field):
    res = kubectl_apply(cluster.kubectl, op_namespace, manifest)

    assert res.returncode != 0, f"accepted: {res.stdout}"
    assert field in res.stderr, res.stderr
    assert "no such key" not in res.stderr, f"a validation rule failed to evaluate: {res.stderr}"
    assert get_stj(api, op_namespace, manifest["metadata"]["name"]) is None


IMMUTABLE = {  # id: (change, what the refusal names)
    "hparams.lr": (hp(lr=0.5), "spec.hparams"),
    "replicates": (spec(replicates=2), "spec.replicates"),
    "output.claim": (spec(output={"claim": "another"}), "spec.output"),
    "mode": (spec(mode="test", checkpoint={"path": "runs/x/last.ckpt"}), "spec.mode"),
    "data": (spec(data={"claim": "d"}), "spec.data"),
}


@pytest.mark.parametrize("change, field", IMMUTABLE.values(), ids=IMMUTABLE.keys())
def test_changing_a_created_job_is_refused_naming_the_field(cluster, api, op_namespace, change, field):
    good = case(lambda m: None, name="fixed")
    assert kubectl_apply(cluster.kubectl, op_namespace, good).returncode == 0
    before = get_stj(api, op_namespace, "fixed")
    changed = copy.deepcopy(good)
    change(changed)

    res = kubectl_apply(cluster.kubectl, op_namespace, changed)

    assert res.returncode != 0, f"accepted: {res.stdout}"
    assert field in res.stderr and "cannot change" in res.stderr, res.stderr
    after = get_stj(api, op_namespace, "fixed")
    assert (after["spec"], after["metadata"]["generation"]) == (before["spec"], before["metadata"]["generation"])


def test_suspend_may_change_and_reaches_the_child_job(cluster, api, batch, op_namespace):
    good = case(lambda m: None, name="pausable")
    assert kubectl_apply(cluster.kubectl, op_namespace, good).returncode == 0
    uid = get_stj(api, op_namespace, "pausable")["metadata"]["uid"]
    child = wait_for(lambda: child_jobs(batch, op_namespace, uid), 60, "the child Job")[0]
    assert child.spec.suspend is True

    res = kubectl_apply(cluster.kubectl, op_namespace, case(spec(suspend=False), name="pausable"))

    assert res.returncode == 0, res.stderr
    wait_for(lambda: child_jobs(batch, op_namespace, uid)[0].spec.suspend is False, 60,
             "the child Job to be unsuspended")
    assert get_stj(api, op_namespace, "pausable")["metadata"]["generation"] == 2


INJECTIONS = {  # (YAML that needs a newline is refused at apply: REFUSED above)
    "yaml-flow": "x', hostNetwork: true, y: '",
    "yaml-quote": 'x", hostNetwork: true, hostPID: true, "y',
    "jinja": "{{ 7*7 }}{% raw %}{{ config }}",
    "shell": "$(id) `id` ; rm -rf / && echo pwned",
}


@pytest.mark.parametrize("value", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_string_hparam_is_one_verbatim_argument(cluster, api, batch, op_namespace, value):
    manifest = case(hp(seq_file=value), name="strings")
    res = kubectl_apply(cluster.kubectl, op_namespace, manifest)
    assert res.returncode == 0, res.stderr  # just a string, as far as the API is concerned
    uid = get_stj(api, op_namespace, "strings")["metadata"]["uid"]
    child = wait_for(lambda: child_jobs(batch, op_namespace, uid), 60, "the child Job")[0]
    job = batch.api_client.sanitize_for_serialization(child)  # read back from the API, as JSON

    pod = job["spec"]["template"]["spec"]
    (trainer,) = pod["containers"]
    # as written; every `$` doubled, which the kubelet's `$(VAR)` expansion reads back as one
    arg = f"--seq_file={value.replace('$', '$$')}"
    assert [a for a in trainer["args"] if a.startswith("--seq_file")] == [arg]
    assert trainer["command"] == ["python", "-m", "seqmodel.pod", "run"]
    assert [c["command"] for c in pod["initContainers"]] == [["python", "-m", "seqmodel.pod", "stage"]]
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key
    assert "49" not in trainer["args"][0]
    # the value appears nowhere else in the Job, not even in pieces
    markers = ("hostNetwork", "{{", "{%", "$(id)", "`id`", "pwned", "7*7")
    found = [s for s in strings(job) if any(m in s for m in markers)]
    assert found == [arg], found


def test_the_kubelet_hands_the_trainer_a_dollar_value_as_written(cluster, api, op_namespace, claims):
    """The doubled `$`s above, through node-0's kubelet: the trainer names the very path it was given."""
    c = claims(op_namespace)
    value = "$(HOME)/x $$(PATH) $5"
    manifest = load_example("job.yaml", data=c.data, output=c.output)
    manifest["metadata"]["name"] = "dollars"
    manifest["spec"]["hparams"]["seq_file"] = value
    assert kubectl_apply(cluster.kubectl, op_namespace, manifest).returncode == 0

    obj = wait_stj_phase(api, op_namespace, "dollars", "Failed", 180)

    assert f"/{value}" in obj["status"]["message"], obj["status"]["message"]


def strings(obj: Any) -> list[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in [k, *strings(v)]]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


def test_job_without_output_claim_and_no_default_fails_naming_the_field(cluster, api, batch, op_namespace):
    manifest = case(lambda m: m["spec"].pop("output"), name="nowhere")
    assert kubectl_apply(cluster.kubectl, op_namespace, manifest).returncode == 0

    obj = wait_stj_phase(api, op_namespace, "nowhere", "Failed", 120)

    status = obj["status"]
    cond = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert "spec.output.claim" in cond["message"] and "spec.output.claim" in status["message"]
    assert cond["observedGeneration"] == obj["metadata"]["generation"]
    assert not child_jobs(batch, op_namespace, obj["metadata"]["uid"])


def test_missing_data_type_fails_once_naming_the_path(cluster, api, core, batch, op_namespace, claims):
    c = claims(op_namespace)
    manifest = load_example("job.yaml", data=c.data, output=c.output)
    manifest["metadata"]["name"] = "nodata"
    manifest["spec"]["data"]["types"] = ["nosuch"]
    assert manifest["spec"]["backoffLimit"] > 0  # retries are allowed, and must not be spent on this
    assert kubectl_apply(cluster.kubectl, op_namespace, manifest).returncode == 0

    obj = wait_stj_phase(api, op_namespace, "nodata", "Failed", 180)

    status = obj["status"]
    assert "data/nosuch" in status["message"], status["message"]
    assert "data/nosuch" in status["replicates"][0]["message"]
    cond = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert cond["status"] == "False" and "data/nosuch" in cond["message"]
    (job,) = child_jobs(batch, op_namespace, obj["metadata"]["uid"])
    failed = next(c for c in job.status.conditions if c.type == "Failed" and c.status == "True")
    assert failed.reason == "PodFailurePolicy"
    assert job.status.failed == 1 and not job.status.active
    pods = job_pods(core, op_namespace, job.metadata.name)
    assert [p.status.phase for p in pods] == ["Failed"], "one attempt, no retry"
    stage = pods[0].status.init_container_statuses[0].state.terminated
    assert stage.exit_code == 2 and "data/nosuch" in stage.message


@pytest.mark.parametrize("path, words", [
    ("stj.spec.hparams.lr", ["<number>", "peak learning rate", "default: 0.002"]),
    ("stj.spec.hparams.positional_encoding", ["<string>", "positional encoding", "sinusoidal", "learned"]),
    ("stj.spec.checkpoint.fromJob", ["<string>", "SeqTrainingJob in this namespace"]),
])
def test_kubectl_explain_shows_each_fields_help(cluster, crds, path, words):
    """The schema comes from the hparam registry, help included: `kubectl explain` is the reference. (The API
    server publishes a new CRD's OpenAPI a moment after Established: hence the wait.)"""
    out = wait_for(lambda: (r := cluster.kubectl("explain", path, check=False)).returncode == 0 and r.stdout, 30,
                   f"kubectl explain {path}")
    missing = [w for w in words if w not in out]
    assert not missing, out


def test_the_session_operator_survived_all_of_the_above(core, operator):
    """Ready (the kubelet's probe of /healthz) and never restarted."""
    pod = operator.operator_pod(core, timeout=30)
    assert pod.status.container_statuses[0].restart_count == 0, \
        f"the operator restarted: kubectl logs --previous -n {operator.namespace} {pod.metadata.name}"
