"""A container's environment and argv, resolved the way kubelet does it.

Order: envFrom, then env (later entries win); `$(VAR)` in values, command and args expands to variables
defined before it, `$$(VAR)` stays literal. Downward-API `fieldRef` and `resourceFieldRef` come from the
pod and the node; configMap and Secret references are read through the node's own credentials, which
the Node authorizer allows for objects the pod references.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Callable, Mapping

# Fetches (kind, namespace, name) -> the object's `data` as str -> str, or None when it does not exist.
Fetch = Callable[[str, str, str], "dict[str, str] | None"]


class ConfigError(Exception):
    """The container cannot be configured yet (kubelet's CreateContainerConfigError); retried."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: unknown names and unclosed references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(env[name] if name in env else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$")


def parse_quantity(text: str | int | float) -> Decimal:
    """A resource.Quantity string ("500m", "2Gi", "1e3") as a Decimal in base units."""
    m = _QUANTITY.match(str(text).strip())
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    number = Decimal(m.group(1) + (m.group(2) or ""))
    return number * _SUFFIX[m.group(3) or ""]


def field_value(pod: dict, path: str, host_ip: str) -> str:
    """Downward-API fieldRef values that kubelet supports for env and volumes."""
    meta = pod.get("metadata", {})
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod["spec"].get("nodeName", ""),
        "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
        "status.hostIP": host_ip, "status.hostIPs": host_ip,
        "status.podIP": host_ip, "status.podIPs": host_ip,  # pods share the host's network
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resource_value(container: dict, ref: dict, allocatable: Mapping[str, str]) -> str:
    """resourceFieldRef: a limit or request in units of the divisor, rounded up; limits default to the node's."""
    kind, _, name = ref["resource"].partition(".")
    resources = container.get("resources") or {}
    raw = (resources.get(kind) or {}).get(name)
    if raw is None and kind == "requests":
        raw = (resources.get("limits") or {}).get(name)
    if raw is None:
        raw = allocatable.get(name, "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(parse_quantity(raw) / divisor))


def build_env(pod: dict, container: dict, base: Mapping[str, str], fetch: Fetch, host_ip: str,
              allocatable: Mapping[str, str]) -> dict[str, str]:
    """The container's environment on top of `base` (the host's stand-in for the image's ENV)."""
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(base)
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            ref = src.get(key)
            if ref is None:
                continue
            data = fetch(kind, ns, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"{kind} {ns}/{ref['name']} not found")
            env.update({prefix + k: v for k, v in data.items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(item.get("value", ""), env)
            continue
        src = item["valueFrom"]
        if "fieldRef" in src:
            env[name] = field_value(pod, src["fieldRef"]["fieldPath"], host_ip)
        elif "resourceFieldRef" in src:
            env[name] = resource_value(container, src["resourceFieldRef"], allocatable)
        else:
            kind, ref = ("configmap", src["configMapKeyRef"]) if "configMapKeyRef" in src else \
                ("secret", src["secretKeyRef"])
            data = fetch(kind, ns, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"{kind} {ns}/{ref['name']} key {ref['key']!r} not found")
            env[name] = data[ref["key"]]
    return env

