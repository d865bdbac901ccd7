"""What the real node changes outside its network namespace, and how `down` puts it back.

The kubelet writes machine-wide sysctls, creates cgroups under its cgroup root and mounts (its root
directory, pod volumes, container root filesystems, pod network namespaces); containerd leaves shim
processes that outlive it. `down` restores each of these, so the machine is as it was before `up`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .nodeconfig import CONTAINER_LOG_LINKS, SHIM_SOCKET_DIR
from .nodenet import NETNS_DIR, PREFIX

# The kubelet's setupKernelTunables (pkg/kubelet/cm/container_manager_linux.go): machine-wide, not per netns.
KUBELET_SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
                   "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes")
CGROUP_FS = Path("/sys/fs/cgroup")
# One record for the whole machine: the values before the first real node of any cluster started.
SAVED_SYSCTLS = Path("/run/seqmodel/host-sysctls.json")


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys: tuple[str, ...] = KUBELET_SYSCTLS) -> dict[str, str]:
    return {k: _sysctl_path(k).read_text().strip() for k in keys if _sysctl_path(k).exists()}


def save_sysctls() -> None:
    """Record the machine's values, unless another running cluster already did (its record is the original)."""
    if SAVED_SYSCTLS.exists() and _other_nodes_running():
        return
    SAVED_SYSCTLS.parent.mkdir(parents=True, exist_ok=True)
    SAVED_SYSCTLS.write_text(json.dumps(read_sysctls(), indent=2) + "\n")


def restore_sysctls() -> list[str]:
    """Put the recorded values back once no other cluster's node runs; return the keys that were changed."""
    if not SAVED_SYSCTLS.exists() or _other_nodes_running():
        return []
    saved = json.loads(SAVED_SYSCTLS.read_text())
    changed = [k for k, v in read_sysctls(tuple(saved)).items() if v != saved[k]]
    for key in changed:
        _sysctl_path(key).write_text(saved[key] + "\n")
    SAVED_SYSCTLS.unlink()
    return changed


def _other_nodes_running() -> bool:
    """Whether any cluster's node network exists (down removes ours before restoring)."""
    return any(NETNS_DIR.glob(f"{PREFIX}*"))


def cgroup_dirs(root_name: str) -> list[Path]:
    """The node's cgroup root in every mounted v1 hierarchy (the kubelet needs it to exist)."""
    return [d / root_name for d in sorted(CGROUP_FS.iterdir())
            if d.is_dir() and not d.is_symlink() and (d / "cgroup.procs").exists()]


def create_cgroups(root_name: str) -> None:
    for d in cgroup_dirs(root_name):
        d.mkdir(exist_ok=True)
        if d.parent.name == "cpuset":  # a new cpuset cgroup starts with no CPUs and no memory nodes
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((d.parent / f).read_text())


def remove_cgroups(root_name: str) -> list[str]:
    """rmdir the tree bottom-up (cgroupfs directories cannot be removed recursively); return what stayed."""
    left = []
    for top in cgroup_dirs(root_name):
        if not top.exists():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(Path(w[0]).parts)):
            for _ in range(50):  # a cgroup is busy for a moment after its last process exits
                try:
                    Path(dirpath).rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(dirpath)
    return left


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first (the order to unmount them)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if point == root or root in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: -len(p.parts))


def unmount_under(root: Path) -> list[str]:
    """Unmount everything at or below `root`; lazily when busy. Returns what could not be unmounted."""
    for _ in range(3):  # a bind mount may be stacked several times on one point
        points = mounts_under(root)
        if not points:
            return []
        for point in points:
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
    return [str(p) for p in mounts_under(root)]


def kill_matching(needle: str) -> list[int]:
    """SIGKILL processes whose command line contains `needle` (containerd's shims name their socket)."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
            except ProcessLookupError:
                pass
    return killed


def shim_socket(grpc_address: Path, namespace: str, container_id: str) -> Path:
    """Where containerd 1.6 puts a shim's socket (runtime/v2/shim.SocketAddress): not configurable."""
    digest = hashlib.sha256(str(Path(grpc_address, namespace, container_id)).encode()).hexdigest()
    return SHIM_SOCKET_DIR / digest


def remove_files(paths: list[Path]) -> None:
    """Remove `paths`, then their parent directories up to /run or /var/log once they are empty."""
    for path in paths:
        path.unlink(missing_ok=True)
    for d in sorted({p.parent for p in paths} | {p.parent.parent for p in paths}, key=lambda d: -len(d.parts)):
        if d.exists() and not any(d.iterdir()) and d not in (Path("/run"), Path("/var/log")):
            d.rmdir()


def log_links_into(directory: Path) -> list[Path]:
    """The kubelet's /var/log/containers symlinks that point into `directory` (its podLogsDir)."""
    if not CONTAINER_LOG_LINKS.is_dir():
        return []
    return [link for link in CONTAINER_LOG_LINKS.iterdir()
            if link.is_symlink() and Path(os.readlink(link)).is_relative_to(directory)]


def release_netns_dir() -> None:
    """`ip netns add` bind-mounts /run/netns onto itself; undo that once the last namespace is gone."""
    if NETNS_DIR.exists() and not any(NETNS_DIR.iterdir()):
        subprocess.run(["umount", str(NETNS_DIR)], capture_output=True)
        try:
            NETNS_DIR.rmdir()
        except OSError:
            pass


def kill_cgroup_procs(root_name: str, timeout: float = 10.0) -> int:
    """SIGKILL every process in the node's cgroup tree (the containers) until none is left; return how many."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set()
        for top in cgroup_dirs(root_name):
            # os.walk, not rglob: runc removes a container's cgroup as it dies, and rglob raises on a directory
            # that vanishes under it (it left `down` half done)
            for dirpath, _, _ in os.walk(top):
                try:
                    pids |= {int(x) for x in (Path(dirpath) / "cgroup.procs").read_text().split()}
                except OSError:
                    continue
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed |= pids
        time.sleep(0.1)
    return len(killed)
