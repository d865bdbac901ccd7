"""Child Jobs from Jinja templates, rendered in a sandbox and checked before they are sent.

Templates are data, not string glue: the context below holds plain values and ready-made structures
(volumes, mounts, args), and the packaged template writes each one with `tojson`. Cluster admins
override a template by mounting a directory with a file of the same name (Settings.templates_dir); an
overriding template gets the same variables and its output passes the same checks, so a template can
add things (annotations, a sidecar) but cannot drop the security context or change what runs.

Variables of `job.yaml.j2`:
  name, namespace            the child Job's (deterministic: <job>-<replicate>-v<version>)
  labels, annotations        app.kubernetes.io/* and seqmodel.dev/* (parent, replicate, version, output)
  owner                      the ownerReference to the SeqTrainingJob (deletion cascades)
  image, image_pull_policy   the trainer image
  stage_args, run_args       arguments of `python -m seqmodel.pod stage|run` (`$` doubled, see literal)
  env                        the termination-log variable and HOME, as a list of {name, value}
  resources                  {limits, requests}: GPUs as config.gpu_resource, cpu, memory
  node_selector, tolerations GPU type and the configured placement
  volumes, stage_mounts, run_mounts   scratch, tmp, output (subPath = the version), data, checkpoint,
                             config (spec.configFrom), code (spec.code, on PYTHONPATH)
  backoff_limit, active_deadline_seconds, ttl_seconds_after_finished, suspend   from spec
  fatal_exit_codes           exit codes no retry can fix (the podFailurePolicy fails the Job at once)
  run_as_user, termination_log
"""

from __future__ import annotations

import functools
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from seqmodel import VERSION
from seqmodel.contract import TERMINATION_LOG_ENV
from seqmodel_operator import constants as C
from seqmodel_operator.plan import (CHECKPOINT_MOUNT, CODE_MOUNT, CONFIG_MOUNT, DATA_MOUNT, OUTPUT_MOUNT,
                                    SCRATCH_MOUNT, TERMINATION_LOG, TMP_MOUNT, Plan)
from seqmodel_operator.settings import Settings

PACKAGE_TEMPLATES = Path(__file__).parent / "templates"
JOB_TEMPLATE = "job.yaml.j2"
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


class RenderError(ValueError):
    """A template that fails to render or renders something unsafe: the job ends Failed with it."""


@dataclass(frozen=True)
class Replicate:
    index: int
    version: int


def environment(config: Settings) -> ImmutableSandboxedEnvironment:
    """The template environment of `config`: one per templates directory, so that each template is compiled
    once (Jinja still reloads a template whose file changed)."""
    return _environment(config.templates_dir)


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: str | None) -> ImmutableSandboxedEnvironment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES))]
    if templates_dir:
        loaders.insert(0, jinja2.FileSystemLoader(templates_dir))
    env = ImmutableSandboxedEnvironment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                                        autoescape=False, keep_trailing_newline=True)
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": True}
    return env


def _load_yaml(text: str) -> Any:
    """PyYAML's safe loader; through libyaml when it can (10x faster: rendering is most of a job's CPU time
    in a burst). libyaml refuses the surrogate escapes that `tojson` writes for characters beyond U+FFFF,
    so on any error the pure-Python loader decides, and its result or error is the one that counts."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def labels(plan: Plan, replicate: Replicate) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "seqmodel",
        "app.kubernetes.io/component": "trainer" if plan.mode == "train" else "inference",
        "app.kubernetes.io/instance": plan.name,
        "app.kubernetes.io/managed-by": "seqmodel-operator",
        "app.kubernetes.io/version": VERSION,
        C.LABEL_PARENT: plan.name,
        C.LABEL_PARENT_UID: plan.uid,
        C.LABEL_REPLICATE: str(replicate.index),
        C.LABEL_VERSION: str(replicate.version),
        C.LABEL_CANONICAL: plan.version_key,
        **({C.LABEL_KUEUE_QUEUE: plan.spec["queueName"]} if plan.spec.get("queueName") else {}),
    }


def owner_reference(plan: Plan) -> dict[str, Any]:
    return {"apiVersion": C.API_VERSION, "kind": C.JOB_KIND, "name": plan.name, "uid": plan.uid,
            "controller": True, "blockOwnerDeletion": True}


def resources(plan: Plan, config: Settings) -> dict[str, Any]:
    """GPUs as limits only (device plugins' rule); cpu and memory requested and limited alike."""
    res = plan.spec.get("resources") or {}
    limits: dict[str, Any] = {}
    gpus = int(res.get("gpus", 1))
    if gpus:
        limits[config.gpu_resource] = str(gpus)
    for key in ("cpu", "memory"):
        if key in res:
            limits[key] = str(res[key])
    requests = {k: v for k, v in limits.items() if k in ("cpu", "memory")}
    return {"limits": limits, **({"requests": requests} if requests else {})}


def placement(plan: Plan, config: Settings) -> tuple[dict[str, str], list[dict[str, Any]]]:
    selector = dict(config.node_selector)
    gpu_type = (plan.spec.get("resources") or {}).get("gpuType")
    if gpu_type:
        selector[config.gpu_type_label] = gpu_type
    return selector, [dict(t) for t in config.tolerations]


def scratch_volume(plan: Plan, config: Settings) -> dict[str, Any]:
    """Local SSD as a generic ephemeral volume of a storage class, or an emptyDir when there is none."""
    scratch = plan.spec.get("scratch") or {}
    size = str(scratch.get("size", config.scratch_size))
    storage_class = scratch.get("storageClassName") or config.scratch_storage_class
    if scratch.get("type") == "emptyDir" or not storage_class:
        return {"name": "scratch", "emptyDir": {"sizeLimit": size}}
    claim = {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
             "resources": {"requests": {"storage": size}}}
    return {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": claim}}}


def volumes_and_mounts(plan: Plan, replicate: Replicate, config: Settings) -> dict[str, Any]:
    volumes = [scratch_volume(plan, config), {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    by_claim: dict[str, dict[str, Any]] = {}

    def claim_volume(name: str, claim: str, read_only: bool) -> str:
        """The pod's one volume of `claim`, made on first use; mounts choose their own readOnly.

        One volume per claim: a kubelet never finishes mounting a pod with two volumes of the same claim
        (a checkpoint read from the output claim, say), and the pod stays in Init forever.
        """
        volume = by_claim.get(claim)
        if volume is None:
            volume = {"name": name, "persistentVolumeClaim": {"claimName": claim}}
            if read_only:
                volume["persistentVolumeClaim"]["readOnly"] = True
            by_claim[claim] = volume
            volumes.append(volume)
        elif not read_only:
            volume["persistentVolumeClaim"].pop("readOnly", None)
        return volume["name"]

    output = claim_volume("output", plan.output_claim, read_only=False)
    common = [{"name": "scratch", "mountPath": SCRATCH_MOUNT}, {"name": "tmp", "mountPath": TMP_MOUNT},
              {"name": output, "mountPath": OUTPUT_MOUNT, "subPath": plan.output_path(replicate.version)}]
    stage, run = list(common), list(common)
    if plan.data:
        mount = {"name": claim_volume("data", plan.data["claim"], read_only=True), "mountPath": DATA_MOUNT,
                 "readOnly": True}
        if plan.data.get("subPath"):
            mount["subPath"] = plan.data["subPath"]
        stage.append(mount)
    if plan.checkpoint:
        run.append({"name": claim_volume("checkpoint", plan.checkpoint.claim, read_only=True),
                    "mountPath": CHECKPOINT_MOUNT, "readOnly": True, "subPath": plan.checkpoint_dir(replicate.index)})
    if plan.config_key:
        volumes.append({"name": "config", "configMap": {"name": plan.spec["configFrom"]["name"]}})
        run.append({"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True})
    code = plan.spec.get("code")
    if code:
        if "claim" in code:
            run.append({"name": claim_volume("code", code["claim"], read_only=True), "mountPath": CODE_MOUNT,
                        "readOnly": True, **({"subPath": code["subPath"]} if code.get("subPath") else {})})
        else:  # a ConfigMap's keys are the files of one package directory
            volumes.append({"name": "code", "configMap": {"name": code["configMap"]}})
            run.append({"name": "code", "mountPath": posixpath.join(CODE_MOUNT, code["package"]), "readOnly": True})
    return {"volumes": volumes, "stage_mounts": stage, "run_mounts": run}


def stage_args(plan: Plan, replicate: Replicate) -> list[str]:
    args = ["--scratch", SCRATCH_MOUNT, "--output", OUTPUT_MOUNT, "--owner", plan.owner(replicate.index)]
    if plan.data:
        source = f'claim "{plan.data["claim"]}" subPath "{plan.data.get("subPath", "")}"'
        args += ["--data", DATA_MOUNT, "--source", source]
        for data_type in plan.data.get("types") or []:
            args += ["--type", data_type]
    return args


def literal(args: list[str]) -> list[str]:
    """Arguments as the container gets them: the kubelet expands `$(VAR)` in args and reads `$$` as `$`,
    so every `$` is doubled and a value like `$(HOME)/genome.fa` reaches the run as written."""
    return [arg.replace("$", "$$") for arg in args]


def context(plan: Plan, replicate: Replicate, config: Settings) -> dict[str, Any]:
    """The template's variables for one replicate (documented in the module docstring)."""
    spec = plan.spec
    output_path = plan.output_path(replicate.version)
    selector, tolerations = placement(plan, config)
    # Only what the pod reads: where to write its run summary, and a writable HOME (the root filesystem is
    # read-only). The run's identity is in its labels and annotations.
    env = [{"name": TERMINATION_LOG_ENV, "value": TERMINATION_LOG}, {"name": "HOME", "value": TMP_MOUNT}]
    if spec.get("code"):
        env.append({"name": "PYTHONPATH", "value": CODE_MOUNT})
    return {
        "name": plan.child_name(replicate.index, replicate.version), "namespace": plan.namespace,
        "labels": labels(plan, replicate),
        "annotations": {C.ANNOTATION_CANONICAL: plan.canonical, C.ANNOTATION_OUTPUT: output_path},
        "owner": owner_reference(plan), "image": plan.image, "image_pull_policy": config.image_pull_policy,
        "stage_args": literal(stage_args(plan, replicate)), "run_args": literal(plan.run_args(replicate.version)),
        "env": env,
        "resources": resources(plan, config), "node_selector": selector, "tolerations": tolerations,
        **volumes_and_mounts(plan, replicate, config),
        "backoff_limit": int(spec.get("backoffLimit", 3)),
        "active_deadline_seconds": spec.get("activeDeadlineSeconds"),
        "ttl_seconds_after_finished": spec.get("ttlSecondsAfterFinished"),
        # Kueue admits a queued Job by unsuspending it; a suspended parent keeps its Jobs suspended.
        "suspend": bool(spec.get("suspend")) or bool(spec.get("queueName")),
        "fatal_exit_codes": [C.EXIT_USER_ERROR, C.EXIT_VERSION_TAKEN],
        "run_as_user": config.run_as_user, "termination_log": TERMINATION_LOG,
    }


def render_job(plan: Plan, replicate: Replicate, config: Settings) -> dict[str, Any]:
    """The child Job as a dict, checked; RenderError names what is wrong."""
    ctx = context(plan, replicate, config)
    try:
        text = environment(config).get_template(JOB_TEMPLATE).render(**ctx)
        job = _join_surrogates(_load_yaml(text))
    except (jinja2.TemplateError, yaml.YAMLError) as err:
        raise RenderError(f"template {JOB_TEMPLATE}: {type(err).__name__}: {err}".splitlines()[0]) from None
    check_job(job, ctx)
    return job


def _join_surrogates(value: Any) -> Any:
    """Characters beyond U+FFFF back in one piece: `tojson` (ensure_ascii, so that line separators stay
    escaped) writes them as JSON surrogate pairs, which PyYAML reads as two lone surrogates."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if isinstance(value, dict):
        return {_join_surrogates(k): _join_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_surrogates(v) for v in value]
    return value


def _fail(what: str) -> None:
    raise RenderError(f"template {JOB_TEMPLATE} rendered an unsafe Job: {what}")


def check_job(job: Any, ctx: Mapping[str, Any]) -> None:
    """What any template must keep: identity, ownership, the commands and arguments, and a restricted pod."""
    if not isinstance(job, dict) or job.get("apiVersion") != "batch/v1" or job.get("kind") != "Job":
        _fail("not a batch/v1 Job")
    meta = job.get("metadata") or {}
    if meta.get("name") != ctx["name"] or meta.get("namespace") != ctx["namespace"]:
        _fail("metadata.name or namespace differs from the operator's")
    if ctx["owner"] not in (meta.get("ownerReferences") or []):
        _fail("the ownerReference to the SeqTrainingJob is missing")
    for key, value in ctx["labels"].items():
        if (meta.get("labels") or {}).get(key) != value:
            _fail(f"label {key} is missing or changed")
    pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    if pod.get("restartPolicy") != "Never":
        _fail("restartPolicy must be Never (retries are the Job's, each one resumes)")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            _fail(f"spec.template.spec.{key} is set")
    if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
        _fail("the pod must run as non-root")
    if any("hostPath" in v for v in pod.get("volumes") or []):
        _fail("hostPath volumes are not allowed")
    expected = {"stage": (["python", "-m", "seqmodel.pod", "stage"], ctx["stage_args"]),
                "trainer": (["python", "-m", "seqmodel.pod", "run"], ctx["run_args"])}
    containers = (pod.get("initContainers") or []) + (pod.get("containers") or [])
    for c in containers:
        sc = c.get("securityContext") or {}
        for key, value in RESTRICTED.items():
            if sc.get(key) != value:
                _fail(f"container {c.get('name')}: securityContext.{key} must be {json.dumps(value)}")
        if c.get("name") in expected and (c.get("command"), c.get("args")) != expected.pop(c["name"]):
            _fail(f"container {c['name']}: command or args differ from the operator's")
    if expected:
        _fail(f"container(s) {', '.join(sorted(expected))} missing")
