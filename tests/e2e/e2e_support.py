"""Small helpers shared by the e2e tests: polling with a clear failure, and manifest builders."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))  # the local cluster's package, localcluster

from localcluster.bootstrap import default_sa_exists  # noqa: E402
from localcluster.hoststate import KUBELET_SYSCTLS  # noqa: E402
from localcluster.images import ctr_command  # noqa: E402
from localcluster.procs import process_start_time  # noqa: E402

T = TypeVar("T")
UP_TIMEOUT = 240  # seconds for `cluster.py up`; a warm start takes ~10 s, a loaded CI machine may need more

KWOK_PLACEMENT = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
}


def run_cli(*args: str, timeout: float = UP_TIMEOUT) -> subprocess.CompletedProcess:
    """`hack/cluster.py <args>` in a subprocess, so the cluster's processes never become pytest's children."""
    return subprocess.run([sys.executable, str(REPO / "hack" / "cluster.py"), *args], capture_output=True,
                          text=True, timeout=timeout)


def wait_for(fn: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `fn` until it returns something truthy and return it; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def job(name: str, pod_spec: dict, annotations: dict | None = None, backoff_limit: int = 0, **spec) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"metadata": {"annotations": annotations or {}},
                         "spec": {"restartPolicy": "Never", **pod_spec}},
            **spec,
        },
    }


def job_condition(batch: client.BatchV1Api, ns: str, name: str) -> str | None:
    """"Complete" or "Failed" once the Job has finished, else None."""
    conds = batch.read_namespaced_job_status(name, ns).status.conditions or []
    for c in conds:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return c.type
    return None


def job_pods(core: client.CoreV1Api, ns: str, name: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"job-name={name}").items


def pod_phase(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    try:
        return core.read_namespaced_pod(name, ns).status.phase
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def pod_gone(core: client.CoreV1Api, ns: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, ns)
        return False
    except ApiException as e:
        if e.status == 404:
            return True
        raise


def container_pid(pod: client.V1Pod, containerd: Path) -> int:
    """The host PID of the pod's first container (its init process), as node-0's containerd (at socket
    `containerd`) reports its task."""
    cid = pod.status.container_statuses[0].container_id
    assert cid and cid.startswith("containerd://"), cid
    res = subprocess.run(ctr_command(str(containerd), "k8s.io", "tasks", "ls"), capture_output=True, text=True,
                         check=True, timeout=30)
    pids = [int(line.split()[1]) for line in res.stdout.splitlines()[1:]
            if line.split()[0] == cid.removeprefix("containerd://")]
    assert pids, f"containerd has no task of {cid}"
    return pids[0]


def running_pid(core: client.CoreV1Api, ns: str, name: str, containerd: Path, timeout: float = 60) -> int:
    """Wait until the pod's first container runs and return its host PID (`container_pid`)."""
    def pod_running():
        pod = core.read_namespaced_pod(name, ns)
        statuses = pod.status.container_statuses or []
        return pod.status.phase == "Running" and statuses and statuses[0].state.running and pod

    return container_pid(wait_for(pod_running, timeout, f"pod {ns}/{name} to be Running"), containerd)


def pid_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    return process_start_time(pid) is not None


def pvc(name: str, size: str = "1Gi") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}


def new_namespace(core: client.CoreV1Api, hint: str) -> str:
    """Create a namespace and wait for its default ServiceAccount (pods are refused until it exists)."""
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"seqmodel.dev/e2e": "true"}}})

    wait_for(lambda: default_sa_exists(core.api_client, name), 30, f"ServiceAccount {name}/default")
    return name


# --- the operator (issue 4) ------------------------------------------------------------------------
CRD_DIR = REPO / "manifests" / "crd"
EXAMPLES = REPO / "manifests" / "examples"
SAMPLE_DATA = REPO / "data" / "genome"
OPERATOR_GLOB = "e2e-op-*"  # namespaces the session's operator watches (new_namespace(core, "op-..."))
STJ_API = ("seqmodel.dev", "v1alpha1")
STJ_PLURAL = "seqtrainingjobs"
SWEEP_PLURAL = "seqsweeps"
LABEL_PARENT_UID = "seqmodel.dev/job-uid"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorProcess:
    """`python -m seqmodel_operator` started by the tests: a child process with its log in a file.

    Its PID and kernel start time go to `<log name>.pid` next to the kubeconfig (logs/ is rotated by
    `up`), so a later session can stop one that a killed session left behind, and never a look-alike
    that reused the PID.
    """

    def __init__(self, kubeconfig: Path, namespaces: list[str], log: Path, env: dict[str, str] | None = None,
                 verbose: bool = False):
        self.kubeconfig, self.namespaces, self.log, self.env = kubeconfig, namespaces, log, env or {}
        self.verbose = verbose  # kopf's debug log: which watch-streams it starts (see watching_new_namespaces)
        self.liveness = ""
        self.proc: subprocess.Popen | None = None

    @property
    def pid_file(self) -> Path:
        return self.kubeconfig.parent / f"{self.log.stem}.pid"

    def start(self, timeout: float = 60) -> "OperatorProcess":
        stop_stale(self.pid_file)
        self.liveness = f"http://127.0.0.1:{free_port()}/healthz"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEQMODEL_OPERATOR_")}
        env.update(KUBECONFIG=str(self.kubeconfig), PYTHONUNBUFFERED="1", **self.env)
        argv = [sys.executable, "-m", "seqmodel_operator", "--liveness", self.liveness, "--log-format", "json"]
        for ns in self.namespaces:
            argv += ["--namespace", ns]
        if self.verbose:
            argv.append("--verbose")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            out.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=env, cwd=REPO, start_new_session=True)
        start_time = wait_for(lambda: process_start_time(self.proc.pid), 10, "the operator process to start")
        self.pid_file.write_text(f"{self.proc.pid} {start_time}\n")
        wait_for(lambda: self.healthy() or not self.alive() and "exited", timeout, f"the operator at {self.liveness}")
        assert self.alive(), f"the operator exited with {self.proc.returncode}; see {self.log}"
        return self

    def watching_new_namespaces(self, core: client.CoreV1Api, hint: str, timeout: float = 60) -> None:
        """Return once the operator (started `verbose`, with a namespace glob) sees new namespaces as they come.

        kopf lists namespaces, then starts its namespace watch with a listing of its own whose objects it
        ignores: a namespace created between the two is not watched until it next changes (seen: a test's
        namespace made right after the operator's start went unnoticed for the test's 60 s). So make one
        matching namespace, and touch it until kopf starts a watch-stream in it; from then on it streams.
        """
        probe = new_namespace(core, hint)
        try:
            def started() -> bool:
                if f"in {probe!r}" in self.log.read_text(errors="replace"):
                    return True
                core.patch_namespace(probe, {"metadata": {"labels": {"e2e.seqmodel.dev/touch": str(time.monotonic_ns())}}})
                return False
            wait_for(started, timeout, f"the operator to watch namespace {probe}", interval=1.0)
        finally:
            core.delete_namespace(probe)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        """The liveness endpoint answers 200."""
        try:
            with urllib.request.urlopen(self.liveness, timeout=5) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.pid_file.unlink(missing_ok=True)


def stop_stale(pid_file: Path) -> None:
    """SIGKILL the operator recorded in `pid_file` if that very process still runs."""
    try:
        pid, start_time = (int(x) for x in pid_file.read_text().split())
    except (FileNotFoundError, ValueError):
        return
    if process_start_time(pid) == start_time:
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, f"stale operator {pid} to exit")
    pid_file.unlink(missing_ok=True)


def install_crds(kubectl: Callable[..., subprocess.CompletedProcess]) -> None:
    """`kubectl apply -f manifests/crd/` and wait until the API server serves them (Established)."""
    for args, timeout in ((("apply", "-f", str(CRD_DIR)), 60),
                          (("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR)), 90)):
        res = kubectl(*args, check=False, timeout=timeout)
        assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stderr.strip()}"


def kubectl_apply(kubectl: Callable[..., subprocess.CompletedProcess], ns: str, manifest: dict,
                  check: bool = False) -> subprocess.CompletedProcess:
    """`kubectl apply -n NS -f -` with the manifest as JSON (kubectl's default strict, server-side
    field validation); the CompletedProcess, whatever the outcome unless `check`."""
    return kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest), check=check)


def load_example(name: str, **claims: str) -> dict:
    """manifests/examples/<name>.yaml with its data and output claims (a sweep's: its template's) swapped
    for a test's own."""
    manifest = yaml.safe_load((EXAMPLES / name).read_text())
    spec = manifest["spec"]
    if manifest["kind"] == "SeqSweep":  # a sweep's trials take their claims from its template
        spec = spec["template"]
    if "data" in claims:
        spec["data"]["claim"] = claims["data"]
    if "output" in claims:
        spec["output"]["claim"] = claims["output"]
    return manifest


def stj(name: str, spec: dict) -> dict:
    return {"apiVersion": "/".join(STJ_API), "kind": "SeqTrainingJob", "metadata": {"name": name}, "spec": spec}


def get_object(api: client.ApiClient, ns: str, plural: str, name: str) -> dict | None:
    """One of our custom objects (plural seqtrainingjobs or seqsweeps), None when it does not exist."""
    try:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(*STJ_API, ns, plural, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def get_stj(api: client.ApiClient, ns: str, name: str) -> dict | None:
    return get_object(api, ns, STJ_PLURAL, name)


def stj_status(api: client.ApiClient, ns: str, name: str) -> dict:
    return (get_stj(api, ns, name) or {}).get("status") or {}


def wait_stj_replicates(api: client.ApiClient, ns: str, name: str, timeout: float = 120) -> dict:
    """Wait until the SeqTrainingJob's status lists its replicates (their versions and paths); the object."""
    return wait_for(lambda: (o := get_stj(api, ns, name)) and (o.get("status") or {}).get("replicates") and o,
                    timeout, f"the replicates in the status of {ns}/{name}")


def wait_phase(api: client.ApiClient, ns: str, plural: str, name: str, phases: str | tuple[str, ...],
               timeout: float) -> dict:
    """Wait until the object's status.phase is one of `phases` (a terminal phase other than the ones asked
    for fails at once, with the status in the message); return the object."""
    phases = (phases,) if isinstance(phases, str) else phases
    kind = "SeqSweep" if plural == SWEEP_PLURAL else "SeqTrainingJob"

    def reached():
        obj = get_object(api, ns, plural, name) or {}
        phase = (obj.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and phase not in phases:
            raise AssertionError(f"{kind} {ns}/{name} ended {phase}: {json.dumps(obj.get('status'))}")
        return phase in phases and obj

    return wait_for(reached, timeout, f"{kind} {ns}/{name} to be {' or '.join(phases)}", interval=1)


def wait_stj_phase(api: client.ApiClient, ns: str, name: str, phases: str | tuple[str, ...],
                   timeout: float) -> dict:
    return wait_phase(api, ns, STJ_PLURAL, name, phases, timeout)


def child_jobs(batch: client.BatchV1Api, ns: str, parent_uid: str) -> list[client.V1Job]:
    return batch.list_namespaced_job(ns, label_selector=f"{LABEL_PARENT_UID}={parent_uid}").items


@dataclass(frozen=True)
class Claims:
    """A test's data and output claims: PVCs in its namespace and their host directories."""

    data: str
    output: str
    volumes: Path

    @property
    def data_dir(self) -> Path:
        return self.volumes / self.data

    @property
    def output_dir(self) -> Path:
        return self.volumes / self.output

    def run_dir(self, status: dict, replicate: int = 0) -> Path:
        """Host directory of a replicate's version (status.replicates[i].outputPath on the output claim)."""
        return self.output_dir / status["replicates"][replicate]["outputPath"]


def make_claims(core: client.CoreV1Api, volumes: Path, ns: str) -> Claims:
    """PVCs `data-<ns>` and `out-<ns>` (claim directories are cluster-wide: names unique per test), the
    data claim seeded with the sample data as `data/genome/`."""
    claims = Claims(f"data-{ns}", f"out-{ns}", volumes)
    shutil.copytree(SAMPLE_DATA, claims.data_dir / "data" / "genome")
    for claim in (claims.data, claims.output):
        core.create_namespaced_persistent_volume_claim(ns, pvc(claim))
    return claims


def remove_claim_dirs(claims: Claims) -> None:
    for path in (claims.data_dir, claims.output_dir):
        shutil.rmtree(path, ignore_errors=True)


def stop_runs(api: client.ApiClient, ns: str, timeout: float = 120) -> None:
    """Delete the namespace's SeqTrainingJobs and Jobs and wait (best effort) until its pods are gone."""
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    try:
        client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(*STJ_API, ns, STJ_PLURAL)
        batch.delete_collection_namespaced_job(ns, propagation_policy="Background")
        core.delete_collection_namespaced_pod(ns)
    except ApiException as e:
        if e.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and core.list_namespaced_pod(ns).items:
        time.sleep(0.5)


# --- small runs on node-0 ----------------------------------------------------------------------------
RUN_TIMEOUT = 900  # seconds; a small run takes ~20 s on a quiet machine, minutes on a loaded one
# A small model that validates (2 batches: a count, as values > 1 are) and checkpoints every 10 steps.
SMALL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "dropout": 0.0, "seq_len": 100, "batch_size": 8,
         "lr": 0.002, "warmup_steps": 10, "max_steps": 100, "val_check_interval": 10, "limit_val_batches": 2,
         "log_every_n_steps": 5, "accelerator": "cpu"}


def small_job(name: str, claims: Claims, **spec: object) -> dict:
    return stj(name, {"hparams": dict(SMALL), "resources": {"gpus": 1, "cpu": 1, "memory": "2Gi"},
                      "data": {"claim": claims.data, "types": ["genome"]}, "output": {"claim": claims.output},
                      "backoffLimit": 2, **spec})


def trainer_pid(core: client.CoreV1Api, ns: str, job_name: str, containerd: Path) -> tuple[str, int]:
    """The running trainer of the Job's (only) pod: its name and host PID."""
    name = wait_for(lambda: [p.metadata.name for p in job_pods(core, ns, job_name)
                             if p.status.phase in ("Pending", "Running")], 120, f"a pod of {job_name}")[0]
    return name, running_pid(core, ns, name, containerd, timeout=RUN_TIMEOUT)


def first_checkpoint(run_dir: Path) -> Path:
    return wait_for(lambda: next(iter(sorted((run_dir / "checkpoints").glob("*.ckpt"))), None), RUN_TIMEOUT,
                    f"a checkpoint in {run_dir}", interval=0.5)


def trainer_log(core: client.CoreV1Api, ns: str, pod: client.V1Pod) -> str:
    """The trainer container's log, as `kubectl logs` serves it."""
    return core.read_namespaced_pod_log(pod.metadata.name, ns, container="trainer")


def trainer_image(images: dict[str, str]) -> dict[str, str]:
    """Operator settings (environment) that run training pods from the trainer image built here, which
    exists only in node-0's containerd."""
    return {"SEQMODEL_OPERATOR_IMAGE": images["trainer"], "SEQMODEL_OPERATOR_IMAGE_PULL_POLICY": "Never"}


# --- sweeps (issue 5) -----------------------------------------------------------------------------------
LABEL_SWEEP = "seqmodel.dev/sweep"
LABEL_SWEEP_UID = "seqmodel.dev/sweep-uid"
LABEL_TRIAL = "seqmodel.dev/trial"
TERMINAL = ("Succeeded", "Failed")


def sweep(name: str, spec: dict) -> dict:
    return {"apiVersion": "/".join(STJ_API), "kind": "SeqSweep", "metadata": {"name": name}, "spec": spec}


def get_sweep(api: client.ApiClient, ns: str, name: str) -> dict | None:
    return get_object(api, ns, SWEEP_PLURAL, name)


def wait_sweep_phase(api: client.ApiClient, ns: str, name: str, phases: str | tuple[str, ...],
                     timeout: float) -> dict:
    return wait_phase(api, ns, SWEEP_PLURAL, name, phases, timeout)


def trials_of(api: client.ApiClient, ns: str, sweep_name: str) -> list[dict]:
    """The sweep's trials (SeqTrainingJobs labelled with its name), by trial index."""
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(
        *STJ_API, ns, STJ_PLURAL, label_selector=f"{LABEL_SWEEP}={sweep_name}")["items"]
    return sorted(items, key=lambda o: int(o["metadata"]["labels"][LABEL_TRIAL]))


def condition(obj: dict, type_: str) -> dict:
    """The object's status condition of `type_` ({} when it has none)."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


@dataclass(frozen=True)
class StjEvent:
    """One SeqTrainingJob event as a watch delivered it."""

    at: float  # arrival time on the watch's clock (time.monotonic() unless it was given another)
    type: str  # ADDED, MODIFIED, DELETED
    name: str
    phase: str  # status.phase, "" before the operator wrote one


class StjWatch:
    """Watches a namespace's SeqTrainingJobs in a thread (from before anything is created) and keeps every
    event: the exact order of the API server's writes, to check what held at every moment, not just at
    the end. Resumes from the last resourceVersion when the server ends a watch."""

    def __init__(self, api: client.ApiClient, ns: str, label_selector: str = "", field_selector: str = "",
                 clock: Callable[[], float] = time.monotonic):
        self.api, self.ns, self.clock = api, ns, clock
        self.selectors = {"label_selector": label_selector, "field_selector": field_selector}
        self.events: list[StjEvent] = []
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch-stj-{ns}")

    def __enter__(self) -> "StjWatch":
        custom = client.CustomObjectsApi(self.api)
        listed = custom.list_namespaced_custom_object(*STJ_API, self.ns, STJ_PLURAL, **self.selectors)
        self.version = listed["metadata"]["resourceVersion"]
        for obj in listed["items"]:
            self._record("ADDED", obj)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(15)

    def _record(self, type_: str, obj: dict) -> None:
        self.events.append(StjEvent(self.clock(), type_, obj["metadata"]["name"],
                                    (obj.get("status") or {}).get("phase") or ""))

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        try:
            while not self.stopped.is_set():
                w = watch.Watch()
                for event in w.stream(custom.list_namespaced_custom_object, *STJ_API, self.ns, STJ_PLURAL,
                                      resource_version=self.version, timeout_seconds=5, **self.selectors):
                    if event["type"] == "ERROR":
                        raise AssertionError(f"watch error: {event['raw_object']}")
                    obj = event["object"]
                    self.version = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._record(event["type"], obj)
                    if self.stopped.is_set():
                        w.stop()
        except BaseException as err:  # noqa: BLE001  reported by checked()
            self.error = err

    def checked(self) -> list[StjEvent]:
        """The events so far; fails if the watch broke (its history would have a gap)."""
        assert self.error is None, f"the watch of {self.ns}'s SeqTrainingJobs failed: {self.error!r}"
        return list(self.events)

    def active_counts(self) -> list[int]:
        """After each event: how many jobs existed and were not finished (Succeeded or Failed)."""
        phases: dict[str, str] = {}
        counts = []
        for e in self.checked():
            if e.type == "DELETED":
                phases.pop(e.name, None)
            else:
                phases[e.name] = e.phase
            counts.append(sum(p not in TERMINAL for p in phases.values()))
        return counts

    def added(self) -> list[StjEvent]:
        """The first event of each job, in order (a name seen again after DELETED counts again)."""
        seen: set[str] = set()
        out = []
        for e in self.checked():
            if e.type == "DELETED":
                seen.discard(e.name)
            elif e.name not in seen:
                seen.add(e.name)
                out.append(e)
        return out


class PhaseRecorder(StjWatch):
    """The history of one SeqTrainingJob's status.phase: every version of it the API server sends, an exact
    history of its writes. Times are wall clock, because they are compared with the API server's
    timestamps (same host)."""

    def __init__(self, api: client.ApiClient, ns: str, name: str):
        super().__init__(api, ns, field_selector=f"metadata.name={name}", clock=time.time)

    def phases(self) -> list[str]:
        """Distinct consecutive phases seen, in order."""
        out: list[str] = []
        for e in self.checked():
            if e.type != "DELETED" and e.phase and (not out or out[-1] != e.phase):
                out.append(e.phase)
        return out

    def first(self, phase: str) -> float | None:
        return next((e.at for e in self.checked() if e.phase == phase and e.type != "DELETED"), None)


# --- pods on kwok nodes that end as a trainer would ----------------------------------------------------
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
INJECTED_ERROR = "RuntimeError: injected failure"
_POD_META = "    metadata:\n      labels: {{ labels|tojson }}\n      annotations: {{ annotations|tojson }}\n"
_KWOK_POD_META = """    metadata:
      labels: {{ labels|tojson }}
      annotations:
        kwok.seqmodel.dev/run-for: RUN_FOR
        {%- if FAIL_ARG in run_args %}
        kwok.seqmodel.dev/exit-code: "1"
        kwok.seqmodel.dev/message: {{ {"status": "failed", "error": ERROR, "metrics": {}}|tojson|tojson }}
        {%- else %}
        kwok.seqmodel.dev/message: {% for arg in run_args if arg.startswith("--lr=") -%}
        {{ {"status": "succeeded", "metrics": {"val/loss": arg[5:]|float}}|tojson|tojson }}
        {%- else %}{{ {"status": "succeeded", "metrics": {}}|tojson|tojson }}{% endfor %}
        {%- endif %}
        {%- for key, value in annotations.items() %}
        {{ key|tojson }}: {{ value|tojson }}
        {%- endfor %}
"""


def kwok_template(directory: Path, run_for: str = "1s", fail_arg: str = "") -> Path:
    """An admin override of the Job template (SEQMODEL_OPERATOR_TEMPLATES_DIR; the bench's mechanism)
    whose pods, on kwok nodes, run `run_for` and end as the trainer would: a JSON run summary in the
    termination message with metric val/loss = the run's lr; or, when the trainer's arguments include
    `fail_arg` (e.g. "--dropout=0.5"), exit code 1 (retryable) with INJECTED_ERROR as the run's error."""
    from seqmodel_operator.render import JOB_TEMPLATE, PACKAGE_TEMPLATES

    text = (PACKAGE_TEMPLATES / JOB_TEMPLATE).read_text()
    assert _POD_META in text, "the packaged template changed: update e2e_support.kwok_template"
    meta = (_KWOK_POD_META.replace("RUN_FOR", json.dumps(run_for)).replace("FAIL_ARG", json.dumps(fail_arg))
            .replace("ERROR", json.dumps(INJECTED_ERROR)))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / JOB_TEMPLATE).write_text(text.replace(_POD_META, meta))
    return directory


def kwok_operator(kubeconfig: Path, namespaces: list[str], log: Path, **template: str) -> OperatorProcess:
    """An OperatorProcess (not started) that puts every pod on the kwok nodes, with `kwok_template(**template)`
    (in a directory next to its log) and trials started as fast as it can."""
    templates = kwok_template(log.parent / f"{log.stem}-templates", **template)
    return OperatorProcess(kubeconfig, namespaces, log, env={
        "SEQMODEL_OPERATOR_NODE_SELECTOR": json.dumps({"type": "kwok"}),
        "SEQMODEL_OPERATOR_TOLERATIONS": json.dumps([KWOK_TOLERATION]),
        "SEQMODEL_OPERATOR_TEMPLATES_DIR": str(templates),
        "SEQMODEL_OPERATOR_SWEEP_TRIAL_RATE": "0",  # no limit: parallelism is what holds trials back
    })


def example_job_succeeds(kubectl: Callable[..., subprocess.CompletedProcess], api: client.ApiClient,
                         batch: client.BatchV1Api, ns: str, claims: "Claims") -> tuple[dict, client.V1Job]:
    """manifests/examples/job.yaml on the test's claims, applied and run to Succeeded with a validation loss;
    returns the SeqTrainingJob (raw JSON) and its one child Job."""
    job = load_example("job.yaml", data=claims.data, output=claims.output)
    assert kubectl_apply(kubectl, ns, job).returncode == 0
    obj = wait_stj_phase(api, ns, job["metadata"]["name"], "Succeeded", RUN_TIMEOUT)
    assert obj["status"]["metrics"]["val/loss"] > 0
    (child,) = child_jobs(batch, ns, obj["metadata"]["uid"])
    return obj, child


# --- Helm releases of the chart -------------------------------------------------------------------------
CHART = REPO / "charts" / "seqmodel-operator"


def chart_image(ref: str) -> dict[str, str]:
    """The chart's image values for an image built here: never pulled, it exists only in node-0's containerd."""
    repository, tag = ref.rsplit(":", 1)
    return {"repository": repository, "tag": tag, "pullPolicy": "Never"}


@dataclass
class Release:
    """One `helm install` of the chart into a namespace, driven through the helm that `make binaries` built."""

    name: str
    namespace: str
    kubectl: Callable[..., subprocess.CompletedProcess]
    kubeconfig: Path
    helm_bin: Path

    @property
    def fullname(self) -> str:
        """Every object's name (the chart's seqmodel-operator.fullname)."""
        return f"{self.name}-seqmodel-operator"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def helm(self, *args: str, values: dict[str, Any] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """`helm ARGS` in the release's namespace; `values` go in as a values file on stdin."""
        stdin = ["--values", "-"] if values is not None else []
        res = subprocess.run([str(self.helm_bin), f"--kubeconfig={self.kubeconfig}", "--namespace", self.namespace,
                              *args, *stdin], input=json.dumps(values), capture_output=True, text=True, timeout=180)
        assert res.returncode == 0 or not check, f"helm {' '.join(args)}: {res.stderr.strip()}"
        return res

    def get(self, kind: str) -> dict[str, Any] | None:
        """This release's object of that kind as the API server holds it (raw JSON, camelCase), or None."""
        res = self.kubectl("get", kind, self.fullname, "-n", self.namespace, "-o", "json", check=False)
        if res.returncode != 0:
            assert "NotFound" in res.stderr, res.stderr
            return None
        return json.loads(res.stdout)

    def operator_pod(self, core: client.CoreV1Api, timeout: float = 180) -> client.V1Pod:
        """The release's one Ready operator pod (readiness from the kubelet's probe of /healthz)."""
        def ready() -> client.V1Pod | None:
            pods = core.list_namespaced_pod(self.namespace, label_selector=f"app.kubernetes.io/instance={self.name}").items
            live = [p for p in pods if p.metadata.deletion_timestamp is None]
            if len(live) != 1:
                return None
            conds = {c.type: c.status for c in live[0].status.conditions or []}
            return live[0] if conds.get("Ready") == "True" else None

        return wait_for(ready, timeout, f"the operator pod of {self.name} to be Ready")

    def settings(self) -> dict[str, str]:
        """The chart's operator settings (SEQMODEL_OPERATOR_*), as the Deployment's envFrom would pass them."""
        return self.get("configmap")["data"]

    def token_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig whose user is this release's ServiceAccount (a TokenRequest token): the API server,
        its CA and nothing else from the admin kubeconfig."""
        token = self.kubectl("create", "token", self.fullname, "-n", self.namespace, "--duration=2h").stdout.strip()
        admin = yaml.safe_load(self.kubeconfig.read_text())
        (cluster,) = admin["clusters"]
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
            "users": [{"name": self.fullname, "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": self.fullname}}],
            "current-context": "operator"}))
        return path


# --- the machine around the cluster ----------------------------------------------------------------
def host_snapshot(running: Path) -> dict[str, object]:
    """What a cluster's `up` may change on the machine, read from the host's side: processes, mounts,
    sysctls, iptables, links, routes, network namespaces, cgroups and the runtimes' host directories.
    `running` is a cluster that runs meanwhile: its kubelet's links in /var/log/containers (one per
    container, into that directory) come and go with its pods, and are left out."""
    def run(*argv: str) -> list[str]:
        return sorted(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines())

    def listing(d: str) -> list[str] | None:
        if not os.path.isdir(d):
            return None
        return sorted(e for e in os.listdir(d)
                      if not (os.path.islink(p := os.path.join(d, e)) and Path(os.readlink(p)).is_relative_to(running)))

    # the kubelet's machine-wide ones, and per-namespace ones the node sets in its own namespace only
    sysctls = (*KUBELET_SYSCTLS, "net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
               "net.ipv4.conf.all.route_localnet")
    cmdlines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                cmdlines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    cgroups = Path("/sys/fs/cgroup")
    return {
        "processes": sorted(c for c in cmdlines if any(w in c for w in ("containerd", "kubelet", "kube-proxy",
                                                                         "coredns", "/pause"))),
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "sysctls": {k: Path("/proc/sys", *k.split(".")).read_text().strip() for k in sysctls},
        "iptables": [r for r in run("iptables-save") if not r.startswith(("#", ":"))],
        "links": run("ip", "-o", "link", "show"),
        "routes": run("ip", "route", "show", "table", "all"),
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else None,
        "cgroups": sorted(str(p) for p in cgroups.glob("*/seqmodel-*")),
        "dirs": {d: listing(d)
                 for d in ("/var/log/containers", "/var/log/pods", "/run/containerd", "/opt/containerd",
                           "/var/lib/kubelet", "/etc/cni/net.d", "/var/lib/cni")},
    }
