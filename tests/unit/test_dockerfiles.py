"""docker/*.Dockerfile and .dockerignore, checked without a container engine (none runs here).

BuildKit's own parser (the `dockerfile` package) reads the files; the checks: every base image pinned (a
`FROM ${BASE_IMAGE}` by the pinned default of its global ARG: `make images` overrides only that argument,
to build on a local base), a numeric non-root USER, no remote ADD, each image installs its own extra and
nothing else, the ENTRYPOINT module exists and runs on this host with only what the image installs, and
the trainer's ENTRYPOINT is the command the operator's rendered Job runs (the e2e tests run the built
images on node-0).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import dockerfile
import pytest
import yaml

from operator_support import example
from seqmodel import pod
from seqmodel_operator.plan import make_plan
from seqmodel_operator.render import Replicate, render_job
from seqmodel_operator.settings import Settings
from test_boundaries import run_blocked

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
IMAGES = ("trainer", "operator")
EXTRAS = {"trainer": "train", "operator": "operator"}  # the one extra each image installs
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# A full version in a tag: 3.11.13-slim-bookworm, 2.15.0-cuda13.2-cudnn9-runtime.
PINNED_TAG = re.compile(r"^\d+\.\d+\.\d+([-.][A-Za-z0-9.]+)*$")


@dataclass
class Stage:
    """One FROM and the instructions under it. `base` is the FROM as a plain `docker build` resolves it: a
    global build argument replaced by its default; `written` is the FROM as written."""

    base: str
    name: str | None
    commands: list[dockerfile.Command] = field(default_factory=list)
    written: str = ""

    def last(self, instruction: str) -> dockerfile.Command | None:
        found = [c for c in self.commands if c.cmd == instruction]
        return found[-1] if found else None


ARG_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def global_args(text: str) -> dict[str, str | None]:
    """The ARGs before the first FROM (the only ones a FROM can use), each with its default or None."""
    out: dict[str, str | None] = {}
    for command in dockerfile.parse_string(text):
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG":
            name, eq, default = command.value[0].partition("=")
            out[name] = default.strip("\"'") if eq else None
    return out


def stages(text: str) -> list[Stage]:
    out: list[Stage] = []
    args = global_args(text)
    for command in dockerfile.parse_string(text):
        if command.cmd == "FROM":
            value = command.value
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else None
            # An argument without a default, or not a global one, stays as written (and is refused below).
            base = ARG_REF.sub(lambda m: args.get(m.group(1) or m.group(2)) or m.group(0), value[0])
            out.append(Stage(base, name, written=value[0]))
        elif out:
            out[-1].commands.append(command)
    return out


def image_stages(image: str) -> list[Stage]:
    return stages((DOCKER / f"{image}.Dockerfile").read_text())


def violations(text: str) -> Iterator[str]:
    """What the images must not do: a floating base, root at run time, ADD from the network."""
    seen: list[str] = []
    all_stages = stages(text)
    for stage in all_stages:
        if stage.base not in seen:
            ref, _, digest = stage.base.partition("@")
            repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "")
            if "$" in stage.base:
                yield f"FROM {stage.base}: a build argument without a pinned default makes the base float"
            elif not PINNED_TAG.match(tag):
                yield f"FROM {stage.base}: the tag must be a full version, not {tag or 'missing (latest)'}"
            if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                yield f"FROM {stage.base}: malformed digest"
        if stage.name:
            seen.append(stage.name)
        for c in stage.commands:
            if c.cmd == "ADD" and any(re.match(r"(https?|git|ssh)://|git@", src) for src in c.value[:-1]):
                yield f"line {c.start_line}: ADD from the network ({c.original}); download in a RUN with a checksum"
    if not all_stages:
        yield "no FROM"
        return
    user = all_stages[-1].last("USER")
    if user is None:
        yield "the final stage sets no USER: it would run as root"
    else:
        m = re.fullmatch(r"(\d+)(?::(\d+))?", user.value[0])
        if not m:
            yield f"USER {user.value[0]}: must be numeric (runAsNonRoot can only verify a numeric user)"
        elif int(m.group(1)) == 0 or (m.group(2) is not None and int(m.group(2)) == 0):
            yield f"USER {user.value[0]}: root"


def entrypoint(image: str) -> list[str]:
    command = image_stages(image)[-1].last("ENTRYPOINT")
    assert command is not None and command.json, f"{image}: ENTRYPOINT must be in exec (JSON) form"
    return list(command.value)


def workdir(image: str) -> str:
    command = image_stages(image)[-1].last("WORKDIR")
    assert command is not None, f"{image}: no WORKDIR"
    return command.value[0]


def installed_extras(image: str) -> set[str]:
    """The extras of every `pip install ".[...]"` in the image."""
    runs = [c.value[0] for s in image_stages(image) for c in s.commands if c.cmd == "RUN"]
    extras = set()
    for run in runs:
        if "pip install" in run:
            found = re.findall(r"""["']?\.\[([a-z,]+)\]["']?""", run)
            assert found, f"{image}: a pip install of something other than this project: {run}"
            extras |= {e for group in found for e in group.split(",")}
    return extras


def closure(extra: str) -> set[str]:
    """Normalized names of the distributions `pip install .[extra]` brings in: pyproject.toml's, then each
    one's own requirements as installed here (one whose environment marker left it out on this Python,
    like async-timeout's python_version < "3.11", is not installed and counts as absent)."""
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    reqs = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"][extra]
    todo = [re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in reqs]
    found: set[str] = set()
    while todo:
        name = norm(todo.pop())
        if name in found:
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        found.add(name)
        for req in requires:
            if "extra" not in req.partition(";")[2]:
                todo.append(re.match(r"[A-Za-z0-9._-]+", req).group(0))
    return found


def modules_outside(extra: str) -> set[str]:
    """Top-level modules of this venv that `pip install .[extra]` would not install."""
    keep = closure(extra)
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    return {module for module, dists in importlib.metadata.packages_distributions().items()
            if module.isidentifier() and module not in sys.stdlib_module_names
            and module not in ("seqmodel", "seqmodel_operator") and not {norm(d) for d in dists} & keep}


# --- the checks can fail ---------------------------------------------------------------------------------
def test_the_checks_catch_what_they_should() -> None:
    bad = ("ARG L=python:latest\nARG N\nFROM python AS a\nFROM python:latest\nFROM ubuntu:${V}\n"
           "FROM python:3.11@sha256:xyz\nFROM ${L}\nFROM $N\nARG S=python:3.11.13-slim\nFROM ${S}\n"
           "ADD https://example.com/x.tgz /x\nADD git@github.com:a/b.git /b\nUSER seqmodel\n")
    found = "\n".join(violations(bad))
    for what in ("missing (latest)", "not latest", "FROM ubuntu:${V}: a build argument", "not 3.11",
                 "malformed digest", "FROM $N: a build argument", "FROM ${S}: a build argument",
                 "ADD from the network (ADD https", "ADD from the network (ADD git@", "must be numeric"):
        assert what in found, what
    assert found.count("not latest") == 2  # FROM ${L}: its default is checked like a written tag
    assert "root" in " ".join(violations("FROM python:3.11.13-slim\nUSER 0:1000\n"))
    assert "no USER" in " ".join(violations("FROM python:3.11.13-slim\n"))
    assert list(violations("FROM python:3.11.13-slim AS b\nFROM b\nCOPY --from=b /x /x\nUSER 1000\n")) == []
    assert list(violations("ARG B=python:3.11.13-slim\nFROM ${B} AS b\nFROM $B\nUSER 1000\n")) == []


# --- the images ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("image", IMAGES)
def test_pinned_bases_numeric_non_root_user_no_remote_add(image: str) -> None:
    assert list(violations((DOCKER / f"{image}.Dockerfile").read_text())) == []


@pytest.mark.parametrize("image", IMAGES)
def test_every_base_is_the_one_build_argument_make_images_overrides(image: str) -> None:
    """hack/localcluster/images.py passes only --build-arg BASE_IMAGE=<local base>: every FROM that is not an
    earlier stage must use it, and its default must be the real public base (pinned, checked above)."""
    text = (DOCKER / f"{image}.Dockerfile").read_text()
    default = global_args(text)["BASE_IMAGE"]
    all_stages = stages(text)
    names = {s.name for s in all_stages if s.name}
    external = [s for s in all_stages if s.written not in names]
    assert external and all(s.written == "${BASE_IMAGE}" and s.base == default for s in external)
    assert default.rpartition(":")[0] == {"trainer": "pytorch/pytorch", "operator": "python"}[image]


def test_the_trainer_runs_as_the_user_the_operator_sets_and_the_operator_as_the_charts() -> None:
    assert image_stages("trainer")[-1].last("USER").value[0] == f"{Settings().run_as_user}:{Settings().run_as_user}"
    deploy = next(d for d in yaml.safe_load_all((ROOT / "manifests" / "operator" / "deployment.yaml").read_text())
                  if d["kind"] == "Deployment")
    psc = deploy["spec"]["template"]["spec"]["securityContext"]
    assert image_stages("operator")[-1].last("USER").value[0] == f"{psc['runAsUser']}:{psc['runAsGroup']}"


def test_the_trainer_base_carries_the_torch_that_pyproject_pins() -> None:
    (stage,) = image_stages("trainer")
    pin = next(r for r in PYPROJECT["project"]["optional-dependencies"]["train"] if r.startswith("torch=="))
    assert stage.base.startswith(f"pytorch/pytorch:{pin.removeprefix('torch==')}-cuda"), (stage.base, pin)
    assert stage.base.endswith("-runtime")  # not the several-GB devel image


@pytest.mark.parametrize("image", IMAGES)
def test_each_image_installs_its_own_extra_only(image: str) -> None:
    assert installed_extras(image) == {EXTRAS[image]}
    assert EXTRAS[image] in PYPROJECT["project"]["optional-dependencies"]


def test_the_operator_image_brings_no_torch() -> None:
    brought = closure("operator")
    assert "kopf" in brought and "kubernetes" in brought  # the closure is really computed
    # numpy comes with Optuna (TPE sweeps), the training stack does not
    assert "optuna" in brought and not brought & {"torch", "pytorch-lightning", "lightning", "torchmetrics",
                                                  "tensorboard", "pyfaidx"}
    assert "torch" in closure("train")


@pytest.mark.parametrize("image", IMAGES)
def test_the_entrypoint_module_is_this_repositorys(image: str) -> None:
    python, flag, module = entrypoint(image)
    assert (python, flag) == ("python", "-m")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, f"{image}: ENTRYPOINT module {module} not found"
    assert Path(spec.origin).resolve().is_relative_to(ROOT), spec.origin
    copied = {c.value[0] for s in image_stages(image) for c in s.commands if c.cmd == "COPY" and not c.flags}
    top = Path(spec.origin).resolve().relative_to(ROOT).parts[0]
    assert top in copied, f"{image}: {top}/ is not copied into the image"


IMAGE_PROGRAMS = {
    # The operator with everything its extra does not install blocked: its handlers and CLI import.
    "operator": "import seqmodel_operator.handlers, seqmodel_operator.crd, seqmodel_operator.__main__\n"
                "seqmodel_operator.crd.all_crds()\nprint('ok')",
    # Both steps of the pod, training included (seqmodel.run imports the pipeline, and torch, only once its
    # arguments are valid), with everything the train extra does not install (kopf, kubernetes) blocked.
    "trainer": "import sys, seqmodel.pod, seqmodel.run, seqmodel.training.fit, seqmodel.outputs.checkpoint\n"
               "assert 'pytorch_lightning' in sys.modules\nprint('ok')",
}


@pytest.mark.parametrize("image", IMAGES)
def test_the_entrypoint_imports_with_only_what_the_image_installs(image: str) -> None:
    blocked = modules_outside(EXTRAS[image])
    assert ("torch" in blocked) == (image == "operator") and ("kopf" in blocked) == (image == "trainer")
    result = run_blocked(blocked, IMAGE_PROGRAMS[image])
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_trainer_entrypoint_is_the_command_the_operator_renders() -> None:
    """Kubernetes' `command` replaces ENTRYPOINT: the rendered containers run ENTRYPOINT + [step], in the
    image's WORKDIR, so `docker run IMAGE stage|run ...` and the pod do the same."""
    config = Settings()
    job = render_job(make_plan(example("job.yaml"), config), Replicate(0, 0), config)
    spec = job["spec"]["template"]["spec"]
    prefix, steps = entrypoint("trainer"), set()
    for container in spec["initContainers"] + spec["containers"]:
        command = container["command"]
        assert command[:len(prefix)] == prefix, (container["name"], command)
        steps.add(command[len(prefix)])
        assert container["workingDir"] == workdir("trainer")
    parser_steps = {a for action in pod._parser()._subparsers._group_actions for a in action.choices}
    assert steps == parser_steps == {"stage", "run"}


def test_the_operator_entrypoint_is_the_charts_command() -> None:
    deploy = next(d for d in yaml.safe_load_all((ROOT / "manifests" / "operator" / "deployment.yaml").read_text())
                  if d["kind"] == "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert container["command"] == entrypoint("operator")


def host_argv(argv: list[str]) -> list[str]:
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def test_the_entrypoints_run_on_this_host() -> None:
    trainer = image_stages("trainer")[-1].last("CMD")
    res = subprocess.run(host_argv(entrypoint("trainer") + list(trainer.value)), capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0 and "{stage,run}" in res.stdout, res.stderr
    operator_cmd = list(image_stages("operator")[-1].last("CMD").value)
    res = subprocess.run(host_argv(entrypoint("operator") + ["--help"]), capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert all(arg in res.stdout for arg in operator_cmd), (operator_cmd, res.stdout)


# --- .dockerignore ---------------------------------------------------------------------------------------
def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories decides;
    `!` patterns let a path back in."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.removeprefix("!").strip("/"))
        if any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            ignored = not negated
    return ignored


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_dockerignore_matcher() -> None:
    patterns = ["*", "!src", "**/__pycache__"]
    assert dockerignored("x.txt", patterns) and not dockerignored("src/a.py", patterns)
    assert dockerignored("src/pkg/__pycache__/a.pyc", patterns) and dockerignored(".git/config", patterns)


def test_the_build_context_holds_what_the_images_copy_and_nothing_private() -> None:
    patterns = dockerignore()
    sources = {src for image in IMAGES for s in image_stages(image) for c in s.commands
               if c.cmd == "COPY" and not c.flags for src in c.value[:-1]}
    assert sources == {"pyproject.toml", "README.md", "seqmodel", "operator"}
    for source in sources:
        files = [ROOT / source] if (ROOT / source).is_file() else [
            p for p in (ROOT / source).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        kept_out = [str(p.relative_to(ROOT)) for p in files if dockerignored(str(p.relative_to(ROOT)), patterns)]
        assert files and kept_out == [], kept_out
    for private in (".venv/bin/python", ".cluster/e2e/kubeconfig", ".git/config", "out/demo/x.ckpt",
                    "data/genome/genome.fa.gz", "tests/unit/test_pod.py", "seqmodel/__pycache__/run.cpython-311.pyc",
                    "seqmodel.egg-info/PKG-INFO", "charts/seqmodel-operator/values.yaml"):
        assert dockerignored(private, patterns), private
