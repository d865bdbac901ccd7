"""bench/bench_operator.py's pure helpers: the /metrics parser, the write and read counts, percentiles, /proc."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.bench_operator import (operator_reads, operator_writes, parse_request_totals, percentile,  # noqa: E402
                                  proc_cpu_seconds, proc_status_kib)

METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, ...
# TYPE apiserver_request_total counter
apiserver_request_total{code="201",component="apiserver",dry_run="",group="seqmodel.dev",resource="seqtrainingjobs",scope="resource",subresource="",verb="POST",version="v1alpha1"} 203
apiserver_request_total{code="200",component="apiserver",dry_run="",group="seqmodel.dev",resource="seqtrainingjobs",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 400
apiserver_request_total{code="409",component="apiserver",dry_run="",group="seqmodel.dev",resource="seqtrainingjobs",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 3
apiserver_request_total{code="201",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 200
apiserver_request_total{code="200",component="apiserver",dry_run="",group="batch",resource="jobs",scope="resource",subresource="status",verb="PUT",version="v1"} 800
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 201
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="events",scope="resource",subresource="",verb="POST",version="v1"} 999
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="jobs",scope="resource",subresource="",verb="POST",version="v1"} 5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="",resource="pods",verb="LIST"} 12
"""


def test_parse_request_totals_keys_by_verb_group_resource_subresource_code() -> None:
    totals = parse_request_totals(METRICS)
    assert totals[("PATCH", "seqmodel.dev", "seqtrainingjobs", "status", "409")] == 3
    assert totals[("PUT", "batch", "jobs", "status", "200")] == 800
    assert totals[("LIST", "", "pods", "", "200")] == 7
    assert sum(totals.values()) == 203 + 400 + 3 + 200 + 800 + 201 + 999 + 7 + 5  # not the duration histogram


def test_parse_sums_label_sets_that_differ_only_in_unkeyed_labels_and_reads_escapes() -> None:
    text = ('apiserver_request_total{code="200",component="apiserver",resource="pods",verb="GET",version="v1"} 2\n'
            'apiserver_request_total{code="200",component="",resource="pods",verb="GET",version="v1"} 3e0\n'
            'apiserver_request_total{code="200",resource="pods",scope="a\\"b",verb="GET"} 1\n')
    assert parse_request_totals(text) == Counter({("GET", "", "pods", "", "200"): 6})


def test_operator_writes_counts_its_resources_only_and_takes_off_the_benchs_creates() -> None:
    before = Counter({("POST", "seqmodel.dev", "seqtrainingjobs", "", "201"): 3,
                      ("PATCH", "seqmodel.dev", "seqtrainingjobs", "status", "409"): 3,
                      ("POST", "", "configmaps", "", "201"): 1})
    writes = operator_writes(before, parse_request_totals(METRICS), own_creates=200)
    assert writes == Counter({("PATCH", "seqtrainingjobs", "status", "200"): 400,
                              ("POST", "jobs", "", "201"): 200, ("POST", "configmaps", "", "201"): 200})
    # jobs/status is the Job controller's, events everyone's, apps/jobs not batch: none of them counted


def test_operator_writes_never_reports_a_negative_count() -> None:
    totals = parse_request_totals(METRICS)
    assert ("POST", "seqtrainingjobs", "", "201") not in operator_writes(totals, totals, own_creates=200)


def test_operator_reads() -> None:
    assert operator_reads(Counter(), parse_request_totals(METRICS)) == Counter({("LIST", "pods"): 7})


@pytest.mark.parametrize(("q", "expected"), [(50, 50), (99, 99), (100, 100), (0, 1), (1, 1)])
def test_percentile_is_nearest_rank(q: float, expected: float) -> None:
    assert percentile(range(100, 0, -1), q) == expected


def test_percentile_of_few_values() -> None:
    assert percentile([0.3], 99) == 0.3
    assert percentile([1.0, 2.0], 50) == 1.0 and percentile([1.0, 2.0], 51) == 2.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_proc_parsers() -> None:
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t  120432 kB\nVmRSS:\t   98304 kB\n"
    assert (proc_status_kib(status, "VmHWM"), proc_status_kib(status, "VmRSS")) == (120432, 98304)
    with pytest.raises(KeyError):
        proc_status_kib(status, "VmSwap")
    # the command may hold spaces and parentheses; utime and stime are fields 14 and 15
    stat = "4242 (python (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0"
    assert proc_cpu_seconds(stat, ticks=100) == pytest.approx(3.0)
