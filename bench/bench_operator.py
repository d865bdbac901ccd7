"""The operator under a burst: 200 SeqTrainingJobs applied at once, on a freshly started local cluster.

The operator runs as a subprocess (`python -m seqmodel_operator`) with the admin kubeconfig, placing
pods on the kwok nodes, where they finish at once with exit code 0. Every job has its own hparams (its
own canonical name, so its own version counter): the realistic worst case for API writes. Measured:
- CR -> child Job latency: when the bench's create call returned, to when a watch on batch Jobs saw the
  job's child ADDED (both on the bench's clock); p50, p99, max; and the time until all are Succeeded;
- the operator's API writes per job, from the apiserver's `apiserver_request_total` counters before and
  after (writes to seqtrainingjobs, jobs without subresource and configmaps, minus the bench's own
  creates), and its Events, listed by their reporting component (every component writes Events);
- the operator's RSS when idle and its peak (VmHWM) after the burst;
- for diagnosis: API reads per job, the operator's CPU time, warnings in its log (.cluster/bench/logs/).
Set SEQMODEL_BENCH_KUBECONFIG to use a running local cluster instead of starting one in .cluster/bench.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from bench.cluster import REPO, Options, admin_client, bench_cluster, free_ports, new_namespace
from bench.report import write_section
from seqmodel.contract import GROUP, JOB_PLURAL, SWEEP_PLURAL, VERSION
from seqmodel_operator.constants import LABEL_PARENT, LABEL_PARENT_UID
from seqmodel_operator.settings import Settings

JOBS = 200
CLIENT_THREADS = 8
KWOK_NODES = 4
KWOK_GPUS = 64  # per node: 4 x 64 = 256 GPUs, room for all 200 one-GPU pods at once
TIMEOUT = 600.0  # seconds for the whole burst to finish
QUIET = 3.0  # seconds without new writes that count as "settled"
RUN_FOR = "20s"  # how long each pod runs on its kwok node
OUTPUT_CLAIM = "bench-output"
COMPONENT = "seqmodel-operator"  # settings.posting.reporting_component in seqmodel_operator/handlers.py
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
COMMAND = ".venv/bin/python -m bench operator"
TARGETS = {"p50": 0.5, "p99": 2.0, "writes": 4.0, "hwm_mib": 150.0}

# --- pure helpers (tests/unit/test_bench_operator.py) ------------------------------------------------

RequestKey = tuple[str, str, str, str, str]  # verb, group, resource, subresource, code
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_request_totals(text: str) -> Counter[RequestKey]:
    """`apiserver_request_total` from a Prometheus text exposition, summed over the labels we do not key by."""
    totals: Counter[RequestKey] = Counter()
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        key = tuple(labels.get(k, "") for k in ("verb", "group", "resource", "subresource", "code"))
        totals[key] += int(float(m["value"]))  # type: ignore[index]
    return totals


def is_operator_write(verb: str, group: str, resource: str, subresource: str) -> bool:
    """Writes only the operator makes here: its resources (any subresource), Job objects (the Job
    controller writes jobs/status, not jobs) and ConfigMaps (the version counters)."""
    if verb not in WRITE_VERBS:
        return False
    return ((group == GROUP and resource in (JOB_PLURAL, SWEEP_PLURAL))
            or (group, resource, subresource) == ("batch", "jobs", "") or (group, resource) == ("", "configmaps"))


def operator_writes(before: Counter[RequestKey], after: Counter[RequestKey], own_creates: int,
                    own_plural: str = JOB_PLURAL) -> Counter[tuple[str, str, str, str]]:
    """(verb, resource, subresource, code) -> count of the operator's writes between two scrapes; the
    bench's `own_creates` successful POSTs of `own_plural` are taken off."""
    out: Counter[tuple[str, str, str, str]] = Counter()
    for key, value in after.items():
        verb, group, resource, subresource, code = key
        delta = value - before.get(key, 0)
        if delta and is_operator_write(verb, group, resource, subresource):
            out[(verb, resource, subresource, code)] += delta
    own = ("POST", own_plural, "", "201")
    out[own] -= own_creates
    if out[own] <= 0:
        del out[own]
    return out


def operator_reads(before: Counter[RequestKey], after: Counter[RequestKey]) -> Counter[tuple[str, str]]:
    """(verb, resource) -> GETs and LISTs of the objects the operator reads between two scrapes. Other
    components read these through watches, so this is the operator's, plus the bench's two initial LISTs
    and, on a fresh cluster, the garbage collector's owner GETs (about one per Job until it watches the
    new CRD)."""
    out: Counter[tuple[str, str]] = Counter()
    for (verb, group, resource, subresource, code), value in after.items():
        if verb in ("GET", "LIST") and not subresource and (group, resource) in (
                (GROUP, JOB_PLURAL), ("batch", "jobs"), ("", "pods"), ("", "configmaps")):
            out[(verb, resource)] += value - before.get((verb, group, resource, subresource, code), 0)
    return +out


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the smallest value with at least q% of values at or below it."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def proc_cpu_seconds(stat: str, ticks: int) -> float:
    """User + system CPU time from /proc/<pid>/stat (fields 14 and 15, after the command in parentheses)."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_status_kib(text: str, field: str) -> int:
    """A `kB` field (VmRSS, VmHWM) of /proc/<pid>/status."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise KeyError(field)


# --- the cluster side ----------------------------------------------------------------------------------

def training_job(name: str, lr: float) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SeqTrainingJob", "metadata": {"name": name},
            "spec": {"mode": "train", "hparams": {"lr": lr, "max_steps": 100}, "resources": {"gpus": 1}}}


def scrape(api: client.ApiClient) -> Counter[RequestKey]:
    method, url, headers, _, _ = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"],
                                                      header_params={"Accept": "text/plain"})
    response = api.call_api(method, url, headers, _request_timeout=30)
    response.read()
    return parse_request_totals(response.data.decode())


def apply_crds(api: client.ApiClient) -> None:
    import yaml

    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted((REPO / "manifests" / "crd").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        names.append(body["metadata"]["name"])
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as err:
            if err.status != 409:
                raise
    deadline = time.monotonic() + 60
    for name in names:
        while not any(c.type == "Established" and c.status == "True"
                      for c in ext.read_custom_resource_definition(name).status.conditions or []):
            if time.monotonic() > deadline:
                raise RuntimeError(f"bench operator: CRD {name} not Established after 60 s")
            time.sleep(0.2)


def create_claim(api: client.ApiClient, ns: str) -> None:
    """The output claim every job mounts; the scheduler places pods only once it is bound."""
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": OUTPUT_CLAIM},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    deadline = time.monotonic() + 60
    while core.read_namespaced_persistent_volume_claim(OUTPUT_CLAIM, ns).status.phase != "Bound":
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench operator: claim {ns}/{OUTPUT_CLAIM} not Bound after 60 s")
        time.sleep(0.2)


def running_template(directory: Path) -> Path:
    """An admin override of the Job template (the documented mechanism) whose pods run RUN_FOR on kwok
    nodes, as training does, instead of finishing at once: the burst measures creating Jobs, not a
    burst of creations and completions at the same moment."""
    from seqmodel_operator.render import JOB_TEMPLATE, PACKAGE_TEMPLATES

    text = (PACKAGE_TEMPLATES / JOB_TEMPLATE).read_text()
    pod_meta = "    metadata:\n      labels: {{ labels|tojson }}\n      annotations: {{ annotations|tojson }}\n"
    assert pod_meta in text, "the packaged template changed: update bench_operator.running_template"
    run_for = ("    metadata:\n      labels: {{ labels|tojson }}\n      annotations:\n"
               f"        kwok.seqmodel.dev/run-for: {RUN_FOR}\n"
               "        {%- for key, value in annotations.items() %}\n"
               "        {{ key|tojson }}: {{ value|tojson }}\n"
               "        {%- endfor %}\n")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / JOB_TEMPLATE).write_text(text.replace(pod_meta, run_for))
    return directory


class Operator:
    """`python -m seqmodel_operator` as a subprocess, with its log in a file."""

    def __init__(self, kubeconfig: str, log: Path, settings: Mapping[str, str] | None = None) -> None:
        self.port = free_ports(1)[0]
        self.log = log
        env = {**os.environ, **(settings or {}), "KUBECONFIG": kubeconfig,
               "SEQMODEL_OPERATOR_NODE_SELECTOR": json.dumps({"type": "kwok"}),
               "SEQMODEL_OPERATOR_TOLERATIONS": json.dumps([KWOK_TOLERATION]),
               "SEQMODEL_OPERATOR_OUTPUT_CLAIM": OUTPUT_CLAIM}
        env["SEQMODEL_OPERATOR_TEMPLATES_DIR"] = str(running_template(log.parent / "templates"))
        self.config = Settings.from_env(env)  # what the operator reads, other SEQMODEL_OPERATOR_* included
        argv = [sys.executable, "-m", "seqmodel_operator", "--all-namespaces",
                "--liveness", f"http://127.0.0.1:{self.port}/healthz", "--log-format", "json"]
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench operator: the operator exited ({self.proc.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"bench operator: no /healthz after {timeout:.0f} s; see {self.log}")
            time.sleep(0.2)

    def memory_kib(self, field: str) -> int:
        return proc_status_kib(Path(f"/proc/{self.proc.pid}/status").read_text(), field)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(Path(f"/proc/{self.proc.pid}/stat").read_text(), os.sysconf("SC_CLK_TCK"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_problems(self) -> Counter[str]:
        """Log lines at warning level or above, by message start (kopf's JSON logs)."""
        found: Counter[str] = Counter()
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if str(rec.get("severity", rec.get("levelname", ""))).lower() in ("warning", "warn", "error", "critical"):
                found[str(rec.get("message", ""))[:80]] += 1
        return found


class Watcher(threading.Thread):
    """Watches one list in the namespace and calls `on(event_type, raw_object, now)` until `done()`."""

    def __init__(self, list_fn: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any],
                 on: Callable[[str, dict, float], None], done: Callable[[], bool]) -> None:
        super().__init__(daemon=True)
        self.list_fn, self.args, self.kwargs, self.on, self.done = list_fn, args, dict(kwargs), on, done
        self.w = watch.Watch()
        self.rv = self._list()["metadata"]["resourceVersion"]
        self.error: BaseException | None = None

    def _list(self) -> dict:
        return json.loads(self.list_fn(*self.args, _preload_content=False, **self.kwargs).data)

    def run(self) -> None:
        try:
            while not self.done():
                for ev in self.w.stream(self.list_fn, *self.args, resource_version=self.rv, timeout_seconds=30,
                                        deserialize=False, **self.kwargs):
                    now = time.monotonic()
                    obj = ev["raw_object"] if "raw_object" in ev else ev["object"]
                    if ev["type"] == "ERROR":
                        raise RuntimeError(f"watch error: {obj}")
                    self.rv = obj["metadata"].get("resourceVersion", self.rv)
                    if ev["type"] != "BOOKMARK":
                        self.on(ev["type"], obj, now)
                    if self.done():
                        self.w.stop()
                        return
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            self.error = err


class Burst:
    """What the watches saw: when each job's child Job appeared and when each job finished."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.lock = threading.Lock()
        self.created: dict[str, float] = {}
        self.child_seen: dict[str, float] = {}
        self.finished: dict[str, tuple[str, float]] = {}

    def on_job(self, type_: str, obj: dict, now: float) -> None:
        parent = (obj["metadata"].get("labels") or {}).get(LABEL_PARENT)
        if type_ == "ADDED" and parent in self.names:
            with self.lock:
                self.child_seen.setdefault(parent, now)

    def on_stj(self, type_: str, obj: dict, now: float) -> None:
        name, phase = obj["metadata"]["name"], (obj.get("status") or {}).get("phase")
        if type_ == "ADDED" and name in self.names:
            with self.lock:
                self.created.setdefault(name, now)
        if name in self.names and phase in ("Succeeded", "Failed"):
            with self.lock:
                self.finished.setdefault(name, (phase, now))

    def all_seen(self) -> bool:
        return len(self.child_seen) >= len(self.names)

    def all_finished(self) -> bool:
        return len(self.finished) >= len(self.names)


def run_jobs(api: client.ApiClient, kubeconfig: str, ns: str, jobs: list[tuple[str, float]],
             timeout: float) -> tuple[Burst, float, float]:
    """Apply `jobs` (name, lr) with one `kubectl apply -f -`, as a user applies a directory of manifests;
    wait until all are finished. Returns what the watches saw, the start time and when kubectl returned."""
    custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
    burst = Burst([name for name, _ in jobs])
    watchers = [
        Watcher(batch.list_namespaced_job, (ns,), {"label_selector": LABEL_PARENT_UID}, burst.on_job, burst.all_seen),
        Watcher(custom.list_namespaced_custom_object, (GROUP, VERSION, ns, JOB_PLURAL), {}, burst.on_stj,
                burst.all_finished),
    ]
    for w in watchers:
        w.start()
    time.sleep(1.0)  # let both watches connect, so that an event's arrival is its time

    manifests = yaml.safe_dump_all([training_job(*job) for job in jobs])
    t0 = time.monotonic()
    subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "-n", ns, "apply", "-f", "-"], input=manifests,
                   text=True, check=True, capture_output=True, timeout=timeout)
    applied = time.monotonic()
    deadline = t0 + timeout
    for w in watchers:
        w.join(max(0.0, deadline - time.monotonic()))
        if w.error:
            raise RuntimeError(f"bench operator: a watch failed: {w.error}") from w.error
    if not burst.all_finished():
        raise RuntimeError(f"bench operator: {len(burst.child_seen)} child Jobs seen and {len(burst.finished)} of "
                           f"{len(jobs)} jobs finished within {timeout:.0f} s")
    return burst, t0, applied


def wait_quiet(api: client.ApiClient, quiet: float = QUIET, timeout: float = 60.0) -> Counter[RequestKey]:
    """Scrape until the operator's writes and all Event writes stay the same for `quiet` seconds."""
    def relevant(totals: Counter[RequestKey]) -> int:
        return sum(v for (verb, group, resource, sub, _), v in totals.items()
                   if is_operator_write(verb, group, resource, sub) or (verb in WRITE_VERBS and resource == "events"))

    last, since, deadline = scrape(api), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(1.0)
        now = scrape(api)
        if relevant(now) != relevant(last):
            since = time.monotonic()
        last = now
    return last


def operator_events(api: client.ApiClient, ns: str) -> Counter[str]:
    """The operator's Events in the namespace, by reason (core v1 Events carry the reporting component)."""
    items = json.loads(client.CoreV1Api(api).list_namespaced_event(ns, _preload_content=False).data)["items"]
    return Counter(e.get("reason", "") for e in items
                   if COMPONENT in (e.get("reportingComponent"), (e.get("source") or {}).get("component")))


def measure(api: client.ApiClient, kubeconfig: str, logs: Path, jobs: int = JOBS) -> dict[str, Any]:
    apply_crds(api)
    ns = new_namespace(api, "bench-operator")
    create_claim(api, ns)
    operator = Operator(kubeconfig, logs / "seqmodel-operator.log")
    try:
        operator.wait_healthy()
        # One job first, so that imports, templates and watches are warm and the idle RSS is a working one.
        run_jobs(api, kubeconfig, ns, [("warmup", 0.5)], timeout=120)
        before = wait_quiet(api)
        events_before = operator_events(api, ns)
        idle_kib, cpu0 = operator.memory_kib("VmRSS"), operator.cpu_seconds()
        burst, t0, applied = run_jobs(api, kubeconfig, ns,
                                      [(f"bench-{i:03d}", round(1e-4 * (i + 1), 6)) for i in range(jobs)], TIMEOUT)
        after = wait_quiet(api)
        events = operator_events(api, ns) - events_before
        hwm_kib = operator.memory_kib("VmHWM")
        cpu_s = operator.cpu_seconds() - cpu0
    finally:
        operator.stop()
        try:
            client.CoreV1Api(api).delete_namespace(ns)
        except ApiException:
            pass
    latencies = [burst.child_seen[n] - burst.created[n] for n in burst.names]
    return {
        "jobs": jobs, "latencies": latencies,
        "created_s": applied - t0,
        "children_s": max(burst.child_seen.values()) - t0,
        "finished_s": max(t for _, t in burst.finished.values()) - t0,
        "failed": sorted(n for n, (phase, _) in burst.finished.items() if phase != "Succeeded"),
        "writes": operator_writes(before, after, jobs), "reads": operator_reads(before, after), "events": events,
        "cpu_s": cpu_s,
        "idle_mib": idle_kib / 1024, "hwm_mib": hwm_kib / 1024,
        "config": operator.config,
        "log_problems": operator.log_problems(), "log": operator.log,
    }


# --- the report ----------------------------------------------------------------------------------------

def report(r: Mapping[str, Any], start_s: float | None) -> str:
    n, lat = r["jobs"], r["latencies"]
    p50, p99, worst = percentile(lat, 50), percentile(lat, 99), max(lat)
    writes = sum(r["writes"].values())
    per_job, events = writes / n, sum(r["events"].values())

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    config = r["config"]
    requests = (writes + sum(r["reads"].values())) / n
    lines = [
        f"{n} SeqTrainingJobs applied at once (one `kubectl apply -f -` of {n} documents), each with its "
        f"own `lr` (its own canonical name and version counter), 1 GPU each; latency is from the watch "
        f"seeing the SeqTrainingJob ADDED to it seeing the child Job ADDED. The operator as a subprocess "
        f"(`python -m seqmodel_operator --all-namespaces --log-format json`, admin kubeconfig; worker_limit "
        f"{config.worker_limit}, api_qps {config.api_qps:g}, api_burst {config.api_burst}) placing pods on "
        f"{KWOK_NODES} kwok nodes with {KWOK_GPUS} GPUs each (raised from 8 so that all {n} pods fit at once), "
        f"where they run {RUN_FOR} and succeed (an admin template override adds kwok's run-for annotation: "
        f"training does not end within a second). One warm-up job ran before the burst. Machine: 2 shared cores running the "
        f"whole control plane, the operator and the bench client (and whatever else runs). One run.",
        "",
        "| measure | value | target |",
        "|---|---:|---|",
        f"| CR created -> child Job seen, p50 | {p50:.2f} s | <= {TARGETS['p50']} s |",
        f"| CR created -> child Job seen, p99 | {p99:.2f} s | <= {TARGETS['p99']} s |",
        f"| CR created -> child Job seen, max | {worst:.2f} s | |",
        f"| `kubectl apply` of all {n} (the bench's own writes; baseline) | {r['created_s']:.1f} s | |",
        f"| all {n} child Jobs seen (from the first create) | {r['children_s']:.1f} s | |",
        f"| all {n} SeqTrainingJobs Succeeded (from the first create) | {r['finished_s']:.1f} s | |",
        f"| operator API writes per job, Events excluded | {per_job:.2f} ({writes} in all) "
        f"| <= {TARGETS['writes']:.0f} |",
        f"| operator Events per job | {events / n:.2f} ({events} in all: "
        + ", ".join(f"{k} {v}" for k, v in sorted(r["events"].items())) + ") | |",
        f"| API reads per job (GET/LIST; the operator's, and the garbage collector's owner GETs while it does "
        f"not watch the new CRD yet) | {sum(r['reads'].values()) / n:.2f} ("
        + ", ".join(f"{verb} {res} {c / n:.2f}" for (verb, res), c in sorted(r["reads"].items())) + ") | |",
        f"| operator CPU time (user + system) for the burst | {r['cpu_s']:.1f} s "
        f"({1000 * r['cpu_s'] / n:.0f} ms per job) | |",
        f"| operator RSS when idle (after the warm-up job) | {r['idle_mib']:.0f} MiB | |",
        f"| operator peak RSS (VmHWM) after the burst | {r['hwm_mib']:.0f} MiB | <= {TARGETS['hwm_mib']:.0f} MB |",
        "",
        "Where the operator's writes go (`apiserver_request_total` before and after, once nothing changed for "
        f"{QUIET:.0f} s; the bench's own {n} creates taken off):",
        "",
        "| verb | resource | subresource | HTTP code | requests | per job |",
        "|---|---|---|---|---:|---:|",
    ]
    for (verb, resource, sub, code), count in sorted(r["writes"].items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {verb} | {resource} | {sub or '-'} | {code} | {count} | {count / n:.2f} |")
    lines += [
        "",
        f"- CR-to-Job p50 <= {TARGETS['p50']} s: {met(p50 <= TARGETS['p50'])} ({p50:.2f} s).",
        f"- CR-to-Job p99 <= {TARGETS['p99']} s: {met(p99 <= TARGETS['p99'])} ({p99:.2f} s).",
        f"- Writes per job excluding Events <= {TARGETS['writes']:.0f}: {met(per_job <= TARGETS['writes'])} "
        f"({per_job:.2f}). A job that runs costs one version claim (the ConfigMap counter), one Job, and "
        f"one status write per phase it passes through (Pending, with kopf's bookkeeping in the same "
        f"request; Running; Succeeded), plus status writes redone after a 409 conflict. Getting to 4 "
        f"would mean hiding a phase from `kubectl get stj`, or a version primitive without a shared "
        f"object (see operator/README.md, Versions).",
        f"- Peak RSS <= {TARGETS['hwm_mib']:.0f} MB: {met(r['hwm_mib'] <= TARGETS['hwm_mib'])} "
        f"({r['hwm_mib']:.0f} MiB).",
    ]
    if config.api_qps > 0:
        drain = max(0.0, requests * n - config.api_burst) / config.api_qps
        lines.append(f"- The operator's token bucket alone takes at least {drain:.0f} s for ~{requests:.0f} requests "
                     f"per job (the reads and writes above, most of them through it) x {n} jobs at api_qps "
                     f"{config.api_qps:g} after a burst of {config.api_burst}; "
                     f"`SEQMODEL_OPERATOR_API_QPS=0 {COMMAND}` measures without it.")
    if r["failed"]:
        lines.append(f"- {len(r['failed'])} job(s) ended Failed: {', '.join(r['failed'][:5])}.")
    return "\n".join(lines + closing_lines(r, start_s))


def closing_lines(r: Mapping[str, Any], start_s: float | None) -> list[str]:
    """The operator's log problems and the cluster's start time, the last lines of a report."""
    lines = []
    if r["log_problems"]:
        lines.append("- Operator log warnings/errors: " + "; ".join(
            f"{count}x {msg}" for msg, count in r["log_problems"].most_common(5)) + ".")
    if start_s is not None:
        lines.append(f"\nCluster start with warm binaries (`hack/cluster.py up`, same run): {start_s:.1f} s.")
    return lines


def run_bench(name: str, full: int, options: Options, client_threads: int,
              measure_fn: Callable[[client.ApiClient, str, Path, int], dict[str, Any]],
              report_fn: Callable[[Mapping[str, Any], float | None], str], title: str, command: str) -> None:
    """Measure on a fresh cluster and write BENCHMARKS.md's section `name`, unless a smaller count was
    asked for (SEQMODEL_BENCH_<NAME>_COUNT, for development)."""
    count = int(os.environ.get(f"SEQMODEL_BENCH_{name.upper()}_COUNT", full))
    with bench_cluster(options) as cluster:
        api = admin_client(cluster.kubeconfig, client_threads)
        try:
            result = measure_fn(api, cluster.kubeconfig, cluster.logs, count)
        finally:
            api.close()
    body = report_fn(result, cluster.start_s)
    print(body)
    if count == full:
        write_section(name, title, command, body)
    else:
        print(f"bench {name}: {count}, not {full}; BENCHMARKS.md left as it is", file=sys.stderr)
    print(f"bench {name}: operator log in {result['log']}", file=sys.stderr)


def main() -> None:
    run_bench("operator", JOBS, Options(kwok_nodes=KWOK_NODES, kwok_gpus=KWOK_GPUS), CLIENT_THREADS, measure, report,
              f"Operator: {JOBS} SeqTrainingJobs at once", COMMAND)
