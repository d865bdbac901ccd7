"""Version allocation on a fake API server: idempotent per owner, never shared, even when writers race."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from kubernetes.client.rest import ApiException

from operator_support import NAMESPACE, FakeKube, job_body
from seqmodel_operator import constants as C
from seqmodel_operator import versions
from seqmodel_operator.kube import Kube
from seqmodel_operator.plan import Plan, make_plan
from seqmodel_operator.settings import Settings


def plan(uid: str, replicates: int = 1, **spec: object) -> Plan:
    return make_plan(job_body(name=f"job-{uid}", uid=uid, replicates=replicates, **spec), Settings())


def allocate(kube: FakeKube, p: Plan) -> dict[int, int]:
    return versions.allocate(cast(Kube, kube), p)


def advance(kube: FakeKube, p: Plan, replicate: int, taken: int) -> int:
    return versions.advance(cast(Kube, kube), p, replicate, taken)


def counter(kube: FakeKube, p: Plan) -> dict[str, object]:
    data = kube.objects[(NAMESPACE, versions.counter_name(p))]["data"]
    return {"next": int(data["next"]), "allocations": json.loads(data["allocations"])}


def test_allocate_numbers_replicates_and_is_idempotent() -> None:
    kube, first = FakeKube(), plan("a", replicates=3)
    assert allocate(kube, first) == {0: 0, 1: 1, 2: 2}
    writes = kube.writes
    assert allocate(kube, first) == {0: 0, 1: 1, 2: 2}
    assert kube.writes == writes  # a restart re-reads, it does not write
    assert counter(kube, first) == {"next": 3, "allocations": {"a/0": 0, "a/1": 1, "a/2": 2}}
    cm = kube.objects[(NAMESPACE, versions.counter_name(first))]
    assert cm["metadata"]["name"] == f"seqmodel-versions-{first.version_key}"
    assert cm["metadata"]["labels"][C.LABEL_CANONICAL] == first.version_key
    assert cm["metadata"]["annotations"][C.ANNOTATION_CANONICAL] == first.canonical


def test_a_second_job_with_the_same_name_gets_the_next_numbers() -> None:
    kube = FakeKube()
    allocate(kube, plan("a", replicates=3))
    assert allocate(kube, plan("b", replicates=2)) == {0: 3, 1: 4}
    assert allocate(kube, plan("a", replicates=3)) == {0: 0, 1: 1, 2: 2}


def test_other_names_claims_and_roots_count_on_their_own() -> None:
    kube = FakeKube()
    allocate(kube, plan("a", replicates=2))
    other_name = plan("b", hparams={"d_model": 32})
    other_root = plan("c", output={"claim": "out", "root": "elsewhere"})
    assert allocate(kube, other_name) == {0: 0}
    assert allocate(kube, other_root) == {0: 0}
    assert len(kube.objects) == 3


def test_a_more_replicates_plan_keeps_the_old_ones() -> None:
    kube = FakeKube()
    allocate(kube, plan("a", replicates=1))
    allocate(kube, plan("b", replicates=1))
    assert allocate(kube, plan("a", replicates=2)) == {0: 0, 1: 2}


@pytest.mark.parametrize("racing_on_create", [True, False])
def test_racing_allocations_never_share_a_version(racing_on_create: bool) -> None:
    kube = FakeKube()
    first, second = plan("a", replicates=2), plan("b", replicates=2)
    if not racing_on_create:
        allocate(kube, plan("z"))  # the counter exists: replace races
    inner: dict[int, int] = {}
    kube.before_write = lambda: inner.update(allocate(kube, second))
    writes = kube.writes
    outer = allocate(kube, first)
    assert kube.writes - writes == 3  # the outer write lost (409), the inner one won, the outer retry won
    assert inner and set(inner.values()).isdisjoint(outer.values())
    start = 0 if racing_on_create else 1
    assert sorted([*inner.values(), *outer.values()]) == list(range(start, start + 4))
    assert allocate(kube, first) == outer and allocate(kube, second) == inner


def test_advance_moves_a_taken_version_once() -> None:
    kube, p = FakeKube(), plan("a", replicates=3)
    allocate(kube, p)
    assert advance(kube, p, 1, 1) == 3
    assert advance(kube, p, 1, 1) == 3  # a retried handler
    assert counter(kube, p) == {"next": 4, "allocations": {"a/0": 0, "a/1": 3, "a/2": 2}}
    assert allocate(kube, p) == {0: 0, 1: 3, 2: 2}
    assert advance(kube, p, 1, 3) == 4  # taken again: further still
    assert allocate(kube, plan("b")) == {0: 5}


def test_advance_past_a_version_beyond_the_counter() -> None:
    """After the cluster's state was lost, the volume may hold versions the counter never gave out."""
    kube, p = FakeKube(), plan("a")
    allocate(kube, p)
    kube.objects[(NAMESPACE, versions.counter_name(p))]["data"]["allocations"] = json.dumps({"a/0": 9})
    assert advance(kube, p, 0, 9) == 10
    assert counter(kube, p)["next"] == 11


class AlwaysConflicting(FakeKube):
    def replace_config_map(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes += 1
        raise ApiException(status=409, reason="Conflict")


def test_twenty_conflicts_in_a_row_give_up() -> None:
    kube, p = AlwaysConflicting(), plan("a")
    allocate(kube, plan("z"))  # creates the counter
    with pytest.raises(RuntimeError, match=r"20 conflicts in a row"):
        allocate(kube, p)
    assert kube.writes == 1 + versions.CONFLICT_RETRIES


def test_other_api_errors_are_not_retried() -> None:
    class Broken(FakeKube):
        def create_config_map(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            self.writes += 1
            raise ApiException(status=403, reason="Forbidden")

    kube = Broken()
    with pytest.raises(ApiException):
        allocate(kube, plan("a"))
    assert kube.writes == 1


def test_a_likely_new_counter_is_created_without_a_read_and_an_existing_one_still_counts() -> None:
    kube = FakeKube()
    reads = []
    get = kube.get_config_map
    kube.get_config_map = lambda ns, name: reads.append(name) or get(ns, name)  # type: ignore[method-assign]
    assert versions.allocate(cast(Kube, kube), plan("a", replicates=2), likely_new=True) == {0: 0, 1: 1}
    assert (reads, kube.writes) == ([], 1)
    # the guess was wrong: the create meets 409, then read and replace as usual
    assert versions.allocate(cast(Kube, kube), plan("b"), likely_new=True) == {0: 2}
    assert (len(reads), kube.writes) == (1, 3)
