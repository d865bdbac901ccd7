"""A local-path dynamic provisioner for StorageClass `local-path`: claim `<name>` -> `<cluster>/volumes/<name>`.

The scheduler only places a pod whose claims are bound, so claims need PersistentVolumes. This creates
one hostPath PV per pending claim (pre-bound through claimRef; the controller-manager's PV controller
completes the binding) and deletes the PV object once its claim is gone. The directory and its files are
kept: they are the results a run leaves behind. Runs as its own process (`hack/local_path_provisioner.py`,
started by `up`) with its own, narrow identity.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable

from kubernetes import client
from kubernetes.client.rest import ApiException

PROVISIONER = "seqmodel.dev/local-path"
POLL = 0.5  # seconds; a list of claims and volumes is cheap at the scale of a dev cluster


def _raw(resp) -> dict:
    return json.loads(resp.data)


def pv_for(pvc: dict, claims_dir: Path) -> dict:
    meta, spec = pvc["metadata"], pvc["spec"]
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec["storageClassName"],
            "hostPath": {"path": str(claims_dir / meta["name"]), "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                         "name": meta["name"], "uid": meta["uid"]},
        },
    }


class Provisioner:
    """Polls claims and volumes until `stop` is set."""

    def __init__(self, api: client.ApiClient, claims_dir: Path, stop: threading.Event, log: Callable[[str], None]):
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.claims_dir, self.stop, self.log = claims_dir, stop, log
        self._last_error = ""

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.sync()
                self._last_error = ""
            except Exception as e:  # noqa: BLE001 - keep provisioning after API hiccups (e.g. RBAC not yet created)
                if str(e) != self._last_error:
                    self.log(str(e).splitlines()[0])
                    self._last_error = str(e)
            self.stop.wait(POLL)

    def sync(self) -> None:
        classes = {sc["metadata"]["name"] for sc in _raw(self.storage.list_storage_class(_preload_content=False))
                   ["items"] if sc.get("provisioner") == PROVISIONER}
        pvs = _raw(self.core.list_persistent_volume(_preload_content=False))["items"]
        claimed = {((pv["spec"].get("claimRef") or {}).get("uid")) for pv in pvs}
        pvcs = _raw(self.core.list_persistent_volume_claim_for_all_namespaces(_preload_content=False))["items"]
        for pvc in pvcs:
            meta, spec = pvc["metadata"], pvc["spec"]
            if (spec.get("storageClassName") not in classes or spec.get("volumeName") or meta["uid"] in claimed
                    or meta.get("deletionTimestamp") or (pvc.get("status") or {}).get("phase") != "Pending"):
                continue
            claim_dir = self.claims_dir / meta["name"]
            claim_dir.mkdir(parents=True, exist_ok=True)
            # World-writable, as rancher's local-path provisioner makes them: a hostPath volume gets no fsGroup
            # ownership change, and the pods on the real node run as a non-root user.
            claim_dir.chmod(0o777)
            try:
                self.core.create_persistent_volume(pv_for(pvc, self.claims_dir))
                self.log(f"{meta['namespace']}/{meta['name']} -> {self.claims_dir / meta['name']}")
            except ApiException as e:
                if e.status != 409:
                    raise
        for pv in pvs:
            ann = pv["metadata"].get("annotations") or {}
            if (ann.get("pv.kubernetes.io/provisioned-by") == PROVISIONER and
                    (pv.get("status") or {}).get("phase") == "Released" and
                    pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"):
                try:
                    self.core.delete_persistent_volume(pv["metadata"]["name"])
                except ApiException as e:
                    if e.status != 404:
                        raise
