"""One thread per pod: volumes, init containers in order, containers, restarts, deletion, status.

It follows kubelet's contract where the rest of Kubernetes can see it: status (phase, conditions,
container states, exit codes, termination messages), restartPolicy, activeDeadlineSeconds, and on
deletion SIGTERM -> grace period -> SIGKILL -> delete with grace 0. Probes, hooks, resource limits,
securityContext and images are ignored: a host process cannot be given them.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from . import volumes
from .env import ConfigError, build_env, expand
from .runtime import ContainerRun, now
from .status import Conditions, Container, pod_status

TICK = 0.2  # seconds between checks of processes and of the latest pod object
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0  # restart back-off; kubelet uses 10 s to 5 min, too slow for dev loops
SETUP_RETRY = 2.0
SHUTDOWN_GRACE = 5.0  # seconds pods get when the agent itself stops (cluster down)


class Api(Protocol):
    def patch_status(self, pod: dict, status: dict) -> bool: ...  # LookupError when the pod is gone

    def env_data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None: ...


@dataclass(frozen=True)
class NodeConfig:
    node_name: str
    host_ip: str
    pods_dir: Path
    claims_dir: Path
    logs_dir: Path
    allocatable: dict[str, str]
    base_env: dict[str, str]


class PodGone(Exception):
    """The pod object disappeared (force deletion): stop at once, there is nobody to report to."""


class PodWorker(threading.Thread):
    def __init__(self, pod: dict, cfg: NodeConfig, api: Api, source: volumes.Source,
                 log: Callable[[str], None], on_exit: Callable[[str], None]):
        super().__init__(name=f"pod-{pod['metadata']['namespace']}/{pod['metadata']['name']}", daemon=True)
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.cfg, self.api, self.source, self.log, self.on_exit = cfg, api, source, log, on_exit
        self.dir = cfg.pods_dir / self.uid
        spec = pod["spec"]
        self.policy: str = spec.get("restartPolicy", "Always")
        self.init = [Container(c, waiting=("PodInitializing", "")) for c in spec.get("initContainers") or []]
        self.main = [Container(c, waiting=("PodInitializing" if self.init else "ContainerCreating", ""))
                     for c in spec.get("containers") or []]
        self.conditions = Conditions()
        self.start_time = now()
        self.started_mono = time.monotonic()
        self.phase, self.reason, self.message = "Pending", "", ""
        self._sent: dict | None = None
        self._gone = threading.Event()
        self.stop_all = threading.Event()  # the agent is shutting down

    # -- inputs from the agent ------------------------------------------------------------------------------
    def update(self, pod: dict) -> None:
        """The latest pod object; once the worker has exited, the agent finishes a deletion it shows."""
        self.pod = pod

    def gone(self) -> None:
        self._gone.set()

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp")) or self._gone.is_set()

    # -- main loop ------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except PodGone:
            self._kill_all(grace=0)
        except Exception:  # noqa: BLE001 - a bug must not leave processes behind or the pod hanging
            self.log(f"{self.name}: worker crashed:\n{traceback.format_exc()}")
            self._kill_all(grace=0)
            with contextlib.suppress(Exception):  # best effort: the pod may be gone or the API unreachable
                self._finish("Failed", "ProcessNodeError", "the process node failed; see its log")
        finally:
            if self._gone.is_set() or self.pod["metadata"].get("deletionTimestamp"):
                shutil.rmtree(self.dir, ignore_errors=True)
            self.on_exit(self.uid)

    def _run(self) -> None:
        self.conditions.set("PodReadyToStartContainers", False)
        self.conditions.set("Initialized", not self.init)
        self.conditions.set("Ready", False, "ContainersNotReady")
        self.conditions.set("ContainersReady", False, "ContainersNotReady")
        self._publish()
        dirs = self._prepare_volumes()
        if dirs is None:
            return
        self.conditions.set("PodReadyToStartContainers", True)
        for c in self.init:
            if not self._run_init(c, dirs):
                return
        self.conditions.set("Initialized", True)
        self._run_main(dirs)

    def _prepare_volumes(self) -> dict[str, Path] | None:
        while True:
            if self.stop_all.is_set() or self.deleting:
                return None  # a deletion is finished by the agent once this worker has exited
            try:
                return volumes.prepare(self.pod, self.dir, self.cfg.claims_dir, self.source, self.cfg.host_ip,
                                       self.cfg.allocatable, self.log)
            except volumes.UnsupportedVolume as e:
                self._finish("Failed", "UnsupportedVolume", str(e))
                return None
            except ConfigError as e:
                for c in self.init[:1] or self.main:
                    c.waiting = ("ContainerCreating", f"MountVolume.SetUp failed: {e}")
                self._publish()
                self._sleep(SETUP_RETRY)

    def _run_init(self, c: Container, dirs: dict[str, Path]) -> bool:
        """Run an init container to success, restarting it unless the policy is Never."""
        if c.spec.get("restartPolicy") == "Always":
            self._finish("Failed", "Unsupported", f"init container {c.name!r}: sidecars are not supported by the "
                         "process node")
            return False
        while True:
            if self._interrupted():
                return False
            if not self._start_when_due(c, dirs):
                continue
            while c.run.poll() is None:
                if self._interrupted():
                    return False
                self._sleep(TICK)
            if c.run.exit.code == 0:
                c.done = True
                self._publish()
                return True
            if self.policy == "Never":
                c.done = True
                self._finish("Failed", "", "")
                return False
            self._schedule_restart(c)

    def _run_main(self, dirs: dict[str, Path]) -> None:
        for c in self.main:
            c.waiting = ("ContainerCreating", "")
        while True:
            for c in self.main:
                if c.done:
                    continue
                if c.run is None or c.run.exit is not None and not c.done and c.next_start:
                    self._start_when_due(c, dirs, block=False)
                    continue
                exit_ = c.run.poll()
                if exit_ is None:
                    continue
                if self.policy == "Always" or (self.policy == "OnFailure" and exit_.code != 0):
                    self._schedule_restart(c)
                else:
                    c.done = True
            if all(c.done for c in self.main):
                failed = any(c.run.exit.code != 0 for c in self.main)
                self._finish("Failed" if failed else "Succeeded", "", "")
                return
            if self.phase == "Pending" and any(c.running or c.done for c in self.main):
                self.phase = "Running"
            ready = all(c.running for c in self.main)
            self.conditions.set("ContainersReady", ready, "" if ready else "ContainersNotReady")
            self.conditions.set("Ready", ready, "" if ready else "ContainersNotReady")
            if self._interrupted():
                return
            self._sleep(TICK)

    # -- containers -----------------------------------------------------------------------------------------
    def _start_when_due(self, c: Container, dirs: dict[str, Path], block: bool = True) -> bool:
        """Start `c` once its back-off has passed; False when it could not start (yet)."""
        wait = c.next_start - time.monotonic()
        if wait > 0:
            if not block:
                return False
            self._publish()
            self._sleep(min(wait, TICK))
            return False
        try:
            run = self._make_run(c, dirs)
        except ConfigError as e:
            c.waiting = ("CreateContainerConfigError", str(e))
            c.next_start = time.monotonic() + SETUP_RETRY
            self._publish()
            if block:
                self._sleep(TICK)
            return False
        if c.run is not None:
            c.restarts += 1
        c.run, c.next_start = run, 0.0
        run.start()
        self.log(f"{self.name}: started {c.name} pid {run.pid} argv {run.argv}")
        self._publish()
        return True

    def _make_run(self, c: Container, dirs: dict[str, Path]) -> ContainerRun:
        spec = c.spec
        host_env = {**self.cfg.base_env, "HOSTNAME": self.pod["metadata"]["name"], "TMPDIR": str(self.dir / "tmp")}
        env = build_env(self.pod, spec, host_env, self.api.env_data, self.cfg.host_ip, self.cfg.allocatable)
        mounts = volumes.mounts_for(spec, dirs, env)
        cdir = self.dir / "containers" / c.name
        msg_path = spec.get("terminationMessagePath") or "/dev/termination-log"
        mounts.append(volumes.Mount(msg_path, cdir / "termination-log"))
        rewrite = volumes.rewriter(mounts)
        # Only the pod's values name container paths; the host's own (PATH to this venv, TMPDIR) stay as they
        # are, even when the repository lives under a mount path such as /tmp.
        env = {k: v if host_env.get(k) == v else rewrite(v) for k, v in env.items()}
        argv = [rewrite(expand(a, env)) for a in (spec.get("command") or []) + (spec.get("args") or [])]
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        cwd = self._working_dir(spec.get("workingDir"), rewrite)
        meta = self.pod["metadata"]
        attempt = c.restarts + (c.run is not None)  # this run's restart count
        log = self.cfg.logs_dir / f"{meta['namespace']}_{meta['name']}_{self.uid}" / c.name / f"{attempt}.log"
        return ContainerRun(c.name, argv, cwd, env, log, cdir / "termination-log", self.dir / "containers" /
                            f"{c.name}.pid", spec.get("terminationMessagePolicy") == "FallbackToLogsOnError")

    def _working_dir(self, wd: str | None, rewrite: Callable[[str], str]) -> Path:
        """Under a mount: the host directory; an existing host path: itself; else a dir in the pod's rootfs."""
        rootfs = self.dir / "rootfs"
        if not wd:
            path = rootfs
        else:
            mapped = rewrite(wd)
            path = Path(mapped) if mapped != wd or Path(wd).is_dir() else rootfs / wd.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _schedule_restart(self, c: Container) -> None:
        c.last = c.run.exit
        delay = min(BACKOFF_MAX, BACKOFF_START * 2 ** c.restarts)
        c.next_start = time.monotonic() + delay
        c.waiting = ("CrashLoopBackOff", f"back-off {delay:.0f}s restarting failed container={c.name}")
        self._publish()

    # -- deletion, deadlines, status ------------------------------------------------------------------------
    def _interrupted(self) -> bool:
        """Handle deletion and activeDeadlineSeconds; True when the pod's run is over."""
        deadline = self.pod["spec"].get("activeDeadlineSeconds")
        if self.stop_all.is_set():
            self._kill_all(SHUTDOWN_GRACE)  # agent shutdown: stop the processes, leave the pod object as it is
            return True
        if self.deleting:
            meta = self.pod["metadata"]
            grace = meta.get("deletionGracePeriodSeconds")
            if grace is None:
                grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
            self._kill_all(0 if self._gone.is_set() else float(grace))
            self._finish(self._terminal_phase(), "", "")
            return True
        if deadline is not None and time.monotonic() - self.started_mono > float(deadline):
            self._kill_all(0)
            self._finish("Failed", "DeadlineExceeded",
                         f"Pod was active on the node longer than the specified deadline ({deadline}s)")
            return True
        self._publish()
        return False

    def _terminal_phase(self) -> str:
        ran = [c for c in self.main if c.run is not None and c.run.exit is not None]
        ok = ran and len(ran) == len(self.main) and all(c.run.exit.code == 0 for c in ran)
        return "Succeeded" if ok else "Failed"

    def _kill_all(self, grace: float) -> None:
        """SIGTERM every running container's group, wait up to `grace` seconds, then SIGKILL."""
        live = [c for c in self.init + self.main if c.running]
        for c in live:
            c.run.terminate()
        end = time.monotonic() + grace
        while any(c.run.poll() is None for c in live) and time.monotonic() < end:
            time.sleep(0.05)
        for c in live:
            if c.run.poll() is None:
                c.run.kill()
        for c in live:
            c.run.proc.wait()
            c.run.poll()
            c.done = True
            self.log(f"{self.name}: stopped {c.name} (exit {c.run.exit.code})")
        for c in self.init + self.main:
            if c.run is not None and c.run.exit is not None:
                c.done = True

    def _finish(self, phase: str, reason: str, message: str) -> None:
        self.phase, self.reason, self.message = phase, reason, message
        for c in self.init + self.main:
            if c.run is not None and c.run.exit is not None:
                c.done = True
            elif not c.done:
                c.waiting = ("PodInitializing" if c in self.main and self.init else "ContainerCreating", "")
        self.conditions.set("Ready", False, "PodCompleted")
        self.conditions.set("ContainersReady", False, "PodCompleted")
        self._publish()
        self.log(f"{self.name}: {phase} {reason} {message}".rstrip())

    def _publish(self) -> None:
        status = pod_status(self.phase, self.start_time, self.cfg.host_ip, self.conditions, self.init, self.main,
                            self.reason, self.message)
        if status == self._sent:
            return
        try:
            ok = self.api.patch_status(self.pod, status)
        except LookupError:
            self._gone.set()
            raise PodGone() from None
        if ok:
            self._sent = status  # on a transient error the next tick sends it again

    def _sleep(self, seconds: float) -> None:
        self._gone.wait(seconds)
        if self._gone.is_set():
            raise PodGone()
