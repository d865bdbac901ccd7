"""A 1,000-trial SeqSweep on kwok nodes against creating the same 1,000 Jobs directly, in the same run.

Both sides run on one freshly started local cluster, each in its own namespace, with the operator's own
client (`seqmodel_operator.kube.Kube`: one token bucket at api_qps/api_burst) and its concurrency
(worker_limit threads):
- baseline: the bench renders each trial's Job exactly as the operator would (`plan` + `render_job`, the
  same admin template override) and creates them from worker_limit threads through one `Kube`;
- sweep: one SeqSweep with parallelism 1,000 is created; the operator creates 1,000 SeqTrainingJobs and
  each of those its Job (a version claim first).
Measured on both: from the first create to a watch having seen all 1,000 child Jobs ADDED. Then, for the
sweep, until every trial Succeeded (pods run RUN_FOR on kwok): the operator's API writes per trial
(`apiserver_request_total` before and after) and its peak RSS (VmHWM).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from kubernetes import client

from bench.bench_operator import (GROUP, LABEL_PARENT_UID, PLURAL, SWEEP_PLURAL, VERSION, Operator, Watcher, apply_crds,
                                  closing_lines, create_claim, operator_reads, operator_writes, run_bench, run_jobs,
                                  wait_quiet)
from bench.cluster import Options, admin_client, new_namespace
from seqmodel_operator.reconcilers.sweep import trial_job
from seqmodel_operator.kube import Kube, TokenBucket
from seqmodel_operator.plan import make_plan
from seqmodel_operator.render import Replicate, render_job
from seqmodel_operator.settings import Settings

TRIALS = 1000
LABEL_SWEEP = f"{GROUP}/sweep"
KWOK_NODES = 4
TIMEOUT = 900.0
COMMAND = ".venv/bin/python -m bench sweep"
TARGETS = {"ratio": 1.5, "hwm_mib": 250.0}
# The operator's settings for the run: trials may start as fast as the API budget allows (the default
# sweep_trial_rate of 20/s is a guard for shared clusters, not a speed).
SETTINGS = {"SEQMODEL_OPERATOR_SWEEP_TRIAL_RATE": "0"}


def sweep_body(name: str, trials: int) -> dict[str, Any]:
    """`trials` trials of the example's model, each its own lr (its own canonical name and counter), no GPU
    (so that 1,000 pods fit on the kwok nodes at once)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SeqSweep", "metadata": {"name": name},
            "spec": {"template": {"mode": "train", "hparams": {"max_steps": 100}, "resources": {"gpus": 0}},
                     "parameters": {"list": [{"lr": round(1e-5 * (i + 1), 8)} for i in range(trials)]},
                     "parallelism": trials, "trialRetries": 0}}


class ChildJobs:
    """Counts child Jobs ADDED in a namespace; `done` once `expected` were seen."""

    def __init__(self, expected: int) -> None:
        self.expected, self.seen, self.last = expected, set(), 0.0
        self.lock = threading.Lock()

    def on(self, type_: str, obj: dict, now: float) -> None:
        if type_ == "ADDED":
            with self.lock:
                self.seen.add(obj["metadata"]["name"])
                self.last = now

    def done(self) -> bool:
        return len(self.seen) >= self.expected


def watch_children(api: client.ApiClient, ns: str, expected: int) -> tuple[Watcher, ChildJobs]:
    seen = ChildJobs(expected)
    watcher = Watcher(client.BatchV1Api(api).list_namespaced_job, (ns,), {"label_selector": LABEL_PARENT_UID},
                      seen.on, seen.done)
    watcher.start()
    time.sleep(1.0)  # connected, so that an event's arrival is its time
    return watcher, seen


def wait_children(watcher: Watcher, seen: ChildJobs, t0: float, what: str) -> float:
    watcher.join(max(0.0, t0 + TIMEOUT - time.monotonic()))
    if watcher.error:
        raise RuntimeError(f"bench sweep: the watch failed: {watcher.error}") from watcher.error
    if not seen.done():
        raise RuntimeError(f"bench sweep: {what}: {len(seen.seen)} of {seen.expected} Jobs within {TIMEOUT:.0f} s")
    return seen.last - t0


def baseline(api: client.ApiClient, kubeconfig: str, ns: str, config: Settings, trials: int) -> float:
    """The trials' Jobs, rendered as the operator renders them, created directly; seconds until all seen."""
    sweep = {**sweep_body("base", trials), "metadata": {"name": "base", "namespace": ns, "uid": "baseline"}}
    jobs = []
    for index, params in enumerate(sweep["spec"]["parameters"]["list"]):
        trial = trial_job(sweep, index, params)
        trial["metadata"]["uid"] = f"baseline-{index}"
        job = render_job(make_plan(trial, config), Replicate(0, 0), config)
        del job["metadata"]["ownerReferences"]  # no owner exists: the garbage collector would delete them
        jobs.append(job)
    kube = Kube(admin_client(kubeconfig, config.worker_limit), TokenBucket(config.api_qps, config.api_burst))
    watcher, seen = watch_children(api, ns, trials)
    t0 = time.monotonic()
    with ThreadPoolExecutor(config.worker_limit) as pool:
        list(pool.map(lambda job: kube.create_job(ns, job), jobs))
    return wait_children(watcher, seen, t0, "baseline")


def run_sweep(api: client.ApiClient, ns: str, trials: int) -> tuple[float, float, float, dict[str, Any]]:
    """Create the sweep; (seconds until all trials seen, until all their Jobs seen, until the sweep
    Succeeded; its status)."""
    custom = client.CustomObjectsApi(api)
    trials_seen = ChildJobs(trials)
    trial_watcher = Watcher(custom.list_namespaced_custom_object, (GROUP, VERSION, ns, PLURAL),
                            {"label_selector": LABEL_SWEEP}, trials_seen.on, trials_seen.done)
    trial_watcher.start()
    watcher, seen = watch_children(api, ns, trials)
    t0 = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, SWEEP_PLURAL, sweep_body("bench", trials))
    children_s = wait_children(watcher, seen, t0, "sweep")
    trials_s = wait_children(trial_watcher, trials_seen, t0, "sweep trials")
    while True:
        status = custom.get_namespaced_custom_object(GROUP, VERSION, ns, SWEEP_PLURAL, "bench").get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return trials_s, children_s, time.monotonic() - t0, status
        if time.monotonic() > t0 + TIMEOUT:
            raise RuntimeError(f"bench sweep: not finished within {TIMEOUT:.0f} s: {status.get('message')}")
        time.sleep(1.0)


def delete_namespace(api: client.ApiClient, ns: str, timeout: float = 300.0) -> None:
    core = client.CoreV1Api(api)
    core.delete_namespace(ns)
    deadline = time.monotonic() + timeout
    while any(item.metadata.name == ns for item in core.list_namespace().items):
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench sweep: namespace {ns} not deleted within {timeout:.0f} s")
        time.sleep(1.0)


def measure(api: client.ApiClient, kubeconfig: str, logs: Path, trials: int) -> dict[str, Any]:
    apply_crds(api)
    base_ns, sweep_ns = new_namespace(api, "bench-direct"), new_namespace(api, "bench-sweep")
    for ns in (base_ns, sweep_ns):
        create_claim(api, ns)
    operator = Operator(kubeconfig, logs / "seqmodel-operator-sweep.log", SETTINGS)
    try:
        operator.wait_healthy()
        run_jobs(api, kubeconfig, sweep_ns, [("warmup", 0.5)], timeout=120)  # imports, templates, watches warm
        direct_s = baseline(api, kubeconfig, base_ns, operator.config, trials)
        delete_namespace(api, base_ns)  # its pods would compete with the sweep's, its deletion's writes count
        before = wait_quiet(api)
        cpu0 = operator.cpu_seconds()
        trials_s, children_s, finished_s, status = run_sweep(api, sweep_ns, trials)
        after = wait_quiet(api)
        cpu_s = operator.cpu_seconds() - cpu0
        hwm_kib = operator.memory_kib("VmHWM")
    finally:
        operator.stop()
    return {"trials": trials, "direct_s": direct_s, "trials_s": trials_s, "children_s": children_s, "finished_s": finished_s,
            "status": status, "writes": operator_writes(before, after, 1, SWEEP_PLURAL), "reads": operator_reads(before, after), "cpu_s": cpu_s, "hwm_mib": hwm_kib / 1024,
            "config": operator.config, "log_problems": operator.log_problems(), "log": operator.log}


def report(r: Mapping[str, Any], start_s: float | None) -> str:
    n, config, status = r["trials"], r["config"], r["status"]
    ratio, writes = r["children_s"] / r["direct_s"], sum(r["writes"].values())
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        f"One SeqSweep of {n} trials (a `list` of {n} lr values: each trial its own canonical name and version "
        f"counter), parallelism {n}, against {n} equivalent Jobs created directly, on one freshly started "
        f"local cluster with {KWOK_NODES} kwok nodes. Both sides use the operator's client (`Kube`, one token "
        f"bucket: api_qps {config.api_qps:g}, api_burst {config.api_burst}) and its concurrency (worker_limit "
        f"{config.worker_limit}); the baseline's Jobs are rendered by the operator's own `plan` and `render_job`. "
        f"Pods run 20 s on kwok (the benchmark's admin template override). sweep_trial_rate "
        f"{config.sweep_trial_rate:g} (0: no limit besides api_qps). Times are from the first create to a "
        "watch having seen every child Job ADDED. Machine: 2 shared cores running the control plane, the "
        "operator and the bench. One run.",
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| {n} Jobs created directly (baseline) | {r['direct_s']:.1f} s | |",
        f"| {n}-trial sweep: all trials (SeqTrainingJobs) exist | {r['trials_s']:.1f} s | |",
        f"| {n}-trial sweep: all child Jobs exist | {r['children_s']:.1f} s | |",
        f"| ratio sweep / direct | {ratio:.2f} | <= {TARGETS['ratio']} |",
        f"| sweep Succeeded (all {n} trials, pods running 20 s) | {r['finished_s']:.1f} s | |",
        f"| sweep status at the end | {status.get('succeeded')} succeeded, {status.get('failed')} failed, "
        f"{status.get('created')} created of {status.get('trials')} | |",
        f"| operator API writes per trial (sweep, trials, Jobs, version counters; Events excluded) | "
        f"{writes / n:.2f} ({writes} in all) | |",
        f"| API reads per trial (GET/LIST of trials, Jobs, pods, ConfigMaps) | {sum(r['reads'].values()) / n:.2f} ("
        + ", ".join(f"{verb} {res} {c / n:.2f}" for (verb, res), c in sorted(r["reads"].items())) + ") | |",
        f"| operator CPU time (user + system), the sweep from start to end | {r['cpu_s']:.1f} s "
        f"({1000 * r['cpu_s'] / n:.0f} ms per trial) | |",
        f"| operator peak RSS (VmHWM) | {r['hwm_mib']:.0f} MiB | <= {TARGETS['hwm_mib']:.0f} MB |",
        "",
        "| verb | resource | subresource | HTTP code | requests | per trial |",
        "|---|---|---|---|---:|---:|",
    ]
    for (verb, resource, sub, code), count in sorted(r["writes"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {verb} | {resource} | {sub or '-'} | {code} | {count} | {count / n:.2f} |")
    lines += ["",
              f"- Ratio <= {TARGETS['ratio']}: {met(ratio <= TARGETS['ratio'])} ({ratio:.2f}). Where the time "
              f"goes: the sweep's own part, its {n} trials existing, took {r['trials_s'] / r['direct_s']:.2f}x the "
              f"baseline; the rest is each trial's job path (a version counter, the Job, a status write, then "
              f"the status syncs of trials already Running, competing for the same API server), the path of "
              f"any SeqTrainingJob (the operator section above). `SEQMODEL_OPERATOR_API_QPS=0 {COMMAND}` "
              f"shows the token bucket is not what limits it.",
              f"- Peak RSS <= {TARGETS['hwm_mib']:.0f} MB: {met(r['hwm_mib'] <= TARGETS['hwm_mib'])} "
              f"({r['hwm_mib']:.0f} MiB)."]
    return "\n".join(lines + closing_lines(r, start_s))


def main() -> None:
    run_bench("sweep", TRIALS, Options(kwok_nodes=KWOK_NODES), 8, measure, report,
              f"Sweeps: a {TRIALS}-trial SeqSweep against {TRIALS} Jobs created directly", COMMAND)
