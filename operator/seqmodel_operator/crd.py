"""The CustomResourceDefinitions, generated from code: the hparam registry is the one source of truth.

`python -m seqmodel_operator.crd` writes them to manifests/crd/ (`--check` fails when the committed
files are stale). spec.hparams takes its schema from the registry, so the API server refuses unknown
hparams and wrong types at `kubectl apply`, and `kubectl explain` shows each hparam's help. Unknown
fields are refused by kubectl's strict field validation (structural schemas cannot say
`additionalProperties: false` beside `properties`; the API server prunes them otherwise). Schema
defaults are left out of spec.hparams on purpose: the object keeps what the user wrote, and defaults
come from the seqmodel version in the trainer image (each one's help says it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from seqmodel.hparam import registry
from seqmodel_operator import constants as C

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "crd"

# Everything in spec except `suspend` is fixed once the job exists: a run is a record of what ran.
IMMUTABLE_SPEC_FIELDS = ("mode", "hparams", "componentHparams", "configFrom", "code", "image", "resources",
                         "scratch", "data", "output", "replicates", "checkpoint", "backoffLimit",
                         "activeDeadlineSeconds", "ttlSecondsAfterFinished", "queueName")
# A sweep's spec is its record too; only how fast it goes and whether it goes can change.
SWEEP_IMMUTABLE_FIELDS = ("template", "parameters", "schedule", "replicates", "trialRetries", "maxFailedTrials",
                          "objective")
# Job fields a sweep sets on its trials from its own (replicates, trialRetries, suspend).
SWEEP_OWNED_JOB_FIELDS = ("replicates", "backoffLimit", "suspend")
HPARAM_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True,
            "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"}
DNS_LABEL = {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
DNS_SUBDOMAIN = {"type": "string", "maxLength": 253,
                 "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
# A path inside a volume: relative, no `..` component, no empty component, printable characters only.
REL_PATH = {"type": "string", "maxLength": 1024,
            "pattern": r"^([A-Za-z0-9._+=,@%-]+)(/[A-Za-z0-9._+=,@%-]+)*$",
            "x-kubernetes-validations": [{"rule": "!self.matches('(^|/)[.][.](/|$)')",
                                          "message": "must not contain a '..' component"}]}


def _describe(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": text, **schema}


def hparams_schema() -> dict[str, Any]:
    """spec.hparams: every registry hparam the user may set, with its help, type and range."""
    properties = {}
    for hp in registry():
        if hp.name in C.JOB_OWNED_HPARAMS:
            continue
        schema = hp.json_schema()
        default = schema.pop("default", None)
        schema["description"] = f"{hp.help} (default: {default if default is not None else 'none'})"
        properties[hp.name] = schema
    return {"type": "object", "properties": properties,
            "description": "seqmodel hparams (`python -m seqmodel.run --help`); unset ones take their defaults. "
                           f"Set by other fields instead: {', '.join(C.JOB_OWNED_HPARAMS)}."}


def job_spec_schema(immutable: bool = True) -> dict[str, Any]:
    """A SeqTrainingJob's spec; a SeqSweep's template reuses it (`immutable=False`: the sweep has its own
    rules, about the template as a whole)."""
    obj = lambda props, **kw: {"type": "object", "properties": props, **kw}  # noqa: E731
    return obj({
        "mode": _describe("train fits a model; test writes predictions from spec.checkpoint",
                          {"type": "string", "enum": ["train", "test"], "default": "train"}),
        "hparams": hparams_schema(),
        "componentHparams": _describe(
            "hparams that only a custom component declares (one named by package.module:Class in hparams or "
            "the config): checked when the run starts, so a bad one fails the job with a message naming it",
            # CEL cannot type a map of values of any type, so the operator checks names and values.
            {"type": "object", "maxProperties": 64, "x-kubernetes-preserve-unknown-fields": True}),
        "configFrom": _describe("a seqmodel config file held in a ConfigMap (its other keys are there for "
                                "relative `defaults:`); spec.hparams override its keys", obj({
            "name": _describe("the ConfigMap, in this namespace", DNS_SUBDOMAIN),
            "key": _describe("the key holding the config file", {
                "type": "string", "maxLength": 253, "default": "config.yaml",
                "pattern": r"^[-._a-zA-Z0-9]+\.ya?ml$"}),
        }, required=["name"])),
        "code": _describe("user code (custom components), mounted read-only and put on PYTHONPATH; or "
                          "build it into spec.image", obj({
            "claim": _describe("PersistentVolumeClaim holding the packages", DNS_SUBDOMAIN),
            "subPath": _describe("directory in the claim", REL_PATH),
            "configMap": _describe("ConfigMap whose keys are the files of one package directory", DNS_SUBDOMAIN),
            "package": _describe("with configMap: the package name its files form", {
                "type": "string", "maxLength": 63, "pattern": HPARAM_NAME}),
        }, **{"x-kubernetes-validations": [
            {"rule": "has(self.claim) != has(self.configMap)", "message": "set exactly one of claim and configMap"},
            {"rule": "has(self.configMap) == has(self.package)", "message": "configMap needs package, and only it"},
            {"rule": "!has(self.subPath) || has(self.claim)", "message": "subPath only goes with claim"}]})),
        "image": _describe("trainer image (default: the operator's configured image)",
                           {"type": "string", "minLength": 1, "maxLength": 512, "pattern": r"^[^\s]+$"}),
        "resources": _describe("what one replicate's pod gets", obj({
            "gpus": _describe("GPUs per pod", {"type": "integer", "minimum": 0, "maximum": 64, "default": 1}),
            "gpuType": _describe("GPU product (node label nvidia.com/gpu.product), e.g. NVIDIA-A100-SXM4-80GB",
                                 {"type": "string", "maxLength": 63, "pattern": r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"}),
            "cpu": _describe("CPU request and limit", QUANTITY),
            "memory": _describe("memory request and limit", QUANTITY),
        })),
        "scratch": _describe("local scratch where data is staged and the run works", obj({
            "size": _describe("scratch size", {**QUANTITY, "default": "10Gi"}),
            "storageClassName": _describe("local-SSD storage class for a generic ephemeral volume "
                                          "(default: the operator's; none there means emptyDir)", DNS_SUBDOMAIN),
            "type": _describe("ephemeral (a volume of storageClassName) or emptyDir (default: the operator's)",
                              {"type": "string", "enum": ["ephemeral", "emptyDir"]}),
        })),
        "data": _describe("a claim holding data/<type>/, copied to scratch before the run", obj({
            "claim": _describe("PersistentVolumeClaim with the data", DNS_SUBDOMAIN),
            "subPath": _describe("directory in the claim that holds data/ (default: its root)", REL_PATH),
            "types": _describe("subdirectories of data/ to stage (default: all)",
                               {"type": "array", "maxItems": 32, "items": DNS_LABEL}),
        }, required=["claim"])),
        "output": _describe("where runs are written: <claim>/<root>/<canonical name>/version_<n>", obj({
            "claim": _describe("PersistentVolumeClaim for outputs (default: the operator's)", DNS_SUBDOMAIN),
            "root": _describe("directory in the claim", {**REL_PATH, "default": "runs"}),
        })),
        "replicates": _describe("independent runs of the same hparams, each its own version and seed",
                                {"type": "integer", "minimum": 1, "maximum": 100, "default": 1}),
        "checkpoint": _describe("a checkpoint to start from: another job's or a path on the output claim", obj({
            "fromJob": _describe("a SeqTrainingJob in this namespace", DNS_SUBDOMAIN),
            "replicate": _describe("which replicate of fromJob", {"type": "integer", "minimum": 0, "default": 0}),
            "file": _describe("checkpoint file inside fromJob's output", {**REL_PATH, "default": "checkpoints/last.ckpt"}),
            "path": _describe("checkpoint file on the output claim", REL_PATH),
            "use": _describe("weights (whole model; default in test mode), encoder (default in train mode) "
                             "or resume (trainer state too)",
                             {"type": "string", "enum": ["weights", "encoder", "resume"]}),
            "eachReplicate": _describe("each replicate starts from fromJob's replicate of the same index (an ASHA "
                                       "promotion resumes each replicate's own run)", {"type": "boolean"}),
        }, **{"x-kubernetes-validations": [
            {"rule": "has(self.fromJob) != has(self.path)", "message": "set exactly one of fromJob and path"},
            {"rule": "!has(self.path) || !has(self.replicate) || self.replicate == 0",
             "message": "replicate only goes with fromJob"},
            {"rule": "!has(self.path) || !has(self.eachReplicate) || !self.eachReplicate",
             "message": "eachReplicate only goes with fromJob"}]})),
        "backoffLimit": _describe("retries of a failed pod; each resumes from its newest checkpoint",
                                  {"type": "integer", "minimum": 0, "maximum": 100, "default": 3}),
        "activeDeadlineSeconds": _describe("fail a replicate that runs longer", {"type": "integer", "minimum": 1}),
        "ttlSecondsAfterFinished": _describe("delete finished child Jobs (not this record) after this long",
                                             {"type": "integer", "minimum": 0}),
        "suspend": _describe("stop the pods; false again resumes from the newest checkpoint",
                             {"type": "boolean", "default": False}),
        "queueName": _describe("Kueue LocalQueue: child Jobs start suspended until Kueue admits them", DNS_LABEL),
    }, **{"x-kubernetes-validations": (_immutable(IMMUTABLE_SPEC_FIELDS, "job") if immutable else []) + [
        {"rule": "self.mode != 'test' || has(self.checkpoint)",
          "message": "spec.checkpoint is required in test mode: the model to test"},
         {"rule": "self.mode != 'test' || !has(self.checkpoint) || !has(self.checkpoint.use) "
                  "|| self.checkpoint.use == 'weights'",
          "message": "spec.checkpoint.use must be weights in test mode"}]})


def _immutable(fields: tuple[str, ...], kind: str) -> list[dict[str, str]]:
    return [{"rule": f"has(self.{f}) == has(oldSelf.{f}) && (!has(self.{f}) || self.{f} == oldSelf.{f})",
             "message": f"spec.{f} cannot change after the {kind} is created; create a new {kind}"}
            for f in fields]


def _condition_schema() -> dict[str, Any]:
    s = {"type": "string"}
    return {"type": "object", "required": ["type", "status"], "properties": {
        "type": s, "status": {"type": "string", "enum": ["True", "False", "Unknown"]}, "reason": s,
        "message": s, "lastTransitionTime": {"type": "string", "format": "date-time"},
        "observedGeneration": {"type": "integer"}}}


def job_status_schema() -> dict[str, Any]:
    s, i = {"type": "string"}, {"type": "integer"}
    metrics = {"type": "object", "additionalProperties": {"type": "number", "nullable": True}}
    return {"type": "object", "properties": {
        "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed", "Suspended"]},
        "observedGeneration": i,
        "conditions": {"type": "array", "items": _condition_schema(),
                       "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        "canonicalName": s,
        "output": _describe("claim-relative output path(s), for the printer column", s),
        "replicates": {"type": "array", "items": {"type": "object", "properties": {
            "index": i, "version": i, "outputPath": s, "job": s, "phase": s, "message": s,
            "restarts": _describe("retries: failed pods that another attempt followed", i), "metrics": metrics,
            "predictions": _describe("claim-relative predictions file (test mode)", s)}}},
        "startTime": {"type": "string", "format": "date-time"},
        "completionTime": {"type": "string", "format": "date-time"},
        "metrics": _describe("mean over succeeded replicates, from their termination messages", metrics),
        "message": _describe("why the job failed, or why a replicate is not running yet", s),
        "kopf": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }}


def training_job_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": job_spec_schema(), "status": job_status_schema()},
        "x-kubernetes-validations": [{
            "rule": f"size(self.metadata.name) <= {C.MAX_NAME_CHARS}",
            "message": f"metadata.name must be at most {C.MAX_NAME_CHARS} characters: "
                       "child Job names add a suffix and must stay valid labels"}],
    }
    return _crd(C.JOB_KIND, C.JOB_PLURAL, C.JOB_SHORT, schema, [
        column("Phase", ".status.phase"),
        column("Mode", ".spec.mode"),
        column("Replicas", ".spec.replicates", "integer"),
        column("Output", ".status.output"),
        column("Age", ".metadata.creationTimestamp", "date"),
        column("Canonical", ".status.canonicalName", priority=1),
        column("Message", ".status.message", priority=1),
    ])


def column(name: str, path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    """A printer column (`kubectl get`); priority=1 shows it with `-o wide` only."""
    return {"name": name, "type": type_, "jsonPath": path, **extra}


def _crd(kind: str, plural: str, short: str, schema: dict[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{C.GROUP}",
                     "labels": {"app.kubernetes.io/name": "seqmodel", "app.kubernetes.io/part-of": "seqmodel"}},
        "spec": {
            "group": C.GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "shortNames": [short], "categories": [C.CATEGORY]},
            "versions": [{
                "name": C.VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }


def _settable_hparams() -> list[tuple[str, dict[str, Any]]]:
    """(name, schema without default) of every hparam a user may set."""
    out = []
    for hp in registry():
        if hp.name not in C.JOB_OWNED_HPARAMS:
            schema = hp.json_schema()
            schema.pop("default", None)
            out.append((hp.name, schema))
    return out


def _random_schema(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One hparam's distribution in a random search: the kinds that fit its type, bounds of its type
    and range (so a bound outside the hparam's range is refused naming it)."""
    kinds = {"number": ["uniform", "loguniform", "choice"], "integer": ["int", "choice"]}.get(schema["type"], ["choice"])
    props: dict[str, Any] = {
        "distribution": {"type": "string", "enum": kinds},
        "values": {"type": "array", "minItems": 1, "maxItems": 1000, "items": schema,
                   "description": "with choice: the values to draw from, uniformly"},
    }
    rules = [{"rule": "self.distribution != 'choice' || has(self.values)",
              "message": f"{name}: choice needs values"}]
    if kinds != ["choice"]:
        bound = {k: v for k, v in schema.items() if k != "nullable"}
        props["low"] = {**bound, "description": "lower bound (inclusive)"}
        props["high"] = {**bound, "description": "upper bound (inclusive for int)"}
        rules += [{"rule": "self.distribution == 'choice' || (has(self.low) && has(self.high) && self.low <= self.high)",
                   "message": f"{name}: {'/'.join(kinds[:-1])} needs low <= high"}]
    if "loguniform" in kinds:
        rules.append({"rule": "self.distribution != 'loguniform' || !has(self.low) || self.low > 0.0",
                      "message": f"{name}: loguniform needs low > 0"})
    return {"type": "object", "required": ["distribution"], "properties": props,
            "description": schema["description"], "x-kubernetes-validations": rules}


def sweep_spec_schema() -> dict[str, Any]:
    """A SeqSweep's spec. Parameter names and values take their schema from the hparam registry, like
    spec.hparams of a job: an unknown name, an empty grid or a value out of range is refused at apply."""
    hparams = _settable_hparams()
    template = job_spec_schema(immutable=False)
    template["description"] = ("the SeqTrainingJob spec of every trial; the trial's parameters override "
                               "template.hparams. Replicates, retries and suspend are the sweep's own fields")
    for field in SWEEP_OWNED_JOB_FIELDS:
        del template["properties"][field]
    grid = {"type": "object", "minProperties": 1, "description": "hparam name -> the values to try; every combination is a trial",
            "properties": {n: {"type": "array", "minItems": 1, "maxItems": 1000, "items": s,
                               "description": s["description"]} for n, s in hparams}}
    random = {"type": "object", "minProperties": 1,
              "description": "hparam name -> a distribution; spec.parameters.trials draws, seeded by spec.parameters.seed",
              "properties": {n: _random_schema(n, s) for n, s in hparams}}
    listed = {"type": "array", "minItems": 1, "maxItems": C.MAX_TRIALS, "description": "the trials' hparams, one object each",
              "items": {"type": "object", "properties": dict(hparams)}}
    tpe = {**random, "description": "hparam name -> a distribution, as in random; Optuna's TPE suggests each "
                                    "trial from the finished ones (spec.parameters.trials, seeded by spec.parameters.seed)"}
    parameters = {"type": "object", "properties": {
        "grid": grid, "random": random, "list": listed, "tpe": tpe,
        "trials": _describe("with random or tpe: how many trials",
                            {"type": "integer", "minimum": 1, "maximum": C.MAX_TRIALS}),
        "seed": _describe("with random or tpe: the seed of the draws (the same seed gives the same trials; for tpe, "
                          "the same finished trials too); with asha, also the order grid, random and list trials "
                          "start in", {"type": "integer", "minimum": 0, "default": 0}),
        "startupTrials": _describe("with tpe: random draws until this many trials have finished (default: a "
                                   "quarter of the trials, from 2 to 10)",
                                   {"type": "integer", "minimum": 1, "maximum": C.MAX_TRIALS}),
    }, "x-kubernetes-validations": [
        {"rule": "(has(self.grid) ? 1 : 0) + (has(self.random) ? 1 : 0) + (has(self.list) ? 1 : 0) "
                 "+ (has(self.tpe) ? 1 : 0) == 1",
         "message": "spec.parameters: set exactly one of grid, random, list and tpe"},
        {"rule": "(has(self.random) || has(self.tpe)) == has(self.trials)",
         "message": "spec.parameters.trials goes with random or tpe, and only them"},
        {"rule": "!has(self.startupTrials) || has(self.tpe)",
         "message": "spec.parameters.startupTrials goes with tpe only"}]}
    asha = {"type": "object", "required": ["min", "max"], "properties": {
        "resource": _describe("what a rung's budget sets", {"type": "string", "enum": ["max_steps"],
                                                           "default": "max_steps"}),
        "min": _describe("steps of the first rung", {"type": "integer", "minimum": 1}),
        "max": _describe("steps of the top rung", {"type": "integer", "minimum": 1}),
        "eta": _describe("rung k trains min * eta^k steps (capped at max); the top 1/eta of a rung go on",
                         {"type": "integer", "minimum": 2, "default": 3}),
    }, "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "spec.schedule.asha: min <= max"}],
        "description": "asynchronous successive halving: trials start with min steps; the best 1/eta of those that "
                       "finished a rung resume from their checkpoint with eta times the steps"}
    return {"type": "object", "required": ["template", "parameters"], "properties": {
        "template": template,
        "parameters": _describe("the search space: trial i has the i-th hparams of it (seqmodel.job.search.expand)",
                                parameters),
        "replicates": _describe("runs of each trial, versions 0..n-1 of its canonical name, each its own seed",
                                {"type": "integer", "minimum": 1, "maximum": 100, "default": 1}),
        "parallelism": _describe("most trials active at once (can change while the sweep runs)",
                                 {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1}),
        "trialRetries": _describe("retries of a failed trial's pod, each resuming from its newest checkpoint, "
                                  "before the trial counts as failed",
                                  {"type": "integer", "minimum": 0, "maximum": 100, "default": 1}),
        "maxFailedTrials": _describe("stop starting trials (phase Failed) once more trials than this failed; "
                                     "unset: no limit", {"type": "integer", "minimum": 0}),
        "schedule": _describe("how trials are run: asha stops poor trials early", {
            "type": "object", "properties": {"asha": asha}}),
        "objective": _describe("what bestTrial is chosen by (and what tpe and asha rank trials by)", {
            "type": "object", "required": ["metric"], "properties": {
                "metric": _describe("a metric of the trials' status, e.g. val/loss",
                                    {"type": "string", "minLength": 1, "maxLength": 253}),
                "goal": {"type": "string", "enum": ["min", "max"], "default": "min"},
                "target": _describe("stop starting trials (phase Succeeded) once the best value reaches this",
                                    {"type": "number"})}}),
        "suspend": _describe("start no new trials; running ones go on", {"type": "boolean", "default": False}),
    }, "x-kubernetes-validations": _immutable(SWEEP_IMMUTABLE_FIELDS, "sweep") + [
        {"rule": "!(has(self.parameters.tpe) || (has(self.schedule) && has(self.schedule.asha))) || has(self.objective)",
         "message": "spec.objective: tpe and asha rank trials by it; set it"}]}


def sweep_status_schema() -> dict[str, Any]:
    """Bounded whatever the number of trials: counts, the best trial and the first few failures."""
    s, i = {"type": "string"}, {"type": "integer"}
    return {"type": "object", "properties": {
        "phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed", "Suspended"]},
        "observedGeneration": i,
        "conditions": {"type": "array", "items": _condition_schema(),
                       "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        "trials": _describe("trials in the search space", i),
        "algorithm": _describe("the search (grid, random, list, tpe), with +asha", s),
        "created": _describe("trials started so far", i),
        "active": _describe("trials started and not finished", i),
        "succeeded": i, "failed": i,
        "bestTrial": {"type": "object", "properties": {
            "name": s, "index": i, "rung": i,
            "value": _describe("the objective: the mean over the trial's replicates", {"type": "number"}),
            "sd": _describe("the replicates' standard deviation (with 2 or more)", {"type": "number"}),
            # not `n`: YAML 1.1 readers (kubectl's) take a bare n for false
            "replicates": _describe("replicates the value is the mean of", i),
            "hparams": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                        "description": "the trial's parameters"}}},
        "rungs": _describe("with asha, per rung: runs started, succeeded and failed, trials promoted from it and "
                           "those stopped there (so far), and its best value", {
            "type": "array", "maxItems": 64, "items": {"type": "object", "properties": {
                "rung": i, "budget": i, "started": i, "succeeded": i, "failed": i, "promoted": i, "stopped": i,
                "best": {"type": "number"}}}}),
        "failures": _describe(f"the first {C.MAX_FAILURES_SHOWN} failed trials and why", {
            "type": "array", "maxItems": C.MAX_FAILURES_SHOWN,
            "items": {"type": "object", "properties": {"name": s, "index": i, "message": s}}}),
        "message": s,
        "startTime": {"type": "string", "format": "date-time"},
        "completionTime": {"type": "string", "format": "date-time"},
    }}


def sweep_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {"spec": sweep_spec_schema(), "status": sweep_status_schema()},
        "x-kubernetes-validations": [{
            "rule": f"size(self.metadata.name) <= {C.MAX_SWEEP_NAME_CHARS}",
            "message": f"metadata.name must be at most {C.MAX_SWEEP_NAME_CHARS} characters: trials are "
                       "named <sweep>-<index>"}],
    }
    return _crd(C.SWEEP_KIND, C.SWEEP_PLURAL, C.SWEEP_SHORT, schema, [
        column("Phase", ".status.phase"),
        column("Algorithm", ".status.algorithm"),
        column("Trials", ".status.trials", "integer"),
        column("Active", ".status.active", "integer"),
        column("Succeeded", ".status.succeeded", "integer"),
        column("Failed", ".status.failed", "integer"),
        column("Best", ".status.bestTrial.value", "number"),
        column("Age", ".metadata.creationTimestamp", "date"),
        column("Best-Trial", ".status.bestTrial.name", priority=1),
        column("Message", ".status.message", priority=1),
    ])


def all_crds() -> dict[str, dict[str, Any]]:
    """File name (kubebuilder's `<group>_<plural>.yaml`) to CRD."""
    return {f"{C.GROUP}_{C.JOB_PLURAL}.yaml": training_job_crd(), f"{C.GROUP}_{C.SWEEP_PLURAL}.yaml": sweep_crd()}


def render(crd: dict[str, Any]) -> str:
    header = "# Generated by `python -m seqmodel_operator.crd` from the hparam registry. Do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120)


# The Helm chart installs the same files (Helm takes CRDs from a chart's crds/ as they are).
CHART_CRDS = MANIFESTS.parents[1] / "charts" / "seqmodel-operator" / "crds"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seqmodel_operator.crd", description="write or check the CRDs")
    parser.add_argument("dirs", nargs="*", type=Path, metavar="dir",
                        help="where to write or check (default: manifests/crd/ and the chart's crds/)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the code")
    args = parser.parse_args(argv)
    stale = []
    for directory in args.dirs or [MANIFESTS, CHART_CRDS]:
        for name, crd in all_crds().items():
            path, text = directory / name, render(crd)
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print(f"stale CRDs: {', '.join(stale)}; run `python -m seqmodel_operator.crd`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
