"""hack/build-binaries.sh stops at once with one clear line when Go or the module proxy cannot do the build.

Each case builds into an empty cache under tmp_path, so the real cache is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from e2e_support import REPO

SCRIPT = REPO / "hack" / "build-binaries.sh"


def build(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "SEQMODEL_K8S_CACHE": str(tmp_path / "cache"), **env}
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, env=full,
                          timeout=120)


def test_missing_go_is_named(tmp_path):
    tools = tmp_path / "tools"  # just what the script runs before it looks for go
    tools.mkdir()
    for tool in ("bash", "dirname", "mkdir"):
        (tools / tool).symlink_to(shutil.which(tool))

    res = build(tmp_path, PATH=str(tools))

    assert res.returncode == 1
    assert res.stderr.strip() == ("build-binaries: 'go' not found on PATH: install Go "
                                  "(each pinned module's minimum is checked next)")


def test_unreachable_module_proxy_is_named_before_any_build(tmp_path):
    modcache = tmp_path / "modcache"  # empty, so nothing can come from an earlier download

    res = build(tmp_path, GOPROXY="http://127.0.0.1:1", GOMODCACHE=str(modcache))

    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("build-binaries: cannot fetch go.etcd.io/etcd/server/v3@"), res.stderr
    assert "GOPROXY=http://127.0.0.1:1" in last and "connection refused" in last
    assert not list((tmp_path / "cache" / "bin").iterdir())


def test_go_older_than_a_pinned_module_needs_is_named(tmp_path):
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "go").write_text('#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && { echo go1.20.1; exit 0; }\n'
                             f'exec {shutil.which("go")} "$@"\n')
    (fake / "go").chmod(0o755)

    res = build(tmp_path, PATH=f"{fake}:{os.environ['PATH']}")

    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert "needs Go >= 1." in last and "'go' on PATH is go1.20.1" in last, res.stderr
