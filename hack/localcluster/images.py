"""The project's two images, built here from docker/*.Dockerfile with buildah, and loaded into containerd.

No container registry is reachable from the machines this repository is developed on, so the Dockerfiles'
public bases (python:3.11-slim, pytorch/pytorch) cannot be pulled. Their one build argument, BASE_IMAGE,
is pointed at local bases instead, built once from Debian packages and cached outside the repository:

  python base  debootstrap bookworm + python3, venv, pip (the operator image's base)
  torch base   the python base + the third-party requirements of `seqmodel[train]` from PyPI (torch pin
               included), so the trainer Dockerfile's `pip install ".[train]"` only builds the project
               and a source change rebuilds the trainer in seconds instead of reinstalling 6 GB of wheels

Every image is tagged with a digest of its inputs (a base: its recipe; a project image: its Dockerfile,
the build context .dockerignore lets in, the base's image ID), so an unchanged input is never rebuilt and
a changed one always is. Everything lives under `$XDG_CACHE_HOME/seqmodel/images/`: a private buildah
storage and containers.conf (nothing in /var/lib/containers or /etc/cni), builds with chroot isolation and
the host network (no bridge or other network state on the host).

Images reach containerd through one OCI layout directory with uncompressed layers (`skopeo copy` from the
storage writes only the blobs the layout lacks) and a tar stream into `ctr images import -` that carries
only the blobs the containerd lacks: after a source change only the project's own layers move, not the
6 GB of torch/CUDA layers.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
IMAGES = ("operator", "trainer")  # each built from docker/<name>.Dockerfile
BASE_OF = {"operator": "python", "trainer": "torch"}
REGISTRY = "localhost"  # a name no registry answers to: the images only exist here
SUITE = "bookworm"  # the Debian release of python:3.11-slim-bookworm (its Python is 3.11 too)
DEBOOTSTRAP_INCLUDE = ("python3", "python3-venv", "python3-pip", "ca-certificates", "python-is-python3")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
_PYTHON_BASE_CONFIG = (  # what python:3.11-slim's config sets that the Dockerfiles can rely on
    "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--env", "LANG=C.UTF-8",
    "--cmd", '["python3"]',
)
# The host's CA bundle, bind-mounted read-only into RUN steps: outgoing TLS goes through an intercepting
# proxy. A mount is never part of a layer, so the images keep Debian's own bundle.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
NAMESPACE = "k8s.io"  # containerd's namespace for the images the kubelet sees
INSTALL_HINT = "run hack/install-system-deps.sh (as root)"
# Bumped when a base's recipe changes in a way its other inputs do not show.
PYTHON_BASE_RECIPE = 1
TORCH_BASE_RECIPE = 1

Log = Callable[[str], None]


class ImageError(RuntimeError):
    """A one-line, user-facing reason why an image step failed, naming the step."""


def log(message: str) -> None:
    """Progress on stderr with a timestamp: stdout carries only the refs."""
    print(f"[{time.strftime('%H:%M:%S')}] images: {message}", file=sys.stderr, flush=True)


# --- where things live ------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Outside the repository: the bases are several GB and outlive clones and `git clean`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqmodel" / "images"


def storage_conf(cache: Path | None = None) -> Path:
    """A private containers-storage config (overlay, graphroot and runroot in the cache), written once."""
    cache = cache or cache_dir()
    conf = cache / "storage.conf"
    text = (f'[storage]\ndriver = "overlay"\ngraphroot = "{cache / "storage"}"\n'
            f'runroot = "{cache / "run"}"\n')
    if not conf.exists() or conf.read_text() != text:
        cache.mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
    return conf


def containers_conf(cache: Path | None = None) -> Path:
    """A private containers.conf: buildah initializes its CNI backend on every command, which otherwise
    creates /etc/cni/net.d/cni.lock on the host; here it finds its (never used) network config in the cache."""
    cache = cache or cache_dir()
    conf = cache / "containers.conf"
    text = f'[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "{cache / "cni" / "net.d"}"\n'
    if not conf.exists() or conf.read_text() != text:
        (cache / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
        conf.write_text(text)
    return conf


def buildah_env(cache: Path | None = None) -> dict[str, str]:
    """The environment for every buildah call of this project: its private storage and containers.conf,
    its own TMPDIR (buildah stages multi-GB layers there)."""
    cache = cache or cache_dir()
    conf = storage_conf(cache)
    _forget_stale_runroot(cache)
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "CONTAINERS_CONF": str(containers_conf(cache)),
            "TMPDIR": str(cache / "tmp"), "BUILDAH_ISOLATION": "chroot"}


# buildah 1.28 keeps a blob-info cache in /var/lib/containers/cache whatever its storage config says (commit
# and push write it), and nothing configures that path. So buildah runs in a mount namespace of its own, in
# which /var/lib is an overlay whose writes land in the cache: the host's /var/lib stays untouched, and a
# buildah that dies takes its layer mounts with it instead of leaving them on the host.
_PRIVATE_VAR_LIB = """set -e
mkdir -p "$1/upper" "$1/work"
mount -t overlay seqmodel-images -o "lowerdir=/var/lib,upperdir=$1/upper,workdir=$1/work" /var/lib
shift
exec "$@"
"""


def buildah_command(argv: Sequence[str], cache: Path | None = None) -> list[str]:
    """`argv` (buildah, or a script calling it) run with the host's /var/lib kept out of reach (above)."""
    cache = cache or cache_dir()
    return [_need("unshare"), "--mount", "--propagation", "private", "sh", "-c", _PRIVATE_VAR_LIB,
            "private-var-lib", str(cache / "var-lib"), *argv]


def _forget_stale_runroot(cache: Path) -> None:
    """The runroot is meant for tmpfs and is on disk here: after a reboot its mount bookkeeping is stale."""
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    run, stamp = cache / "run", cache / "run.boot_id"
    if stamp.exists() and stamp.read_text().strip() != boot_id:
        shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True, exist_ok=True)
    stamp.write_text(boot_id + "\n")


@contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One build or export at a time per cache: two would race on tags and on the OCI layout."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another images command (lock {cache / 'lock'})")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


# --- pure inputs: versions, requirements, the build context -----------------------------------------------
def project_version(repo: Path = REPO) -> str:
    """seqmodel.VERSION, read from the source (importing seqmodel is not needed)."""
    m = re.search(r'^VERSION\s*=\s*"([^"]+)"', (repo / "seqmodel" / "__init__.py").read_text(), re.M)
    if not m:
        raise ImageError("seqmodel/__init__.py has no VERSION")
    return m.group(1)


def _pyproject(repo: Path) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text())


def train_requirements(repo: Path = REPO) -> list[str]:
    """The third-party requirements `pip install .[train]` starts from (pyproject's core dependencies and
    the train extra), in pyproject's order: what the torch base preinstalls."""
    project = _pyproject(repo)["project"]
    return list(project.get("dependencies", [])) + list(project["optional-dependencies"]["train"])


def torch_pin(repo: Path = REPO) -> str:
    """The torch version the train extra pins (`torch==X`): the one source of it."""
    for req in _pyproject(repo)["project"]["optional-dependencies"]["train"]:
        m = re.fullmatch(r"torch\s*==\s*([A-Za-z0-9.+!-]+)", req.strip())
        if m:
            return m.group(1)
    raise ImageError("pyproject.toml's train extra pins no torch==<version>")


def debian_mirror(sources: Path = Path("/etc/apt/sources.list.d/debian.sources"),
                  legacy: Path = Path("/etc/apt/sources.list")) -> str:
    """The host's Debian mirror (the one apt already reaches), for debootstrap."""
    if sources.exists():
        for stanza in re.split(r"\n\s*\n", sources.read_text()):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    if legacy.exists():
        m = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", legacy.read_text(), re.M)
        if m:
            return m.group(1)
    return DEFAULT_MIRROR


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker's matcher reads it (Go's filepath.Match plus `**`)."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(.*/)?" if i < len(pattern) else ".*"
            else:
                out += ".*"
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape(c)
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]"
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out)


@dataclass(frozen=True)
class Ignore:
    """The rules of one .dockerignore: the last pattern that matches a path or a parent of it decides."""

    rules: tuple[tuple[bool, str, re.Pattern[str]], ...]  # (negated, cleaned pattern, regex)

    @classmethod
    def read(cls, root: Path) -> "Ignore":
        path = root / ".dockerignore"
        lines = path.read_text().splitlines() if path.exists() else []
        return cls.parse(lines)

    @classmethod
    def parse(cls, lines: Iterable[str]) -> "Ignore":
        rules = []
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            if pattern and pattern != ".":
                rules.append((negated, pattern, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def ignored(self, path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        ignored = False
        for negated, _, regex in self.rules:
            if any(regex.fullmatch(p) for p in prefixes):
                ignored = not negated
        return ignored

    def may_let_in_below(self, directory: str) -> bool:
        """Whether a `!` pattern could let in something under an ignored directory (else skip it whole)."""
        depth = len(directory.split("/"))
        for negated, pattern, _ in self.rules:
            if not negated:
                continue
            parts = pattern.split("/")
            if "**" in "/".join(parts[:depth + 1]):
                return True
            if len(parts) > depth and all(_pattern_regex(p).fullmatch(d)
                                          for p, d in zip(parts, directory.split("/"))):
                return True
        return False


def context_files(root: Path = REPO, ignore: Ignore | None = None) -> list[str]:
    """The files (and symlinks) of the build context that .dockerignore lets in, sorted, relative."""
    ignore = ignore or Ignore.read(root)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        keep = []
        for d in sorted(dirnames):
            path = prefix + d
            if os.path.islink(os.path.join(dirpath, d)):
                filenames.append(d)
            elif not ignore.ignored(path) or ignore.may_let_in_below(path):
                keep.append(d)
        dirnames[:] = keep
        out += [prefix + f for f in filenames if not ignore.ignored(prefix + f)]
    return sorted(out)


def build_digest(dockerfile: Path, base_id: str, root: Path = REPO) -> str:
    """sha256 over everything a build reads: the Dockerfile, each context file (path, mode, content) and
    the base's image ID. Equal digests mean an equal image, so the build is skipped."""
    h = hashlib.sha256()
    h.update(b"dockerfile\0" + dockerfile.read_bytes() + b"\0base\0" + base_id.encode() + b"\0")
    for rel in context_files(root):
        path = root / rel
        if path.is_symlink():
            h.update(f"link\0{rel}\0{os.readlink(path)}\0".encode())
        else:
            executable = "x" if os.access(path, os.X_OK) else "-"
            h.update(f"file\0{rel}\0{executable}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _digest_of(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def python_base_ref(mirror: str) -> str:
    """The python base's ref: a digest of its recipe (suite, packages, mirror), never `latest`."""
    digest = _digest_of(PYTHON_BASE_RECIPE, SUITE, DEBOOTSTRAP_INCLUDE, mirror, _PYTHON_BASE_CONFIG)
    return f"{REGISTRY}/seqmodel-base-python:{SUITE}-{digest[:12]}"


def torch_base_containerfile(python_base: str, repo: Path = REPO) -> str:
    """The torch base's recipe: the python base plus the train requirements, in one pip layer."""
    reqs = " ".join(shlex.quote(r) for r in train_requirements(repo))
    return (f"FROM {python_base}\n"
            "# As the pytorch/pytorch image does: the NVIDIA container runtime exposes every GPU to it.\n"
            "ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility\n"
            f"RUN python -m pip install --no-cache-dir --disable-pip-version-check {reqs}\n")


def torch_base_ref(python_base_id: str, repo: Path = REPO) -> str:
    """The torch base's ref: the torch pin for humans, a digest of the python base and the recipe."""
    digest = _digest_of(TORCH_BASE_RECIPE, python_base_id, torch_base_containerfile("BASE", repo))
    return f"{REGISTRY}/seqmodel-base-torch:{torch_pin(repo)}-{digest[:12]}"


def image_ref(name: str, version: str, digest: str) -> str:
    """`localhost/seqmodel-<name>:<VERSION>-<digest12>`: unique per input, never `latest`."""
    return f"{REGISTRY}/seqmodel-{name}:{version}-{digest[:12]}"


def plain_ref(name: str, version: str) -> str:
    """`localhost/seqmodel-<name>:<VERSION>`: moves to the newest build of this version."""
    return f"{REGISTRY}/seqmodel-{name}:{version}"


# --- buildah ----------------------------------------------------------------------------------------------
def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise ImageError(f"{tool} not found: {INSTALL_HINT}")
    return path


def _tail(path: Path, lines: int = 25) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return []


def _run(step: str, argv: Sequence[str], env: dict[str, str] | None = None, logfile: Path | None = None,
         heartbeat: float = 60.0, shown: Sequence[str] | None = None) -> str:
    """Run one step. Short steps: output captured. Long steps: output to `logfile`, a heartbeat line every
    `heartbeat` seconds, the log's end on failure. Either way a failure raises a one-line ImageError."""
    if logfile is None:
        res = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True)
        if res.returncode != 0:
            err = (res.stderr or res.stdout).decode(errors="replace").strip().splitlines()
            raise ImageError(f"{step} failed (exit {res.returncode}): {err[-1] if err else 'no output'}")
        return res.stdout.decode()
    logfile.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(logfile, "wb") as out:
        out.write(f"$ {shlex.join(shown or argv)}\n".encode())
        out.flush()
        child = subprocess.Popen(list(argv), env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        while True:
            try:
                rc = child.wait(timeout=heartbeat)
                break
            except subprocess.TimeoutExpired:
                log(f"  ... still {step} ({_minutes(time.monotonic() - start)} so far; log {logfile})")
            except KeyboardInterrupt:
                child.terminate()
                child.wait()
                raise
    if rc != 0:
        tail = _tail(logfile)
        for line in tail:
            print(f"    | {line}", file=sys.stderr)
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        raise ImageError(f"{step} failed (exit {rc}): {last.strip()} (full log: {logfile})")
    return ""


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


@dataclass(frozen=True)
class LocalImage:
    """An image in the private storage."""

    id: str  # 64 hex digits: the sha256 of its config
    names: tuple[str, ...]
    size: str  # as buildah prints it ("6.1 GB")
    created: int = 0  # Unix time


# Each RUN step's runtime copies its own binary into a sealed memfd; the kernel refuses the seal (EBUSY)
# while something briefly pins the pages, which a busy machine sometimes does. The same build again resumes
# from its cached layers.
TRANSIENT_BUD_ERROR = "sealing memfd copy: Device or resource busy"
BUD_ATTEMPTS = 3


class Buildah:
    """The buildah CLI on the private storage."""

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache or cache_dir()
        self.exe = _need("buildah")
        self.env = buildah_env(self.cache)
        self.logs = self.cache / "logs"

    def run(self, step: str, *args: str, logfile: Path | None = None) -> str:
        return _run(step, buildah_command([self.exe, *args], self.cache), env=self.env, logfile=logfile,
                    shown=[self.exe, *args])

    def script(self, step: str, script: str, *args: str) -> str:
        """A shell script with `buildah` in it, in one private namespace (`buildah mount` points there)."""
        return _run(step, buildah_command(["sh", "-c", script, "sh", *args], self.cache),
                    env={**self.env, "BUILDAH": self.exe})

    def images(self) -> dict[str, LocalImage]:
        """Every named image, by each of its names."""
        out = json.loads(self.run("listing images (buildah images)", "images", "--json", "--no-trunc") or "[]")
        by_name: dict[str, LocalImage] = {}
        for entry in out:
            img = LocalImage(entry["id"].removeprefix("sha256:"), tuple(entry.get("names") or ()),
                             str(entry.get("size") or "?"), int(entry.get("created") or 0))
            for name in img.names:
                by_name[name] = img
        return by_name

    def image(self, ref: str) -> LocalImage | None:
        return self.images().get(ref)

    def tag(self, image_id: str, *refs: str) -> None:
        self.run(f"tagging {', '.join(refs)}", "tag", image_id, *refs)

    def bud(self, step: str, dockerfile: Path, context: Path, tags: Sequence[str], base: str,
            logfile: Path) -> None:
        """`buildah bud` with layer caching, chroot isolation and the host network (no bridge, no network
        state on the host), no pulls, and the host's CA bundle mounted for pip."""
        if not CA_BUNDLE.exists():
            raise ImageError(f"{step}: {CA_BUNDLE} not found (pip inside the build needs the host's CA bundle)")
        args = ["bud", "--layers", "--force-rm", "--isolation", "chroot", "--network", "host", "--pull-never",
                "--format", "oci", "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro",
                "--build-arg", f"BASE_IMAGE={base}", "-f", str(dockerfile)]
        for tag in tags:
            args += ["-t", tag]
        for attempt in range(1, BUD_ATTEMPTS + 1):
            try:
                self.run(step, *args, str(context), logfile=logfile)
                return
            except ImageError:
                if attempt == BUD_ATTEMPTS or TRANSIENT_BUD_ERROR not in logfile.read_text(errors="replace"):
                    raise
                log(f"  {step}: the build step's runtime could not seal its own copy (EBUSY, a transient "
                    f"kernel condition); again from the cached layers (attempt {attempt + 1} of {BUD_ATTEMPTS})")


# --- the bases --------------------------------------------------------------------------------------------
def _timed(timings: dict[str, float], key: str, fn: Callable[[], None]) -> None:
    start = time.monotonic()
    fn()
    timings[key] = round(time.monotonic() - start, 1)


def ensure_python_base(b: Buildah, timings: dict[str, float]) -> LocalImage:
    """debootstrap bookworm with python3/venv/pip into a directory, then import it as an image (once)."""
    mirror = debian_mirror()
    ref = python_base_ref(mirror)
    found = b.image(ref)
    if found:
        return found
    if os.geteuid() != 0:
        raise ImageError("building the python base: debootstrap needs root")
    debootstrap = _need("debootstrap")
    work = b.cache / "work"
    rootfs = work / ("rootfs-" + ref.rpartition("-")[2])
    _clear(rootfs)
    work.mkdir(parents=True, exist_ok=True)
    log(f"building the python base {ref}: debootstrap {SUITE} from {mirror} (about 1 minute, once)")

    def bootstrap() -> None:
        _run("debootstrap (python base)",
             [debootstrap, "--variant=minbase", f"--include={','.join(DEBOOTSTRAP_INCLUDE)}", SUITE,
              str(rootfs), mirror], logfile=b.logs / "debootstrap.log")

    try:
        _timed(timings, "debootstrap", bootstrap)
        _timed(timings, "python base import", lambda: _import_rootfs(b, rootfs, ref))
    finally:
        _clear(rootfs)
    image = b.image(ref)
    assert image is not None
    log(f"python base ready: {ref} ({image.size}) in "
        f"{timings['debootstrap'] + timings['python base import']:.0f} s")
    return image


def _clear(path: Path) -> None:
    """Remove a scratch rootfs, never following a mount out of it (debootstrap mounts /proc and /sys)."""
    if not path.exists():
        return
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for m in sorted((m for m in mounts if m == str(path) or m.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", m], check=False)
    shutil.rmtree(path)


def _import_rootfs(b: Buildah, rootfs: Path, ref: str) -> None:
    """Trim the rootfs to what an image needs and commit it as one layer."""
    (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)  # PEP 668 stops `pip install`
    for junk in ("var/lib/apt/lists", "var/cache/apt", "var/log", "dev", "proc", "sys", "run", "tmp"):
        path = rootfs / junk
        if path.is_dir():
            for child in path.iterdir():  # keep the directory (and its mode), empty it
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    # cp -a into the mounted container keeps owners, modes, links and setuid bits exactly as debootstrap left
    # them; one script, since the mount exists only in buildah's private namespace.
    b.script("importing the python base's rootfs (buildah from scratch, cp -a, commit)", """set -e
c=$("$BUILDAH" from scratch)
trap '"$BUILDAH" rm "$c" >/dev/null 2>&1 || true' EXIT
m=$("$BUILDAH" mount "$c")
cp -a "$1/." "$m/"
"$BUILDAH" umount "$c" >/dev/null
shift 2
"$BUILDAH" config "$@" "$c"
"$BUILDAH" commit --quiet --format oci --rm "$c" "$REF"
""".replace("$REF", shlex.quote(ref)), str(rootfs), "--", *_PYTHON_BASE_CONFIG)


def ensure_torch_base(b: Buildah, python_base: LocalImage, python_ref: str, timings: dict[str, float]) -> LocalImage:
    """The python base plus torch and the train requirements from PyPI (once per pin set)."""
    ref = torch_base_ref(python_base.id)
    found = b.image(ref)
    if found:
        return found
    work = b.cache / "work" / "torch-base"
    work.mkdir(parents=True, exist_ok=True)
    containerfile = work / "Containerfile"
    containerfile.write_text(torch_base_containerfile(python_ref))
    log(f"building the torch base {ref}: torch=={torch_pin()} and the train requirements from PyPI "
        "(about 5-10 minutes and 6 GB the first time)")
    _timed(timings, "torch base", lambda: b.bud("building the torch base (pip install, commit)", containerfile,
                                                work, [ref], python_ref, b.logs / "torch-base.log"))
    image = b.image(ref)
    assert image is not None
    log(f"torch base ready: {ref} ({image.size}) in {_minutes(timings['torch base'])}")
    return image


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


# --- the project's images ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Built:
    """One project image: its unique ref, its plain `:<VERSION>` ref, its ID ("" when not built yet), and
    whether this run built it."""

    name: str
    ref: str
    plain: str
    id: str
    size: str
    built: bool


@dataclass(frozen=True)
class Bases:
    """The current bases' refs and image IDs (an ID is an input of the refs built on it)."""

    python: str
    torch: str | None
    ids: dict[str, str]


def _bases(b: Buildah, build: bool, need_torch: bool, timings: dict[str, float]) -> Bases:
    mirror = debian_mirror()
    python_ref = python_base_ref(mirror)
    if build:
        python = ensure_python_base(b, timings)
    else:
        python = b.image(python_ref) or _not_built(python_ref)
    ids = {"python": python.id}
    torch_ref = None
    if need_torch:
        torch_ref = torch_base_ref(python.id)
        torch = ensure_torch_base(b, python, python_ref, timings) if build else (
            b.image(torch_ref) or _not_built(torch_ref))
        ids["torch"] = torch.id
    return Bases(python_ref, torch_ref, ids)


def _clear_stale_tmp(cache: Path, age: float = 6 * 3600) -> None:
    """A killed buildah leaves its multi-GB temporary files behind; none of ours lives for hours."""
    for entry in (cache / "tmp").iterdir():
        try:
            if time.time() - entry.lstat().st_mtime > age:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        except FileNotFoundError:
            pass


def _not_built(ref: str) -> LocalImage:
    raise ImageError(f"{ref} is not built yet: run `make images`")


def build(names: Sequence[str] = IMAGES, cache: Path | None = None,
          timings: dict[str, float] | None = None) -> dict[str, Built]:
    """Build (or find) each image for the current sources. An image whose ref exists is not rebuilt."""
    for name in names:
        if name not in IMAGES:
            raise ImageError(f"unknown image {name!r}: one of {', '.join(IMAGES)}")
    timings = {} if timings is None else timings
    b = Buildah(cache)
    with _locked(b.cache):
        _clear_stale_tmp(b.cache)
        bases = _bases(b, True, "trainer" in names, timings)
        version = project_version()
        out: dict[str, Built] = {}
        for name in names:
            base_ref = bases.python if BASE_OF[name] == "python" else bases.torch
            assert base_ref is not None
            dockerfile = DOCKER / f"{name}.Dockerfile"
            ref = image_ref(name, version, build_digest(dockerfile, bases.ids[BASE_OF[name]]))
            plain = plain_ref(name, version)
            found = b.image(ref)
            if found is None:
                log(f"building the {name} image {ref}" + (
                    " (about 30 s; 1-2 min with a cold layer cache)" if name == "operator" else
                    " (seconds when only the project changed)"))
                _timed(timings, f"{name} image", lambda: b.bud(
                    f"building the {name} image (docker/{name}.Dockerfile)", dockerfile, REPO, [ref, plain],
                    base_ref, b.logs / f"{name}.log"))
                found = b.image(ref)
                assert found is not None
                log(f"{name} image built in {_minutes(timings[f'{name} image'])}: {ref} ({found.size})")
                built = True
            else:
                built = False
                if plain not in found.names:
                    b.tag(found.id, plain)
            out[name] = Built(name, ref, plain, found.id, found.size, built)
        _prune(b, {name: i.ref for name, i in out.items()}, bases)
        return out


def refs(names: Sequence[str] = IMAGES, cache: Path | None = None) -> dict[str, Built]:
    """The refs of the current sources, without building; `built` is False for those not built yet. Needs
    the bases (their IDs are inputs of the refs)."""
    b = Buildah(cache)
    bases = _bases(b, False, "trainer" in names, {})
    version = project_version()
    images = b.images()
    out = {}
    for name in names:
        ref = image_ref(name, version, build_digest(DOCKER / f"{name}.Dockerfile", bases.ids[BASE_OF[name]]))
        found = images.get(ref)
        out[name] = Built(name, ref, plain_ref(name, version), found.id if found else "",
                          found.size if found else "", False)
    return out


KEEP_PREVIOUS = 3  # earlier builds kept per image, so switching back and forth between sources is instant


def _prune(b: Buildah, current: dict[str, str], bases: Bases) -> None:
    """Drop the bases the current inputs no longer produce (GBs each), the project images built on them, and
    all but the KEEP_PREVIOUS newest other builds of each image; then the layer-cache images left unused."""
    images = b.images()
    base_repos = {"python": f"{REGISTRY}/seqmodel-base-python", "torch": f"{REGISTRY}/seqmodel-base-torch"}
    current_bases = {"python": bases.python, "torch": bases.torch}
    stale: set[str] = set()
    for kind, repo in base_repos.items():
        if current_bases[kind]:
            stale |= {n for n in images if n.rpartition(":")[0] == repo and n != current_bases[kind]}
    for name, ref in current.items():
        base = images.get(current_bases[BASE_OF[name]] or "")
        others = {n: img for n, img in images.items()
                  if n.rpartition(":")[0] == ref.rpartition(":")[0] and img.id != images[ref].id}
        # Built before the current base existed: built on an older one, which they would keep alive.
        older = [n for n, img in others.items() if base is None or img.created < base.created]
        stale |= set(older)
        by_id = sorted({img.id: img for n, img in others.items() if n not in older}.values(),
                       key=lambda img: img.created, reverse=True)
        stale |= {n for img in by_id[KEEP_PREVIOUS:] for n in img.names}
    if stale:
        log(f"removing {len(stale)} outdated image(s): {', '.join(sorted(stale))}")
        b.run("removing outdated images", "rmi", *stale)
        subprocess.run(buildah_command([b.exe, "rmi", "--prune"], b.cache), env=b.env, capture_output=True)


# --- export and import into containerd --------------------------------------------------------------------
def oci_layout(cache: Path | None = None) -> Path:
    """One OCI layout for every exported image: layers shared between images are stored once."""
    return (cache or cache_dir()) / "oci"


def _blob(layout: Path, digest: str) -> Path:
    algo, _, hex_ = digest.partition(":")
    return layout / "blobs" / algo / hex_


def _read_index(layout: Path) -> dict:
    path = layout / "index.json"
    return json.loads(path.read_text()) if path.exists() else {"schemaVersion": 2, "manifests": []}


def _manifest_of(layout: Path, ref: str) -> dict | None:
    for m in _read_index(layout).get("manifests", []):
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            return m
    return None


def export(refs: Iterable[str], cache: Path | None = None) -> dict[str, dict]:
    """Put each image into the OCI layout with uncompressed layers: nothing to compress or decompress, and a
    layer already there (same digest) is not written again, so a new trainer adds only the project's layers.
    Returns each ref's manifest descriptor."""
    b = Buildah(cache)
    skopeo = _need("skopeo")
    layout = oci_layout(b.cache)
    out: dict[str, dict] = {}
    with _locked(b.cache):
        images = b.images()
        for ref in refs:
            img = images.get(ref)
            if img is None:
                raise ImageError(f"exporting {ref}: no such image in {b.cache / 'storage'}: run `make images`")
            desc = _manifest_of(layout, ref)
            if desc is None or _config_digest(layout, desc) != f"sha256:{img.id}":
                start = time.monotonic()
                log(f"exporting {ref} to {layout}")
                # skopeo, not `buildah push`: buildah 1.28 gzips layers even with --disable-compression, which
                # costs about a minute for the torch layer on every export and defeats the reuse below.
                _run(f"exporting {ref} (skopeo copy)", buildah_command([
                    skopeo, "copy", "--quiet", "--dest-oci-accept-uncompressed-layers",
                    f"containers-storage:{ref}", f"oci:{layout}:{ref}"], b.cache), env=b.env)
                desc = _manifest_of(layout, ref)
                if desc is None or _config_digest(layout, desc) != f"sha256:{img.id}":
                    raise ImageError(f"exporting {ref}: the OCI layout does not hold image {img.id[:12]} after push")
                log(f"exported {ref} in {_minutes(time.monotonic() - start)}")
            out[ref] = desc
        _gc_layout(layout, keep=set(images))
    return out


def _config_digest(layout: Path, desc: dict) -> str:
    try:
        return json.loads(_blob(layout, desc["digest"]).read_text())["config"]["digest"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return ""


def _blobs_of(layout: Path, desc: dict) -> list[dict]:
    """The manifest, its config and its layers: every blob one image needs."""
    manifest = json.loads(_blob(layout, desc["digest"]).read_text())
    return [{"digest": desc["digest"], "size": desc["size"]}, manifest["config"], *manifest["layers"]]


def _gc_layout(layout: Path, keep: set[str]) -> None:
    """Forget exported refs that no longer name a local image, and delete the blobs nothing references."""
    index = _read_index(layout)
    manifests = [m for m in index.get("manifests", [])
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") in keep]
    if len(manifests) != len(index.get("manifests", [])):
        index["manifests"] = manifests
        tmp = layout / "index.json.tmp"
        tmp.write_text(json.dumps(index))
        tmp.replace(layout / "index.json")
    used = {d["digest"] for m in manifests for d in _blobs_of(layout, m)}
    blobs = layout / "blobs" / "sha256"
    if blobs.is_dir():
        for blob in blobs.iterdir():
            if f"sha256:{blob.name}" not in used:
                blob.unlink()


def ctr_command(ctr_address: str, namespace: str, *args: str) -> list[str]:
    """`ctr` against one containerd and namespace (the local cluster's node uses it too)."""
    return [_need("ctr"), f"--address={ctr_address}", f"--namespace={namespace}", *args]


def import_images(ctr_address: str, refs: Iterable[str], namespace: str = NAMESPACE,
                  snapshotter: str | None = None, cache: Path | None = None, root: Path | None = None) -> None:
    """Import images (by their buildah refs) into the containerd at `ctr_address`, under those same names,
    then remove the older builds of the same images from it.

    Exports them first where needed, then streams one OCI tar into `ctr images import -` holding only the
    blobs this containerd lacks, so a source change moves the project's layers and not the torch ones.
    `root`, containerd's root directory where known, must have room for them first."""
    refs = list(dict.fromkeys(refs))
    if not refs:
        return
    descs = export(refs, cache)
    layout = oci_layout(cache)
    present = set(_run("listing containerd's content (ctr content ls)",
                       ctr_command(ctr_address, namespace, "content", "ls", "--quiet")).split())
    needed: dict[str, int] = {}
    for ref in refs:
        for blob in _blobs_of(layout, descs[ref]):
            if blob["digest"] not in present:
                needed[blob["digest"]] = blob["size"]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {**descs[ref], "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref.rpartition(":")[2]}}
        for ref in refs]}
    if root is not None:
        check_space(root, sum(needed.values()))
    log(f"importing {', '.join(refs)} into containerd ({len(needed)} new blob(s), "
        f"{_mb(sum(needed.values()))})")
    start = time.monotonic()
    argv = ctr_command(ctr_address, namespace, "images", "import", *(
        [f"--snapshotter={snapshotter}"] if snapshotter else []), "-")
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdin is not None and child.stdout is not None
    try:
        with tarfile.open(fileobj=child.stdin, mode="w|") as tar:
            _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
            _add_bytes(tar, "index.json", json.dumps(index).encode())
            for digest in needed:
                tar.add(_blob(layout, digest), arcname=f"blobs/{digest.replace(':', '/')}")
        child.stdin.close()
    except BrokenPipeError:
        pass
    output = child.stdout.read().decode(errors="replace")
    if child.wait() != 0:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise ImageError(f"importing into containerd (ctr images import) failed: {last.strip()}")
    log(f"imported in {_minutes(time.monotonic() - start)}")
    targets = _image_targets(ctr_address, namespace)
    stale = stale_images(targets, refs)
    if stale:
        log(f"removing {len(stale)} older image reference(s) from containerd")
        _run("removing older images (ctr images rm)", ctr_command(ctr_address, namespace, "images", "rm", "--sync",
                                                                   *stale))


# Besides each new blob, containerd writes its unpacked snapshot (the layers are uncompressed: about as large).
UNPACKED_FACTOR = 2
SPACE_MARGIN = 1 << 30


def check_space(root: Path, needed: int) -> None:
    """Fail with the figures before `ctr images import` fills the disk half-way through a 6 GB layer."""
    want = UNPACKED_FACTOR * needed + SPACE_MARGIN if needed else 0
    free = shutil.disk_usage(root if root.exists() else root.parent).free
    if free < want:
        raise ImageError(f"importing the images into {root} needs about {_mb(want)} free, and {_mb(free)} is: "
                         "free some space, e.g. `make cluster-purge` in checkouts whose cluster you no longer "
                         "use (each cluster directory holds its own copy of the images)")


def _image_targets(ctr_address: str, namespace: str) -> dict[str, str]:
    """Every image reference in the namespace, with the digest it points at (`ctr images ls`: REF TYPE DIGEST ...)."""
    out = _run("listing containerd's images (ctr images ls)", ctr_command(ctr_address, namespace, "images", "ls"))
    rows = [line.split() for line in out.splitlines()[1:]]
    return {row[0]: row[2] for row in rows if len(row) >= 3}


def stale_images(targets: dict[str, str], keep: Iterable[str]) -> list[str]:
    """The references to older builds of the images `keep` names: their other tags, and the `sha256:<id>`
    references the kubelet's CRI adds for them. Every source change imports a new trainer, so without this a
    cluster directory keeps them all (seen: 18 trainers and 11 operators, 15 GB, in one directory)."""
    keep = set(keep)
    repos = {ref.rpartition(":")[0] for ref in keep}
    older = {ref for ref in targets if ref not in keep and ref.rpartition(":")[0] in repos}
    gone = {targets[ref] for ref in older} - {targets[ref] for ref in keep if ref in targets}
    by_id = {ref for ref, digest in targets.items() if ref.startswith("sha256:") and digest in gone}
    return sorted(older | by_id)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
    tar.addfile(info, io.BytesIO(data))
