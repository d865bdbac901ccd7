"""Pod volumes as host directories, and the rule that maps container paths onto them.

A process on the host cannot see a container filesystem, so every volume is a host directory:
  persistentVolumeClaim  -> <cluster>/volumes/<claimName>            (kept after the pod and the cluster)
  emptyDir, ephemeral    -> <cluster>/pods/<uid>/volumes/<name>      (removed with the pod)
  configMap, secret, downwardAPI, projected -> files in <cluster>/pods/<uid>/volumes/<name>
  hostPath               -> the path itself
A mount's `subPath` (or `subPathExpr`) selects a directory inside the volume, created when missing as
kubelet does. The mapping rule: in command, args, env values and workingDir, every occurrence of a
mountPath at a path boundary is replaced by its host directory (longest mountPath first).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping, Protocol

from .env import ConfigError, expand, field_value, resource_value


class UnsupportedVolume(Exception):
    """A volume type the process node cannot provide; the pod fails with this message."""


class Source(Protocol):
    """What volumes need from the API server, with the node's credentials."""

    def object_data(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None: ...

    def token(self, namespace: str, service_account: str, pod: dict, audience: str | None,
              expiration: int) -> str | None: ...


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: Path


def _write(base: Path, rel: str, data: bytes) -> None:
    target = _inside(base, rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _inside(base: Path, rel: str) -> Path:
    """`base/rel`, refusing absolute paths and `..` (a pod must not write outside its volume)."""
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:
        raise ConfigError(f"path {rel!r} must be relative and must not contain '..'")
    return base / p


def _keys(source: dict, data: Mapping[str, bytes] | None, kind: str, ns: str, base: Path) -> None:
    """configMap / secret contents as files: all keys, or `items` (key -> path)."""
    if data is None:
        if source.get("optional"):
            return
        raise ConfigError(f"{kind} {ns}/{source.get('name') or source.get('secretName')} not found")
    items = source.get("items")
    if not items:
        for key, value in data.items():
            _write(base, key, value)
        return
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise ConfigError(f"{kind} {ns} has no key {item['key']!r}")
        _write(base, item["path"], data[item["key"]])


def _downward(items: list[dict], pod: dict, host_ip: str, allocatable: Mapping[str, str], base: Path) -> None:
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"], host_ip)
        else:
            ref = item["resourceFieldRef"]
            value = resource_value(containers[ref["containerName"]], ref, allocatable)
        _write(base, item["path"], value.encode())


def prepare(pod: dict, pod_dir: Path, claims_dir: Path, src: Source, host_ip: str,
            allocatable: Mapping[str, str], log: Callable[[str], None]) -> dict[str, Path]:
    """Create every volume of `pod` on the host; return {volume name: host directory}."""
    ns = pod["metadata"]["namespace"]
    dirs: dict[str, Path] = {}
    for vol in pod["spec"].get("volumes") or []:
        name = vol["name"]
        scratch = pod_dir / "volumes" / name
        if "persistentVolumeClaim" in vol:
            path = claims_dir / vol["persistentVolumeClaim"]["claimName"]
        elif "hostPath" in vol:
            path = Path(vol["hostPath"]["path"])
            if vol["hostPath"].get("type") == "DirectoryOrCreate":
                path.mkdir(parents=True, exist_ok=True)
            dirs[name] = path
            continue
        elif "emptyDir" in vol or "ephemeral" in vol:
            path = scratch
        elif "configMap" in vol:
            path = scratch
            _keys(vol["configMap"], src.object_data("configmap", ns, vol["configMap"]["name"]),
                  "configmap", ns, path)
        elif "secret" in vol:
            path = scratch
            _keys(vol["secret"], src.object_data("secret", ns, vol["secret"]["secretName"]), "secret", ns, path)
        elif "downwardAPI" in vol:
            path = scratch
            _downward(vol["downwardAPI"].get("items") or [], pod, host_ip, allocatable, path)
        elif "projected" in vol:
            path = scratch
            _projected(vol["projected"], pod, src, host_ip, allocatable, path, log)
        else:
            kind = next((k for k in vol if k != "name"), "?")
            raise UnsupportedVolume(f"volume {name!r}: type {kind} is not supported by the process node")
        path.mkdir(parents=True, exist_ok=True)
        dirs[name] = path
    return dirs


def _projected(proj: dict, pod: dict, src: Source, host_ip: str, allocatable: Mapping[str, str], base: Path,
               log: Callable[[str], None]) -> None:
    ns = pod["metadata"]["namespace"]
    for s in proj.get("sources") or []:
        if "configMap" in s:
            _keys(s["configMap"], src.object_data("configmap", ns, s["configMap"]["name"]), "configmap", ns, base)
        elif "secret" in s:
            _keys(s["secret"], src.object_data("secret", ns, s["secret"]["name"]), "secret", ns, base)
        elif "downwardAPI" in s:
            _downward(s["downwardAPI"].get("items") or [], pod, host_ip, allocatable, base)
        elif "serviceAccountToken" in s:
            t = s["serviceAccountToken"]
            sa = pod["spec"].get("serviceAccountName") or "default"
            token = src.token(ns, sa, pod, t.get("audience"), int(t.get("expirationSeconds") or 3607))
            if token is None:
                log(f"pod {ns}/{pod['metadata']['name']}: no token for serviceaccount {sa}; skipping {t['path']}")
                continue
            _write(base, t["path"], token.encode())


def mounts_for(container: dict, dirs: Mapping[str, Path], env: Mapping[str, str]) -> list[Mount]:
    """The container's volumeMounts as host paths, with subPath / subPathExpr applied and created."""
    out = []
    for vm in container.get("volumeMounts") or []:
        base = dirs.get(vm["name"])
        if base is None:
            raise ConfigError(f"volumeMount {vm['name']!r} names no volume of the pod")
        sub = vm.get("subPath") or expand(vm.get("subPathExpr") or "", env)
        host = _inside(base, sub) if sub else base
        if sub and not host.exists():
            host.mkdir(parents=True, exist_ok=True)
        out.append(Mount(vm["mountPath"], host))
    return out


def rewriter(mounts: list[Mount]) -> Callable[[str], str]:
    """Replace container mount paths by host paths in a string, at path boundaries, longest first.

    `/data` matches in `/data`, `/data/x`, `--dir=/data/x` and `'/data/x'`, but not in `/database` or
    `/srv/data`.
    """
    table = {m.container_path.rstrip("/"): str(m.host_path) for m in mounts if m.container_path.rstrip("/")}
    if not table:
        return lambda s: s
    alternatives = "|".join(re.escape(p) for p in sorted(table, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.\-/])({alternatives})(?=/|$|[^\w.\-])")
    return lambda s: pattern.sub(lambda m: table[m.group(1)], s)


def decode(data: Mapping[str, str] | None, binary: Mapping[str, str] | None = None, b64: bool = False
           ) -> dict[str, bytes]:
    """configMap `data`/`binaryData` or Secret `data` as bytes per key."""
    out = {k: (base64.b64decode(v) if b64 else v.encode()) for k, v in (data or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (binary or {}).items()})
    return out
