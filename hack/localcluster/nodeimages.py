"""The node's own images: the pod sandbox (pause) and CoreDNS, each one static binary from `make binaries`.

There is no registry to pull them from, so they are packed here (one layer, from scratch), cached as
archives beside the binaries, and imported into the node's containerd when it lacks them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import addons, images
from .layout import ClusterError, Versions
from .nodeconfig import PAUSE_IMAGE, NodePaths



@dataclass(frozen=True)
class ScratchImage:
    """An image of one static binary, run as a numeric non-root user."""

    ref: str
    binary: Path
    user: str

    def archive(self, cache: Path) -> Path:
        """The OCI archive, named by the binary's digest so a rebuilt binary makes a new one."""
        digest = hashlib.sha256(self.binary.read_bytes()).hexdigest()[:16]
        return cache / f"{self.binary.name}-{digest}.oci.tar"


def node_images(v: Versions) -> list[ScratchImage]:
    return [ScratchImage(PAUSE_IMAGE, v.binary("pause"), "65535:65535"),
            ScratchImage(addons.coredns_image(v.coredns), v.binary("coredns"), "65532:65532")]


def _run(argv: list[str], what: str, **kw) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        lines = (res.stderr or res.stdout).strip().splitlines()
        raise ClusterError(f"{what} failed: {lines[-1] if lines else f'exit {res.returncode}'}")
    return res.stdout


def pack(img: ScratchImage, cache: Path) -> Path:
    """Write the image's OCI archive with the project's buildah (once per binary)."""
    out = img.archive(cache)
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    name, tmp = img.binary.name, out.with_suffix(".tmp")
    step = f"packing the {name} image"
    try:
        b = images.Buildah()
        ctr = b.run(step, "from", "scratch").strip()
        b.run(step, "copy", "--chmod", "0755", ctr, str(img.binary), f"/{name}")
        b.run(step, "config", "--entrypoint", json.dumps([f"/{name}"]), "--cmd", "", "--user", img.user, ctr)
        b.run(step, "commit", "--rm", ctr, f"seqmodel-node/{name}:build")
        b.run(step, "push", f"seqmodel-node/{name}:build", f"oci-archive:{tmp}:{img.ref}")
    except images.ImageError as e:
        raise ClusterError(str(e)) from None
    tmp.replace(out)
    return out


def ctr(node: NodePaths, *args: str) -> list[str]:
    return images.ctr_command(str(node.containerd_socket), images.NAMESPACE, *args)


def present(node: NodePaths) -> set[str]:
    """Image refs the node's containerd has."""
    return set(_run(ctr(node, "images", "ls", "-q"), "ctr images ls").split())


def import_archive(node: NodePaths, archive: Path) -> None:
    _run(ctr(node, "images", "import", str(archive)), f"ctr images import {archive.name}")


def ensure(node: NodePaths, v: Versions, cache: Path) -> None:
    """Import the pause and CoreDNS images the node lacks."""
    have = present(node)
    for img in node_images(v):
        if img.ref not in have:
            import_archive(node, pack(img, cache))
