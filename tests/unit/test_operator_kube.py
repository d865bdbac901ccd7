"""kube.py without a cluster: the token bucket on a fake clock, and is_status."""

from __future__ import annotations

import pytest
from kubernetes.client.rest import ApiException

from seqmodel_operator import kube


class FakeClock:
    """Stands in for the `time` module of kube.py: sleeping moves the clock instead of waiting."""

    def __init__(self) -> None:
        self.now: float = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(kube, "time", fake)
    return fake


def test_rate_zero_never_waits(clock: FakeClock) -> None:
    bucket = kube.TokenBucket(0, 1)
    for _ in range(1000):
        bucket.take()
    assert clock.sleeps == []


def test_a_burst_passes_then_calls_wait(clock: FakeClock) -> None:
    bucket = kube.TokenBucket(rate=10.0, burst=3)
    for _ in range(3):
        bucket.take()
    assert clock.sleeps == []
    bucket.take()
    assert clock.sleeps == [pytest.approx(0.1)]
    bucket.take()
    assert clock.sleeps == [pytest.approx(0.1), pytest.approx(0.1)]


def test_idle_time_refills_up_to_the_burst(clock: FakeClock) -> None:
    bucket = kube.TokenBucket(rate=10.0, burst=3)
    for _ in range(3):
        bucket.take()
    clock.now += 60.0  # a long pause refills at most `burst` tokens
    for _ in range(3):
        bucket.take()
    assert clock.sleeps == []
    bucket.take()
    assert clock.sleeps == [pytest.approx(0.1)]


def test_the_average_rate_holds(clock: FakeClock) -> None:
    bucket = kube.TokenBucket(rate=50.0, burst=1)
    start = clock.now
    for _ in range(101):
        bucket.take()
    assert clock.now - start == pytest.approx(100 / 50.0)


def test_burst_below_one_still_lets_a_call_through(clock: FakeClock) -> None:
    bucket = kube.TokenBucket(rate=5.0, burst=0)
    bucket.take()
    assert clock.sleeps == []


def test_is_status() -> None:
    assert kube.is_status(ApiException(status=409), 409)
    assert kube.is_status(ApiException(status=404), 409, 404)
    assert not kube.is_status(ApiException(status=500), 409)
    assert not kube.is_status(ValueError("409"), 409)
