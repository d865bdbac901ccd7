"""render_job: the child Job's content, injection-proof values, and admin templates that must stay safe."""

from __future__ import annotations

import copy
import functools
import unicodedata
from typing import Any, Callable

import pytest

from operator_support import example, job_body, with_replicates
from seqmodel_operator import constants as C
from seqmodel_operator.plan import Plan, SpecError, make_plan
from seqmodel_operator.render import JOB_TEMPLATE, PACKAGE_TEMPLATES, RenderError, Replicate, render_job
from seqmodel_operator.settings import Settings

CONFIG = Settings()
REPLICATE = Replicate(1, 4)
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
STAGE_COMMAND = ["python", "-m", "seqmodel.pod", "stage"]
RUN_COMMAND = ["python", "-m", "seqmodel.pod", "run"]


def render(body: dict[str, Any], config: Settings = CONFIG, replicate: Replicate = REPLICATE,
           source: dict[str, Any] | None = None) -> dict[str, Any]:
    return render_job(make_plan(body, config, source), replicate, config)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def container(job: dict[str, Any], name: str) -> dict[str, Any]:
    spec = pod_spec(job)
    (found,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return found


def mounts(job: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in container(job, name)["volumeMounts"]}


def volumes(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(job)["volumes"]}


@pytest.fixture(scope="module")
def plan() -> Plan:
    return make_plan(example("job.yaml"), CONFIG)


@pytest.fixture(scope="module")
def job(plan: Plan) -> dict[str, Any]:
    return render_job(plan, REPLICATE, CONFIG)


# --- what the Job holds ----------------------------------------------------------------------------------
def test_identity_owner_and_determinism(plan: Plan, job: dict[str, Any]) -> None:
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "pretrain-small-1-v4" and job["metadata"]["namespace"] == "research"
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "seqmodel.dev/v1alpha1", "kind": "SeqTrainingJob", "name": "pretrain-small", "uid": "uid-1",
        "controller": True, "blockOwnerDeletion": True}]
    assert render_job(plan, REPLICATE, CONFIG) == job
    assert job["metadata"]["annotations"] == {C.ANNOTATION_CANONICAL: plan.canonical,
                                              C.ANNOTATION_OUTPUT: plan.output_path(4)}


def test_labels_on_the_job_and_its_pods(plan: Plan, job: dict[str, Any]) -> None:
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/name"] == "seqmodel"
        assert labels["app.kubernetes.io/instance"] == "pretrain-small"
        assert labels["app.kubernetes.io/managed-by"] == "seqmodel-operator"
        assert labels["app.kubernetes.io/component"] == "trainer"
        assert {labels[k] for k in ("app.kubernetes.io/version",)} and C.LABEL_KUEUE_QUEUE not in labels
        assert (labels[C.LABEL_PARENT], labels[C.LABEL_PARENT_UID]) == ("pretrain-small", "uid-1")
        assert (labels[C.LABEL_REPLICATE], labels[C.LABEL_VERSION]) == ("1", "4")
        assert labels[C.LABEL_CANONICAL] == plan.version_key
        assert all(isinstance(v, str) for v in labels.values())


def test_test_mode_is_labelled_inference() -> None:
    source = with_replicates(example("job.yaml"), "runs/a/version_0")
    job = render(example("inference.yaml"), source=source)
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "inference"


def test_commands_and_args(plan: Plan, job: dict[str, Any]) -> None:
    stage, trainer = container(job, "stage"), container(job, "trainer")
    assert (stage["command"], trainer["command"]) == (STAGE_COMMAND, RUN_COMMAND)
    assert trainer["args"] == plan.run_args(4)
    assert stage["args"] == ["--scratch", "/scratch", "--output", "/output", "--owner", "uid-1/1", "--data",
                             "/data-source", "--source", 'claim "seqmodel-data" subPath ""', "--type", "genome"]
    assert len(pod_spec(job)["initContainers"]) == 1 and len(pod_spec(job)["containers"]) == 1
    assert (stage["workingDir"], trainer["workingDir"]) == ("/scratch", "/scratch")


def test_gpus_are_limits_only_and_zero_means_none() -> None:
    body = example("job.yaml")
    trainer = container(render(body), "trainer")
    assert trainer["resources"] == {"limits": {"nvidia.com/gpu": "1", "cpu": "1500m", "memory": "4Gi"},
                                    "requests": {"cpu": "1500m", "memory": "4Gi"}}
    body["spec"]["resources"] = {"gpus": 4}
    resources = container(render(body, Settings(gpu_resource="amd.com/gpu")), "trainer")["resources"]
    assert resources == {"limits": {"amd.com/gpu": "4"}}
    body["spec"]["resources"] = {"gpus": 0, "memory": "1Gi"}
    resources = container(render(body), "trainer")["resources"]
    assert "nvidia.com/gpu" not in resources["limits"] and resources["limits"] == {"memory": "1Gi"}
    assert "resources" not in container(render(body), "stage")


def test_gpu_type_node_selector_and_tolerations() -> None:
    body = example("job.yaml")
    job = render(body)
    assert pod_spec(job)["nodeSelector"] == {}
    assert pod_spec(job)["tolerations"] == [dict(t) for t in CONFIG.tolerations]
    body["spec"]["resources"]["gpuType"] = "NVIDIA-A100-SXM4-80GB"
    config = Settings(gpu_type_label="example.com/gpu", node_selector={"pool": "train"},
                    tolerations=({"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},))
    spec = pod_spec(render(body, config))
    assert spec["nodeSelector"] == {"pool": "train", "example.com/gpu": "NVIDIA-A100-SXM4-80GB"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]


@pytest.mark.parametrize("scratch,config_class,expected_class", [
    (None, None, None),
    ({"size": "50Gi"}, None, None),
    ({"storageClassName": "local-ssd"}, None, "local-ssd"),
    (None, "nvme", "nvme"),
    ({"storageClassName": "local-ssd"}, "nvme", "local-ssd"),
    ({"type": "emptyDir"}, "nvme", None),
])
def test_scratch_volume(scratch: dict[str, Any] | None, config_class: str | None, expected_class: str | None) -> None:
    body = example("job.yaml")
    if scratch:
        body["spec"]["scratch"] = scratch
    volume = volumes(render(body, Settings(scratch_storage_class=config_class, scratch_size="7Gi")))["scratch"]
    size = (scratch or {}).get("size", "7Gi")
    if expected_class is None:
        assert volume == {"name": "scratch", "emptyDir": {"sizeLimit": size}}
    else:
        assert volume == {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteOnce"], "storageClassName": expected_class,
            "resources": {"requests": {"storage": size}}}}}}


def test_output_and_data_mounts(plan: Plan, job: dict[str, Any]) -> None:
    vols = volumes(job)
    assert vols["output"] == {"name": "output", "persistentVolumeClaim": {"claimName": "seqmodel-output"}}
    assert vols["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "seqmodel-data", "readOnly": True}}
    for name in ("stage", "trainer"):
        assert mounts(job, name)["output"] == {"name": "output", "mountPath": "/output",
                                               "subPath": f"runs/{plan.canonical}/version_4"}
        assert mounts(job, name)["scratch"]["mountPath"] == "/scratch"
        assert "readOnly" not in mounts(job, name)["output"]
    assert mounts(job, "stage")["data"] == {"name": "data", "mountPath": "/data-source", "readOnly": True}
    assert "data" not in mounts(job, "trainer") and "checkpoint" not in vols


def test_data_sub_path_is_mounted_on_the_stage_container_only() -> None:
    body = example("job.yaml")
    body["spec"]["data"] = {"claim": "d", "subPath": "genomes/hg38"}
    job = render(body)
    assert mounts(job, "stage")["data"] == {"name": "data", "mountPath": "/data-source", "readOnly": True,
                                            "subPath": "genomes/hg38"}
    assert "data" not in mounts(job, "trainer")
    assert "--type" not in container(job, "stage")["args"]  # no types: all of data/


def mount_at(job: dict[str, Any], name: str, path: str) -> dict[str, Any] | None:
    return next((m for m in container(job, name)["volumeMounts"] if m["mountPath"] == path), None)


def test_checkpoint_is_mounted_read_only_on_the_trainer_only() -> None:
    source = with_replicates(example("job.yaml"), "runs/m/version_2")
    job = render(example("inference.yaml"), source=source)
    # The checkpoint is on the job's own output claim: that claim's one volume serves both mounts (a kubelet
    # never finishes mounting two volumes of one claim in a pod).
    assert [v["name"] for v in pod_spec(job)["volumes"]] == ["scratch", "tmp", "output", "data"]
    assert volumes(job)["output"] == {"name": "output", "persistentVolumeClaim": {"claimName": "seqmodel-output"}}
    assert mount_at(job, "trainer", "/checkpoint") == {"name": "output", "mountPath": "/checkpoint",
                                                       "readOnly": True, "subPath": "runs/m/version_2/checkpoints"}
    assert "readOnly" not in mount_at(job, "trainer", "/output")
    assert mount_at(job, "stage", "/checkpoint") is None
    assert container(job, "trainer")["args"][-1] == "--load_checkpoint_path=/checkpoint/last.ckpt"


def test_a_checkpoint_on_another_claim_is_a_read_only_volume_of_its_own() -> None:
    source = with_replicates(example("job.yaml"), "runs/m/version_2")
    source["spec"]["output"]["claim"] = "older-output"
    job = render(example("inference.yaml"), source=source)
    assert volumes(job)["checkpoint"] == {"name": "checkpoint", "persistentVolumeClaim": {
        "claimName": "older-output", "readOnly": True}}
    assert mount_at(job, "trainer", "/checkpoint") == {"name": "checkpoint", "mountPath": "/checkpoint",
                                                       "readOnly": True, "subPath": "runs/m/version_2/checkpoints"}


def test_env_and_termination_message(job: dict[str, Any]) -> None:
    """Only variables the pod reads (none that nothing reads, as five once were); the run's identity is in
    its annotations."""
    for name in ("stage", "trainer"):
        c = container(job, name)
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env == {"SEQMODEL_TERMINATION_LOG": "/dev/termination-log", "HOME": "/tmp"}
        assert c["terminationMessagePath"] == "/dev/termination-log"
        assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_security_contexts() -> None:
    job = render(example("job.yaml"), Settings(run_as_user=4242))
    for name in ("stage", "trainer"):
        assert container(job, name)["securityContext"] == RESTRICTED
    spec = pod_spec(job)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (4242, 4242)
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert not any(k in spec for k in ("hostNetwork", "hostPID", "hostIPC", "serviceAccountName"))


def test_pod_failure_policy_fails_fast_on_user_errors(job: dict[str, Any]) -> None:
    rules = job["spec"]["podFailurePolicy"]["rules"]
    fail = {r["onExitCodes"]["containerName"]: r["onExitCodes"] for r in rules if r["action"] == "FailJob"}
    assert set(fail) == {"stage", "trainer"}
    for codes in fail.values():
        assert codes["operator"] == "In" and sorted(codes["values"]) == [2, 3]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules


def test_job_spec_fields_from_the_spec() -> None:
    body = example("job.yaml")
    job = render(body)
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["suspend"] is False
    assert "activeDeadlineSeconds" not in job["spec"] and "ttlSecondsAfterFinished" not in job["spec"]
    body["spec"].update(activeDeadlineSeconds=3600, ttlSecondsAfterFinished=60)
    del body["spec"]["backoffLimit"]
    spec = render(body)["spec"]
    assert (spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"], spec["backoffLimit"]) == (3600, 60, 3)


@pytest.mark.parametrize("extra,suspended,queue", [({}, False, None), ({"suspend": True}, True, None),
                                                   ({"queueName": "gpu-queue"}, True, "gpu-queue"),
                                                   ({"suspend": False, "queueName": "q"}, True, "q")])
def test_suspend_and_kueue(extra: dict[str, Any], suspended: bool, queue: str | None) -> None:
    body = example("job.yaml")
    body["spec"].update(extra)
    job = render(body)
    assert job["spec"]["suspend"] is suspended
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels.get(C.LABEL_KUEUE_QUEUE) == queue


# --- injection -------------------------------------------------------------------------------------------
PLACEHOLDER = "zqxjkplaceholder"
HOSTILE = [
    'x"\n  hostNetwork: true',
    "x\n- name: evil\n  image: evil",
    '"}], "hostNetwork": true, "x": [{"a": "',
    "{{ 7*7 }}",
    "{% raw %}",
    "{# comment",
    "$(rm -rf /)",
    "; rm -rf / #",
    "'",
    '"',
    "\\",
    "a\u2028b\u2029c\x85d",
    "x" * 5000,
    "]}: {",
    "&a [*a, *a]",
    "!!python/object:os.system",
    "é ñ 日本語 😀 🧬",
    "\t\r\x00\x1b[31m",
    "--seed=999",
    "<script>&amp;",
    "true",
    "0x10",
    "- a\n- b",
    "key: value",
]

# Every user-controlled string of the spec that reaches the template (checkpoint paths are split, see below).
FIELDS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "hparams.seq_file": lambda b, v: b["spec"]["hparams"].__setitem__("seq_file", v),
    "hparams.devices": lambda b, v: b["spec"]["hparams"].__setitem__("devices", v),
    "hparams.cache_dir": lambda b, v: b["spec"]["hparams"].__setitem__("cache_dir", v),
    "data.claim": lambda b, v: b["spec"]["data"].__setitem__("claim", v),
    "data.subPath": lambda b, v: b["spec"]["data"].__setitem__("subPath", v),
    "data.types": lambda b, v: b["spec"]["data"].__setitem__("types", ["genome", v]),
    "output.claim": lambda b, v: b["spec"]["output"].__setitem__("claim", v),
    "output.root": lambda b, v: b["spec"]["output"].__setitem__("root", v),
    "image": lambda b, v: b["spec"].__setitem__("image", v),
    "resources.gpuType": lambda b, v: b["spec"]["resources"].__setitem__("gpuType", v),
    "resources.memory": lambda b, v: b["spec"]["resources"].__setitem__("memory", v),
    "scratch": lambda b, v: b["spec"].__setitem__("scratch", {"storageClassName": v, "size": v}),
    "queueName": lambda b, v: b["spec"].__setitem__("queueName", v),
    "metadata.name": lambda b, v: b["metadata"].__setitem__("name", v),
}


def _substitute(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, dict):
        return {_substitute(k, old, new): _substitute(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, old, new) for v in obj]
    return obj


def _occurrences(obj: Any, text: str) -> int:
    if isinstance(obj, str):
        return obj.count(text)
    if isinstance(obj, dict):
        return sum(_occurrences(k, text) + _occurrences(v, text) for k, v in obj.items())
    if isinstance(obj, list):
        return sum(_occurrences(v, text) for v in obj)
    return 0


def _keys(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | set().union(*(_keys(v) for v in obj.values()))
    if isinstance(obj, list):
        return set().union(*(_keys(v) for v in obj)) if obj else set()
    return set()


def _body_with(value: str, fields: list[str]) -> dict[str, Any]:
    body = example("job.yaml")
    for field in fields:
        FIELDS[field](body, value)
    return body


@functools.lru_cache(maxsize=None)
def _benign(fields: tuple[str, ...]) -> dict[str, Any]:
    """The Job with the placeholder in `fields` (cached: rendering parses YAML in pure Python, ~50 ms)."""
    job = render_job(make_plan(_body_with(PLACEHOLDER, list(fields)), CONFIG), REPLICATE, CONFIG)
    assert _occurrences(job, PLACEHOLDER) > 0
    return job


def assert_only_verbatim(value: str, fields: list[str]) -> None:
    """The Job with `value` in `fields` is the Job with a placeholder there, the placeholder replaced by the
    value verbatim (nothing else moves: no new field, container or command; `{{ 7*7 }}` never becomes 49),
    except for the label that digests the output claim and root; or rendering refuses it."""
    benign = _benign(tuple(fields))
    try:
        plan = make_plan(_body_with(value, fields), CONFIG)
    except SpecError as err:  # a string hparam is refused before anything renders when it has control characters
        assert any(f.startswith("hparams.") for f in fields) and any(unicodedata.category(ch) == "Cc" for ch in value)
        assert "must not contain control characters" in str(err)
        rest = [f for f in fields if not f.startswith("hparams.")]
        if rest:  # the other fields still take it verbatim
            assert_only_verbatim(value, rest)
        return
    try:
        job = render_job(plan, REPLICATE, CONFIG)
    except RenderError:
        return
    expected = _substitute(copy.deepcopy(benign), PLACEHOLDER, value)
    for c in pod_spec(expected)["initContainers"] + pod_spec(expected)["containers"]:  # the kubelet reads $$ as $
        c["args"] = _substitute(pod_spec(benign)["initContainers" if c["name"] == "stage" else "containers"][0]["args"],
                                PLACEHOLDER, value.replace("$", "$$"))
    for meta in (expected["metadata"], expected["spec"]["template"]["metadata"]):
        meta["labels"][C.LABEL_CANONICAL] = plan.version_key
    assert job == expected
    assert "hostNetwork" not in _keys(job) and "hostPath" not in _keys(job)
    assert [c["command"] for c in pod_spec(job)["initContainers"] + pod_spec(job)["containers"]] == [
        STAGE_COMMAND, RUN_COMMAND]
    assert pod_spec(job)["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_in_every_field_stay_verbatim(value: str) -> None:
    assert_only_verbatim(value, list(FIELDS))


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", [HOSTILE[0], HOSTILE[3]], ids=["yaml", "jinja"])
def test_hostile_values_in_one_field_stay_verbatim(field: str, value: str) -> None:
    assert_only_verbatim(value, [field])


def test_hostile_seq_file_is_one_argument() -> None:
    value = 'x", hostNetwork: true, "y'
    job = render(_body_with(value, ["hparams.seq_file"]))
    assert [a for a in container(job, "trainer")["args"] if a.startswith("--seq_file")] == [f"--seq_file={value}"]
    assert "49" not in str(render(_body_with("{{ 7*7 }}", ["hparams.seq_file"]))["spec"]["template"]["spec"]["containers"][0]["args"])
    with pytest.raises(SpecError, match="spec.hparams: hparam 'seq_file' must not contain control characters"):
        render(_body_with('x"\n  hostNetwork: true', ["hparams.seq_file"]))


def test_every_dollar_is_doubled_against_the_kubelets_expansion() -> None:
    """`$(VAR)` in container args is expanded by the kubelet, `$$` read back as `$`: so every `$` is doubled
    (the value reaching the run as written, through a real kubelet, is test_operator_validation's)."""
    value = "$(HOME)/x $$(PATH) $5"
    arg = next(a for a in container(render(_body_with(value, ["hparams.seq_file"])), "trainer")["args"]
               if a.startswith("--seq_file"))
    assert arg == "--seq_file=$$(HOME)/x $$$$(PATH) $$5"


def test_characters_beyond_the_basic_plane_render() -> None:
    """tojson writes them as surrogate pairs; the Job must hold the characters themselves."""
    job = render(_body_with("🧬 genome 😀", ["hparams.seq_file"]))
    assert "--seq_file=🧬 genome 😀" in container(job, "trainer")["args"]


def test_hostile_checkpoint_path_stays_in_its_fields() -> None:
    value = 'm/x"\n  hostNetwork: true/{{ 7*7 }}.ckpt'
    job = render(job_body(mode="test", checkpoint={"path": value}))
    assert mount_at(job, "trainer", "/checkpoint")["subPath"] == 'm/x"\n  hostNetwork: true'
    assert container(job, "trainer")["args"][-1] == "--load_checkpoint_path=/checkpoint/{{ 7*7 }}.ckpt"
    assert "hostNetwork" not in _keys(job)


# --- admin templates -------------------------------------------------------------------------------------
PACKAGED = (PACKAGE_TEMPLATES / JOB_TEMPLATE).read_text()


def override(tmp_path: Path, edit: Callable[[str], str]) -> Settings:
    text = edit(PACKAGED)
    assert text != PACKAGED
    (tmp_path / JOB_TEMPLATE).write_text(text)
    return Settings(templates_dir=str(tmp_path))


UNSAFE_EDITS: dict[str, Callable[[str], str]] = {
    "drops the trainer securityContext": lambda t: t.replace("        securityContext: *restricted\n", ""),
    "weakens the securityContext": lambda t: t.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
    "drops the pod runAsNonRoot": lambda t: t.replace("        runAsNonRoot: true\n        runAsUser", "        runAsUser"),
    "changes the command": lambda t: t.replace('"seqmodel.pod", "run"]', '"seqmodel.pod", "run", "--x"]'),
    "changes the args": lambda t: t.replace("args: {{ run_args|tojson }}", "args: {{ (run_args + ['--lr=1'])|tojson }}"),
    "removes the ownerReference": lambda t: t.replace("ownerReferences: [{{ owner|tojson }}]", "ownerReferences: []"),
    "adds a hostPath volume": lambda t: t.replace(
        "volumes: {{ volumes|tojson }}", 'volumes: {{ (volumes + [{"name": "h", "hostPath": {"path": "/"}}])|tojson }}'),
    "sets hostNetwork": lambda t: t.replace("      restartPolicy: Never\n", "      restartPolicy: Never\n      hostNetwork: true\n"),
    "adds an unrestricted sidecar": lambda t: t.replace(
        "      containers:\n", "      containers:\n      - {name: side, image: busybox, command: [sh]}\n"),
    "drops the trainer": lambda t: t.replace("      - name: trainer\n", "      - name: other\n"),
    "renames the Job": lambda t: t.replace("  name: {{ name|tojson }}", '  name: "other"'),
    "changes a label": lambda t: t.replace("  labels: {{ labels|tojson }}\n  annotations", "  labels: {}\n  annotations", 1),
    "restarts in place": lambda t: t.replace("restartPolicy: Never", "restartPolicy: OnFailure"),
    "is not a Job": lambda t: t.replace("kind: Job", "kind: Pod"),
    "uses an undefined variable": lambda t: t + "# {{ no_such_variable }}\n",
    "reaches for Python internals": lambda t: t + "# {{ ''.__class__.__mro__ }}\n",
    "reaches for subclasses": lambda t: t + "# {{ ''.__class__.__mro__[1].__subclasses__() }}\n",
    "mutates the context": lambda t: t + "# {{ owner.update({'uid': 'x'}) }}\n",
    "is not YAML": lambda t: t + "]]]\n",
    "is not Jinja": lambda t: t + "{% if %}\n",
}


@pytest.mark.parametrize("what", UNSAFE_EDITS)
def test_unsafe_override_templates_are_refused(tmp_path: Path, plan: Plan, what: str) -> None:
    config = override(tmp_path, UNSAFE_EDITS[what])
    with pytest.raises(RenderError):
        render_job(plan, REPLICATE, config)


def test_an_override_may_add_an_annotation(tmp_path: Path, plan: Plan, job: dict[str, Any]) -> None:
    config = override(tmp_path, lambda t: t.replace(
        "  annotations: {{ annotations|tojson }}\n",
        "  annotations: {{ dict(annotations, **{'example.com/team': 'genomics'})|tojson }}\n", 1))
    custom = render_job(plan, REPLICATE, config)
    assert custom["metadata"]["annotations"]["example.com/team"] == "genomics"
    expected = copy.deepcopy(job)
    expected["metadata"]["annotations"]["example.com/team"] = "genomics"
    assert custom == expected


def test_templates_dir_without_the_file_falls_back_to_the_package(tmp_path: Path, plan: Plan,
                                                                  job: dict[str, Any]) -> None:
    (tmp_path / "other.yaml.j2").write_text("kind: Pod\n")
    assert render_job(plan, REPLICATE, Settings(templates_dir=str(tmp_path))) == job


def test_a_job_without_data_renders_a_stage_step_that_pod_accepts() -> None:
    from seqmodel import pod as pod_steps

    body = job_body()
    assert "data" not in body["spec"]
    args = container(render(body), "stage")["args"]
    pod_steps._parser().parse_known_args(["stage", *args])
