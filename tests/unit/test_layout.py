"""Versioned output directories: allocation is race-free and never reuses a version."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from seqmodel.outputs.versions import allocate_version, existing_versions, version_dir


def test_versions_count_up_per_canonical_name(tmp_path: Path) -> None:
    assert allocate_version(tmp_path, "lr=0.1") == (0, tmp_path / "lr=0.1" / "version_0")
    assert allocate_version(tmp_path, "lr=0.1")[0] == 1
    assert allocate_version(tmp_path, "default")[0] == 0
    assert existing_versions(tmp_path, "lr=0.1") == [0, 1]


def test_never_reuses_a_version_after_a_gap(tmp_path: Path) -> None:
    version_dir(tmp_path, "a", 5).mkdir(parents=True)
    (tmp_path / "a" / "notes").mkdir()
    assert allocate_version(tmp_path, "a")[0] == 6


def test_concurrent_allocations_get_distinct_versions(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(pool.map(lambda _: allocate_version(tmp_path, "x")[0], range(32)))
    assert sorted(versions) == list(range(32))


def test_cli_allocates_under_the_canonical_name(tmp_path: Path, capsys) -> None:
    from seqmodel.layout import main

    assert main([str(tmp_path), "--lr=0.004", "--max_steps=5"]) == 0
    assert main([str(tmp_path), "--lr=4e-3"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "lr=0.004" / "version_0"), str(tmp_path / "lr=0.004" / "version_1")]
    assert all(Path(p).is_dir() for p in printed)
