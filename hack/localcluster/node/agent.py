"""The node agent: registers the Node, keeps its Lease fresh, and gives each bound pod a worker.

It talks to the API server as `system:node:<name>`, so the Node authorizer and the NodeRestriction
admission plugin limit it exactly as they limit a kubelet.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from ..layout import Layout
from .provisioner import Provisioner
from .volumes import decode
from .worker import NodeConfig, PodWorker

LEASE_SECONDS = 40  # what kubelet uses; the node lifecycle controller waits 50 s before NotReady
RENEW_EVERY = 10.0
STATUS_EVERY = 60.0
HOST_IP = "127.0.0.1"
TERMINAL = ("Succeeded", "Failed")


ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _raw(resp) -> dict:
    return json.loads(resp.data)


@dataclass(frozen=True)
class AgentConfig:
    node_name: str
    gpus: int
    kubelet_version: str
    layout: Layout
    gpu_product: str = "process-node-fake-gpu"


def host_capacity(gpus: int, disk_root: Path) -> dict[str, str]:
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    cap = {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki",
           "ephemeral-storage": str(shutil.disk_usage(disk_root).total), "pods": "110"}
    if gpus:
        cap["nvidia.com/gpu"] = str(gpus)
    return cap


class Agent:
    def __init__(self, cfg: AgentConfig, node_api: client.ApiClient, provisioner_api: client.ApiClient,
                 log: Callable[[str], None]):
        self.cfg, self.log = cfg, log
        self.core = client.CoreV1Api(node_api)
        self.coord = client.CoordinationV1Api(node_api)
        self.stop = threading.Event()
        lay = cfg.layout
        for d in (lay.pods, lay.volumes, lay.pod_logs):
            d.mkdir(parents=True, exist_ok=True)
        self.capacity = host_capacity(cfg.gpus, lay.root)
        venv_bin = str(Path(os.sys.prefix) / "bin")
        base_env = {"PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "HOME": os.environ.get("HOME", "/root"), "LANG": os.environ.get("LANG", "C.UTF-8")}
        if os.sys.prefix != os.sys.base_prefix:
            base_env["VIRTUAL_ENV"] = os.sys.prefix
        self.node_cfg = NodeConfig(cfg.node_name, HOST_IP, lay.pods, lay.volumes, lay.pod_logs,
                                   dict(self.capacity), base_env)
        self.provisioner = Provisioner(provisioner_api, lay.volumes, self.stop, log)
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()  # uids whose run ended here; their later events only matter for deletion
        self.lock = threading.Lock()
        self.node_uid = ""

    # -- node ----------------------------------------------------------------------------------------------
    def _node_status(self) -> dict:
        now = micro_now()[:19] + "Z"
        conds = [("Ready", "True", "KubeletReady", "process node is ready"),
                 ("MemoryPressure", "False", "KubeletHasSufficientMemory", "not monitored"),
                 ("DiskPressure", "False", "KubeletHasNoDiskPressure", "not monitored"),
                 ("PIDPressure", "False", "KubeletHasSufficientPID", "not monitored")]
        return {
            "capacity": self.capacity, "allocatable": self.capacity,
            "conditions": [{"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": now,
                            "lastTransitionTime": self._started} for t, s, r, m in conds],
            "addresses": [{"type": "InternalIP", "address": HOST_IP},
                          {"type": "Hostname", "address": self.cfg.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"architecture": ARCH, "operatingSystem": "linux", "kernelVersion": platform.release(),
                         "kubeletVersion": f"{self.cfg.kubelet_version}-process",
                         "kubeProxyVersion": "", "containerRuntimeVersion": "process://host",
                         "osImage": "host processes (seqmodel process node)", "machineID": "", "systemUUID": "",
                         "bootID": ""},
        }

    def register(self) -> None:
        self._started = micro_now()[:19] + "Z"
        labels = {"kubernetes.io/hostname": self.cfg.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": ARCH, "type": "process", "seqmodel.dev/process-node": "true"}
        if self.cfg.gpus:
            labels.update({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": self.cfg.gpu_product,
                           "nvidia.com/gpu.count": str(self.cfg.gpus)})
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.cfg.node_name, "labels": labels},
                "status": self._node_status()}
        try:
            node = self.core.create_node(body)
        except ApiException as e:
            if e.status != 409:
                raise
            node = self.core.patch_node(self.cfg.node_name, {"metadata": {"labels": labels}})
        self.node_uid = node.metadata.uid
        self.core.patch_node_status(self.cfg.node_name, {"status": self._node_status()})
        self._renew_lease()
        self.log(f"registered node {self.cfg.node_name} with capacity {self.capacity}")

    def _renew_lease(self) -> None:
        spec = {"holderIdentity": self.cfg.node_name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": micro_now()}
        try:
            self.coord.patch_namespaced_lease(self.cfg.node_name, "kube-node-lease", {"spec": spec})
        except ApiException as e:
            if e.status != 404:
                raise
            self.coord.create_namespaced_lease("kube-node-lease", {
                "metadata": {"name": self.cfg.node_name, "namespace": "kube-node-lease",
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.cfg.node_name,
                                                  "uid": self.node_uid}]},
                "spec": spec})

    def _heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self.stop.wait(RENEW_EVERY):
            try:
                self._renew_lease()
                if time.monotonic() - last_status > STATUS_EVERY:
                    self.core.patch_node_status(self.cfg.node_name, {"status": self._node_status()})
                    last_status = time.monotonic()
            except Exception as e:  # noqa: BLE001 - an apiserver blip must not stop the heartbeat
                self.log(f"heartbeat failed: {e}".splitlines()[0])

    # -- API used by workers -------------------------------------------------------------------------------
    def patch_status(self, pod: dict, status: dict) -> bool:
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": status})
            return True
        except ApiException as e:
            if e.status == 404:
                raise LookupError(meta["name"]) from None
            self.log(f"status of {meta['namespace']}/{meta['name']}: {e.status} {e.reason}")
            return False

    def delete_now(self, pod: dict) -> None:
        """Delete with grace 0 once the processes are gone (what kubelet does to finish a deletion)."""
        meta = pod["metadata"]
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], body={
                "gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})
        except ApiException as e:
            if e.status not in (404, 409):
                self.log(f"delete {meta['namespace']}/{meta['name']}: {e.status} {e.reason}")

    def object_data(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            if kind == "configmap":
                obj = _raw(self.core.read_namespaced_config_map(name, namespace, _preload_content=False))
                return decode(obj.get("data"), obj.get("binaryData"))
            obj = _raw(self.core.read_namespaced_secret(name, namespace, _preload_content=False))
            return decode(obj.get("data"), b64=True)
        except ApiException as e:
            if e.status in (403, 404):  # the Node authorizer answers 403 for objects that do not exist
                return None
            raise

    def env_data(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        data = self.object_data(kind, namespace, name)
        return None if data is None else {k: v.decode("utf-8", "replace") for k, v in data.items()}

    def token(self, namespace: str, service_account: str, pod: dict, audience: str | None,
              expiration: int) -> str | None:
        spec: dict = {"expirationSeconds": max(600, expiration),
                      "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                         "uid": pod["metadata"]["uid"]}}
        if audience:
            spec["audiences"] = [audience]
        try:
            tr = self.core.create_namespaced_service_account_token(service_account, namespace, {"spec": spec})
            return tr.status.token
        except ApiException as e:
            self.log(f"token request for {namespace}/{service_account}: {e.status} {e.reason}")
            return None

    # -- pods ----------------------------------------------------------------------------------------------
    def _worker_done(self, uid: str) -> None:
        """Finish a deletion the worker's last pod object shows (its processes are gone now).

        Updates reach workers under the lock, so a deletion arrives either before the pop (seen here) or
        after it (then dispatch() sees a finished pod with a deletionTimestamp): never lost in between.
        """
        with self.lock:
            worker = self.workers.pop(uid, None)
            self.finished.add(uid)
        if worker is not None and worker.pod["metadata"].get("deletionTimestamp"):
            self.delete_now(worker.pod)  # 404 when it was force-deleted meanwhile: ignored

    def dispatch(self, kind: str, pod: dict) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            worker = self.workers.get(uid)
            ours = uid in self.finished
            if kind == "DELETED":
                self.finished.discard(uid)
            elif worker:
                worker.update(pod)
        if kind == "DELETED":
            if worker:
                worker.gone()
            else:
                shutil.rmtree(self.cfg.layout.pods / uid, ignore_errors=True)
            return
        if worker:
            return
        status = pod.get("status") or {}
        if ours or status.get("phase") in TERMINAL or meta.get("deletionTimestamp"):
            if meta.get("deletionTimestamp"):
                self.delete_now(pod)
            return
        if status.get("startTime"):
            # Started by an earlier agent whose processes are gone: report it lost instead of running it twice.
            self.patch_status(pod, {"phase": "Failed", "reason": "ProcessNodeRestarted",
                                    "message": "the process node restarted while the pod was running"})
            return
        worker = PodWorker(pod, self.node_cfg, self, self, self.log, self._worker_done)
        with self.lock:
            self.workers[uid] = worker
        worker.start()

    def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.cfg.node_name}"
        while not self.stop.is_set():
            try:
                listed = _raw(self.core.list_pod_for_all_namespaces(field_selector=selector, _preload_content=False))
                present = set()
                for pod in listed["items"]:
                    present.add(pod["metadata"]["uid"])
                    self.dispatch("MODIFIED", pod)
                with self.lock:
                    missing = [w for uid, w in self.workers.items() if uid not in present]
                for w in missing:
                    w.gone()
                w = watch.Watch()
                for event in w.stream(self.core.list_pod_for_all_namespaces, field_selector=selector,
                                      resource_version=listed["metadata"]["resourceVersion"],
                                      timeout_seconds=240, allow_watch_bookmarks=True):
                    if self.stop.is_set():
                        w.stop()
                        break
                    if event["type"] == "ERROR":
                        break
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.dispatch(event["type"], event["raw_object"])
            except ApiException as e:
                if e.status != 410:
                    self.log(f"pod watch: {e.status} {e.reason}; relisting")
                    self.stop.wait(1.0)
            except Exception as e:  # noqa: BLE001 - connection resets while the apiserver restarts
                self.log(f"pod watch: {e}".splitlines()[0])
                self.stop.wait(1.0)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            try:
                self.register()
                break
            except Exception as e:  # noqa: BLE001 - the apiserver may still be starting
                self.log(f"registering node failed ({e}); retrying".splitlines()[0])
                if self.stop.wait(1.0):
                    return
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        self.provisioner.start()
        self._watch_pods()

    def shutdown(self) -> None:
        """Stop the pods' processes (short grace) and the loops; pod objects are left as they are."""
        self.stop.set()
        with self.lock:
            workers = list(self.workers.values())
        for w in workers:
            w.stop_all.set()
        for w in workers:
            w.join(timeout=10)
