"""hack/localcluster/images.py without buildah or the network: the inputs that decide whether an image is
rebuilt (the build digest, the bases' refs), its tags, the torch pin, and the private storage it uses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import seqmodel

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
from localcluster import images  # noqa: E402

DOCKERFILE = ROOT / "docker" / "trainer.Dockerfile"
BASE_ID = "0" * 64


@pytest.fixture()
def context(tmp_path: Path) -> Path:
    """A small build context governed by the repository's own .dockerignore."""
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    files = {
        "pyproject.toml": "[project]\n", "README.md": "# x\n",
        "seqmodel/__init__.py": 'VERSION = "9.9.9"\n', "seqmodel/pod.py": "print()\n",
        "operator/seqmodel_operator/__main__.py": "pass\n",
        # kept out by .dockerignore
        "seqmodel/__pycache__/pod.cpython-311.pyc": "bytecode", "seqmodel/job/stale.pyc": "bytecode",
        "seqmodel.egg-info/PKG-INFO": "x", "tests/unit/test_x.py": "x", ".venv/bin/python": "x",
        ".git/config": "x", "notes.txt": "x", "out/demo/model.ckpt": "x",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def digest(root: Path, base_id: str = BASE_ID, dockerfile: Path = DOCKERFILE) -> str:
    return images.build_digest(dockerfile, base_id, root)


def test_the_context_is_what_dockerignore_lets_in(context: Path) -> None:
    assert images.context_files(context) == [
        "README.md", "operator/seqmodel_operator/__main__.py", "pyproject.toml", "seqmodel/__init__.py",
        "seqmodel/pod.py"]


def test_the_digest_changes_with_every_input(context: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    before = digest(context)
    assert digest(context) == before and re.fullmatch(r"[0-9a-f]{64}", before)
    changes = []
    (context / "seqmodel/pod.py").write_text("print('changed')\n")
    changes.append(digest(context))
    (context / "seqmodel/job/new.py").write_text("")  # a new file, empty
    changes.append(digest(context))
    os.chmod(context / "seqmodel/job/new.py", 0o755)  # COPY keeps the mode
    changes.append(digest(context))
    (context / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    changes.append(digest(context))
    changes.append(digest(context, base_id="1" * 64))  # a rebuilt base
    other = tmp_path_factory.mktemp("df") / "Dockerfile"
    other.write_text(DOCKERFILE.read_text() + "\n# a comment\n")
    changes.append(digest(context, dockerfile=other))
    assert len({before, *changes}) == len(changes) + 1


def test_the_digest_ignores_what_dockerignore_keeps_out(context: Path) -> None:
    before = digest(context)
    for rel in ("seqmodel/__pycache__/pod.cpython-311.pyc", "seqmodel/job/stale.pyc", "seqmodel.egg-info/PKG-INFO",
                "tests/unit/test_x.py", ".venv/bin/python", "notes.txt", "seqmodel/__pycache__/new.cpython-311.pyc",
                "operator/seqmodel_operator/__pycache__/__main__.cpython-311.pyc", "charts/x/values.yaml"):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text("something else")
    assert digest(context) == before


def test_the_repositorys_context_holds_the_sources_and_nothing_private() -> None:
    files = images.context_files(ROOT)
    tracked = subprocess.run(["git", "ls-files", "seqmodel", "operator"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert set(tracked) <= set(files) and {"pyproject.toml", "README.md"} <= set(files)
    assert not [f for f in files if f.split("/")[0] not in ("seqmodel", "operator", "pyproject.toml", "README.md")
                or "__pycache__" in f or f.endswith(".pyc")]


def test_dockerignore_rules() -> None:
    ignore = images.Ignore.parse(["# comment", "*", "!src", "src/**/*.log", "!src/keep.log", "/build/",
                                  "!deep/a/b.txt", "x?z", "[ab].md"])
    assert ignore.ignored("x.txt") and ignore.ignored(".git/config") and not ignore.ignored("src/a.py")
    assert ignore.ignored("src/a/b.log") and ignore.ignored("src/b.log") and not ignore.ignored("src/keep.log")
    assert ignore.ignored("build/x") and ignore.ignored("xyz") and ignore.ignored("a.md")
    assert not ignore.ignored("deep/a/b.txt") and ignore.ignored("deep/a/c.txt")
    # Which ignored directories the walk must still enter: only where a `!` pattern reaches below them.
    assert ignore.may_let_in_below("deep") and ignore.may_let_in_below("deep/a")
    assert not ignore.may_let_in_below(".venv") and not ignore.may_let_in_below("deep/b")
    assert not images.Ignore.parse(["*", "!seqmodel", "**/__pycache__"]).may_let_in_below("seqmodel/__pycache__")


def test_tags_are_versioned_and_never_latest() -> None:
    d = "ab" * 32
    refs = [images.image_ref("trainer", "1.3.0", d), images.image_ref("operator", "1.3.0", d),
            images.plain_ref("trainer", "1.3.0"), images.python_base_ref("http://deb.debian.org/debian"),
            images.torch_base_ref("sha256:" + "1" * 64)]
    assert refs[0] == "localhost/seqmodel-trainer:1.3.0-abababababab"
    assert refs[2] == "localhost/seqmodel-trainer:1.3.0"
    for ref in refs:
        repo, _, tag = ref.rpartition(":")
        assert repo.startswith("localhost/seqmodel-") and tag and tag != "latest" and "latest" not in tag
    assert images.project_version() == seqmodel.VERSION


def test_the_torch_pin_is_read_from_pyproject(tmp_path: Path) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    train = pyproject["project"]["optional-dependencies"]["train"]
    assert f"torch=={images.torch_pin()}" in train
    assert images.train_requirements() == pyproject["project"]["dependencies"] + train
    text = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace(f'"torch=={images.torch_pin()}"', '"torch==9.8.7"'))
    assert images.torch_pin(tmp_path) == "9.8.7"
    assert " torch==9.8.7 " in images.torch_base_containerfile("localhost/b:1", tmp_path)
    ref, other = images.torch_base_ref("sha256:x", ROOT), images.torch_base_ref("sha256:x", tmp_path)
    assert other.startswith("localhost/seqmodel-base-torch:9.8.7-") and other.split("-")[-1] != ref.split("-")[-1]
    (tmp_path / "pyproject.toml").write_text(text.replace('"torch==', '"torch>='))
    with pytest.raises(images.ImageError, match="pins no torch"):
        images.torch_pin(tmp_path)


def test_the_bases_are_rebuilt_when_their_inputs_change(tmp_path: Path) -> None:
    ref = images.torch_base_ref("sha256:a")
    assert images.torch_base_ref("sha256:a") == ref != images.torch_base_ref("sha256:b")  # a new python base
    text = (ROOT / "pyproject.toml").read_text()
    assert '"numpy==' in text
    (tmp_path / "pyproject.toml").write_text(re.sub(r'"numpy==[^"]+"', '"numpy==0.0.1"', text))
    assert images.torch_base_ref("sha256:a", tmp_path) != ref  # a requirement changed, torch did not
    assert images.python_base_ref("http://a/debian") != images.python_base_ref("http://b/debian")


def test_the_mirror_is_the_hosts(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
                       "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
                       "Suites: bookworm bookworm-updates\n")
    assert images.debian_mirror(sources, tmp_path / "none") == "http://mirror.example/debian"
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb [arch=amd64] http://old.example/debian bookworm main\n")
    assert images.debian_mirror(tmp_path / "none", legacy) == "http://old.example/debian"
    assert images.debian_mirror(tmp_path / "none", tmp_path / "none") == images.DEFAULT_MIRROR


def test_buildah_uses_a_private_overlay_storage_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "seqmodel" / "images"
    assert images.cache_dir() == cache
    env = images.buildah_env()
    conf = tomllib.loads(Path(env["CONTAINERS_STORAGE_CONF"]).read_text())["storage"]
    assert conf["driver"] == "overlay"
    assert Path(conf["graphroot"]).is_relative_to(cache) and Path(conf["runroot"]).is_relative_to(cache)
    assert Path(env["TMPDIR"]).is_relative_to(cache) and env["BUILDAH_ISOLATION"] == "chroot"
    assert not cache.is_relative_to(ROOT)


def failing_builds(tmp_path: Path, outputs: list[str]) -> tuple[images.Buildah, list[str]]:
    """A Buildah whose `buildah bud` runs fail, one per output written to the log, then succeed."""
    b = images.Buildah.__new__(images.Buildah)
    calls: list[str] = []

    def run(step: str, *args: str, logfile: Path | None = None) -> str:
        calls.append(step)
        if len(calls) <= len(outputs):
            assert logfile is not None
            logfile.write_text(outputs[len(calls) - 1])
            raise images.ImageError(f"{step} failed (exit 1)")
        return ""

    b.run = run  # type: ignore[method-assign]
    return b, calls


def bud(b: images.Buildah, tmp_path: Path) -> None:
    b.bud("building", tmp_path / "Dockerfile", tmp_path, ["localhost/x:1"], "localhost/base:1", tmp_path / "log")


def test_a_build_whose_runtime_could_not_seal_its_copy_is_retried_from_the_cache(tmp_path: Path) -> None:
    transient = f"STEP 7/12: RUN pip install .\nClose_Fd {images.TRANSIENT_BUD_ERROR}\nexit status 1\n"
    b, calls = failing_builds(tmp_path, [transient])
    bud(b, tmp_path)
    assert len(calls) == 2
    b, calls = failing_builds(tmp_path, [transient] * images.BUD_ATTEMPTS)
    with pytest.raises(images.ImageError):
        bud(b, tmp_path)
    assert len(calls) == images.BUD_ATTEMPTS


def test_a_build_that_fails_for_any_other_reason_is_not_retried(tmp_path: Path) -> None:
    b, calls = failing_builds(tmp_path, ["STEP 7/12: RUN pip install .\nERROR: No matching distribution\n"])
    with pytest.raises(images.ImageError):
        bud(b, tmp_path)
    assert len(calls) == 1


def test_only_stale_temporary_files_are_cleared(tmp_path: Path) -> None:
    (tmp_path / "tmp" / "old-dir").mkdir(parents=True)
    (tmp_path / "tmp" / "old-file").write_text("x")
    (tmp_path / "tmp" / "new-file").write_text("x")
    for old in ("old-dir", "old-file"):
        os.utime(tmp_path / "tmp" / old, (0, 0))
    images._clear_stale_tmp(tmp_path)
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == ["new-file"]


def test_an_import_removes_the_older_builds_and_their_id_references_only() -> None:
    keep = ["localhost/seqmodel-trainer:1.4.0-b8fb", "localhost/seqmodel-trainer:1.4.0",
            "localhost/seqmodel-operator:1.4.0-ede3", "localhost/seqmodel-operator:1.4.0"]
    targets = {
        "localhost/seqmodel-trainer:1.4.0-b8fb": "sha256:new-trainer", "localhost/seqmodel-trainer:1.4.0": "sha256:new-trainer",
        "localhost/seqmodel-operator:1.4.0-ede3": "sha256:new-op", "localhost/seqmodel-operator:1.4.0": "sha256:new-op",
        "localhost/seqmodel-trainer:1.4.0-6c67": "sha256:old-trainer", "localhost/seqmodel-trainer:1.3.0": "sha256:older",
        "localhost/seqmodel-trainer:1.3.0-83be": "sha256:older",
        # a rebuild that came out identical: an older tag on the image kept
        "localhost/seqmodel-operator:1.4.0-04f5": "sha256:new-op",
        "localhost/coredns:v1.14.7": "sha256:dns", "registry.k8s.io/pause:3.10": "sha256:pause",
        # the kubelet's CRI references each image by ID too
        "sha256:id-old-trainer": "sha256:old-trainer", "sha256:id-older": "sha256:older",
        "sha256:id-new-trainer": "sha256:new-trainer", "sha256:id-new-op": "sha256:new-op", "sha256:id-dns": "sha256:dns",
    }
    assert images.stale_images(targets, keep) == [
        "localhost/seqmodel-operator:1.4.0-04f5", "localhost/seqmodel-trainer:1.3.0",
        "localhost/seqmodel-trainer:1.3.0-83be", "localhost/seqmodel-trainer:1.4.0-6c67",
        "sha256:id-old-trainer", "sha256:id-older"]
    assert images.stale_images({ref: "sha256:new-trainer" for ref in keep[:2]}, keep) == []


def test_an_import_that_cannot_fit_fails_first_with_the_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    free = 5 * 10**9
    monkeypatch.setattr(images.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100 * 10**9, 0, free))
    root = tmp_path / "node" / "containerd"
    with pytest.raises(images.ImageError) as err:
        images.check_space(root, 3 * 10**9)  # stored, then unpacked: 6 GB and the margin
    msg = str(err.value)
    assert str(root) in msg and "7.07 GB" in msg and "5.00 GB is" in msg and "make cluster-purge" in msg
    assert "\n" not in msg
    images.check_space(root, 1 * 10**9)
    monkeypatch.setattr(images.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 0))
    images.check_space(root, 0)  # nothing new to import: nothing to check
