"""bench/bench_gpu.py's arithmetic, which no GPU here can run: each device's peak, MFU in the table, and a
machine without CUDA told so with nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import bench_gpu  # noqa: E402
from bench.bench_gpu import PEAK_ENV, peak_flops, report  # noqa: E402


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12), ("NVIDIA H200", 989e12),
    ("NVIDIA A100-SXM4-80GB", 312e12), ("NVIDIA A10", 125e12), ("NVIDIA L40S", 362e12), ("NVIDIA L4", 121e12),
    ("Tesla T4", None),
])
def test_each_device_gets_its_own_datasheet_peak(name: str, peak: float | None) -> None:
    assert peak_flops(name, env={}) == peak


def test_the_environment_names_a_peak_for_any_device() -> None:
    assert peak_flops("Tesla T4", env={PEAK_ENV: "65e12"}) == 65e12
    assert peak_flops("NVIDIA H100 PCIe", env={PEAK_ENV: "1e15"}) == 1e15


def test_the_table_reports_achieved_flops_and_mfu() -> None:
    hp = {"seq_len": 1000, "batch_size": 32}
    table = report("NVIDIA H100 80GB HBM3", 1e15, [("d 512", hp, 400_000.0, 1e9)])
    assert "| d 512 | 1000 | 32 | 400,000 | 400.0 | 40% |" in table  # 4e5 tokens/s x 1e9 FLOPs = 40% of 1e15
    assert "unknown peak" in report("Tesla T4", None, [("d 512", hp, 1.0, 1.0)])


def test_without_cuda_it_says_so_and_writes_nothing(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench_gpu.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bench_gpu, "write_section", lambda *args: pytest.fail("wrote a section"))
    bench_gpu.main()
    assert "no CUDA device here" in capsys.readouterr().out
