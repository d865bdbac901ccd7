"""Certificates, ServiceAccount signing keys, static tokens and kubeconfigs for one cluster.

EC P-256 keys, made with the `openssl` CLI: quick to generate, accepted by kube-apiserver for serving
and for signing ServiceAccount tokens (ES256). Kept across `down`/`up` so a warm start skips them.
Each component gets its own token and identity so RBAC and the Node authorizer see real users.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from .layout import ClusterError
from .nodeconfig import NODE_NAME
from .nodenet import NodeNet

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
SANS = ("DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local", "IP:127.0.0.1", f"IP:{SERVICE_IP}")


@dataclass(frozen=True)
class Identity:
    """A static-token user: kubeconfig file name, user name and groups."""

    name: str
    user: str
    groups: tuple[str, ...] = ()


def identities() -> list[Identity]:
    return [
        Identity("admin", "admin", ("system:masters",)),
        Identity("controller-manager", "system:kube-controller-manager"),
        Identity("scheduler", "system:kube-scheduler"),
        # kwok plays the kubelet of many fake nodes (any node name), which the Node authorizer cannot express.
        Identity("kwok", "seqmodel:kwok", ("system:masters",)),
        Identity("provisioner", "seqmodel:local-path-provisioner"),
        # The real node: its kubelet (Node authorizer, NodeRestriction) and kube-proxy (system:node-proxier).
        Identity("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",)),
        Identity("kube-proxy", "system:kube-proxy"),
    ]


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise ClusterError("openssl not found on PATH: install it (it makes the cluster's certificates)")
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed: {res.stderr.strip().splitlines()[-1:]}")


def _ec_key(name: str, cwd: Path) -> None:
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name, cwd=cwd)


def _self_signed_ca(stem: str, cn: str, cwd: Path) -> None:
    """`<stem>.key` and a ten-year self-signed CA certificate `<stem>.crt` with subject `/CN=<cn>`."""
    _ec_key(f"{stem}.key", cwd)
    _openssl("req", "-x509", "-new", "-key", f"{stem}.key", "-sha256", "-days", "3650", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", "-out", f"{stem}.crt", cwd=cwd)


def _signed_cert(stem: str, cn: str, ext: str, pki: Path) -> None:
    """`<stem>.key` + `<stem>.crt` signed by the cluster CA; remade when its extensions (SANs) change."""
    ext_file = pki / f"{stem}.ext"
    if (pki / f"{stem}.crt").exists() and ext_file.exists() and ext_file.read_text() == ext:
        return
    ext_file.write_text(ext)
    _ec_key(f"{stem}.key", pki)
    _openssl("req", "-new", "-key", f"{stem}.key", "-subj", f"/CN={cn}", "-out", f"{stem}.csr", cwd=pki)
    _openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "825", "-sha256", "-extfile", ext_file.name, "-out", f"{stem}.crt", cwd=pki)


def _server_ext(sans: list[str]) -> str:
    return (f"subjectAltName={','.join(sans)}\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n")


def ensure_pki(pki: Path, net: NodeNet) -> dict[str, str]:
    """Create the CA, certificates, SA keys and tokens if missing; return {identity name: token}.

    Certificates naming an address of the cluster's network are remade when `net` changes.
    """
    pki.mkdir(parents=True, exist_ok=True)
    if not (pki / "ca.crt").exists():
        _self_signed_ca("ca", "seqmodel-local-ca", pki)
        for stale in pki.glob("*.ext"):
            stale.unlink()
    _signed_cert("apiserver", "kube-apiserver", _server_ext([*SANS, f"IP:{net.host_ip}"]), pki)
    # The kubelet's serving certificate (verified by the apiserver for logs and exec) ...
    _signed_cert("kubelet", f"system:node:{NODE_NAME}",
                 _server_ext([f"DNS:{NODE_NAME}", f"IP:{net.node_ip}"]), pki)
    # ... and the apiserver's client certificate toward it (RBAC: system:kubelet-api-admin).
    _signed_cert("apiserver-kubelet-client", KUBELET_CLIENT_USER,
                 "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n", pki)
    if not (pki / "front-proxy-ca.crt").exists():
        # Only so the extension-apiserver-authentication ConfigMap has a request-header CA: without one the
        # controller-manager and scheduler log an error every few seconds. Nothing is signed with it.
        _self_signed_ca("front-proxy-ca", "seqmodel-local-front-proxy-ca", pki)
    if not (pki / "sa.key").exists():
        _ec_key("sa.key", pki)
        _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    return _ensure_tokens(pki / "tokens.csv", identities())


def read_tokens(path: Path) -> dict[str, str]:
    """{user: token} from the apiserver's --token-auth-file; empty when it does not exist."""
    if not path.exists():
        return {}
    return {user: token for token, user in (line.split(",")[:2] for line in path.read_text().splitlines())}


def _ensure_tokens(path: Path, ids: list[Identity]) -> dict[str, str]:
    """The apiserver's --token-auth-file: `token,user,uid,"group1,group2"` per line."""
    known = read_tokens(path)
    tokens = {i.name: known.get(i.user) or secrets.token_hex(24) for i in ids}
    lines = [f'{tokens[i.name]},{i.user},{i.user},"{",".join(i.groups)}"' for i in ids]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return tokens


def write_kubeconfig(path: Path, server: str, ca: Path, user: str, token: str) -> None:
    """A kubeconfig with one cluster, one token user and one current context, all named `seqmodel-local`."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "seqmodel-local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "seqmodel-local", "context": {"cluster": "seqmodel-local", "user": user}}],
        "current-context": "seqmodel-local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
