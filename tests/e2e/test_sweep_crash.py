"""Issues 5 and 15: the operator killed with SIGKILL five times at random moments of a 300-trial sweep on kwok
nodes, a grid sweep and a TPE + ASHA one.

The test runs its own operator (a namespace outside the session operator's `e2e-op-*`) that puts pods on
the kwok nodes, where they end after a second with a run summary as termination message (val/loss = the
run's lr: the results are scripted). The kill moments are random (the seed is in every failure message)
but always inside the sweep: each comes a random fraction of a second after the watch has seen a random
number of runs.

Grid: in the end exactly 300 trials, `<sweep>-0..299` once each (never deleted and made again), one child
Job per trial replicate, every one counted in status, and parallelism never exceeded at any moment, kills
included, as a watch of the trials saw it. TPE + ASHA: every trial and every promotion made once, and
each promotion allowed by ASHA's rule on the results as they stood when it was made: the operator decides
promotions on a consistent snapshot of the runs, which is a prefix of the API server's history before the
promotion's creation, and records where the trial stood in it ("rank k of n"), which the watch's history
must confirm exactly.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Iterator

import pytest
from kubernetes import client

from e2e_support import (LABEL_PARENT_UID, LABEL_SWEEP, LABEL_TRIAL, STJ_API, STJ_PLURAL, TERMINAL, OperatorProcess,
                         StjWatch, condition, get_sweep, kubectl_apply, kwok_operator, sweep, trials_of, wait_for,
                         wait_sweep_phase)
from seqmodel.contract.sweep_plan import Run, Search, run_name
from seqmodel_operator.constants import ANNOTATION_CONDITIONED as CONDITIONED
from seqmodel_operator.constants import ANNOTATION_PROMOTED_AS as PROMOTED_AS
from seqmodel_operator.constants import LABEL_RUNG

TRIALS, PARALLELISM, KILLS = 300, 50, 5
SWEEP_TIMEOUT = 600  # seconds; about 1-2 minutes on a quiet machine
LRS = [round(0.0001 * (i + 1), 6) for i in range(30)]  # x 10 warmup_steps = 300 trials


@pytest.fixture
def kwok_op(cluster, crds, namespace) -> Iterator[OperatorProcess]:
    """This test's operator, for its namespace only, placing pods on kwok nodes (not started yet)."""
    proc = kwok_operator(cluster.kubeconfig, [namespace], cluster.layout.logs / f"operator-{namespace}.log",
                         run_for="1s")
    proc.env["SEQMODEL_OPERATOR_SWEEP_TRIAL_RATE"] = "200"  # high, but through the token bucket
    try:
        yield proc
    finally:
        proc.stop()


def test_operator_killed_five_times_mid_sweep_leaves_exactly_the_trials_all_counted(
        cluster, api, core, batch, namespace, kwok_op, claims):
    ns, name = namespace, "crash"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    why = f"(kill moments from seed {seed}; operator log {kwok_op.log})"
    out = claims(ns).output
    manifest = sweep(name, {
        "template": {"hparams": {"max_steps": 100}, "resources": {"gpus": 0}, "output": {"claim": out}},
        "parameters": {"grid": {"lr": LRS, "warmup_steps": list(range(10))}},
        "parallelism": PARALLELISM, "trialRetries": 0, "objective": {"metric": "val/loss", "goal": "min"}})
    kill_after = sorted(rng.sample(range(PARALLELISM // 2, TRIALS - PARALLELISM), KILLS))  # trials seen

    watch, obj = run_with_kills(cluster, api, ns, name, manifest, kwok_op, kill_after, rng, why)

    # parallelism at every moment the watch saw, across the kills; and reached
    active = watch.active_counts()
    assert max(active) == PARALLELISM, f"at most {max(active)} active {why}"

    # exactly 300 trials, each name once, never deleted and made again
    names = [f"{name}-{i}" for i in range(TRIALS)]
    added = [e.name for e in watch.added()]
    assert sorted(added) == sorted(names) and not [e for e in watch.checked() if e.type == "DELETED"], why
    trials = trials_of(api, ns, name)
    every = client.CustomObjectsApi(api).list_namespaced_custom_object(*STJ_API, ns, STJ_PLURAL)["items"]
    assert len(every) == TRIALS, f"{len(every)} SeqTrainingJobs in {ns} {why}"
    assert [t["metadata"]["name"] for t in trials] == names, why
    assert [t["metadata"]["labels"][LABEL_TRIAL] for t in trials] == [str(i) for i in range(TRIALS)]

    # one child Job per trial replicate (replicates 1): version 0 of each trial's own canonical name
    jobs = batch.list_namespaced_job(ns).items
    by_parent: dict[str, list[str]] = {}
    for j in jobs:
        by_parent.setdefault(j.metadata.labels[LABEL_PARENT_UID], []).append(j.metadata.name)
    assert {t["metadata"]["uid"]: [f"{t['metadata']['name']}-0-v0"] for t in trials} == by_parent, why
    for t in trials:
        (rep,) = t["status"]["replicates"]
        assert (rep["version"], rep["phase"]) == (0, "Succeeded"), (t["metadata"]["name"], rep)

    # the status says what the objects say
    phases = [t["status"]["phase"] for t in trials]
    status = obj["status"]
    assert {k: status[k] for k in ("trials", "created", "active", "succeeded", "failed")} == {
        "trials": TRIALS, "created": TRIALS, "active": 0,
        "succeeded": phases.count("Succeeded"), "failed": phases.count("Failed")}, why
    assert status["succeeded"] + status["failed"] == TRIALS and status["succeeded"] == TRIALS
    done = condition(obj, "Succeeded")
    assert (done["status"], done["reason"]) == ("True", "AllTrialsFinished"), done
    values = [t["status"]["metrics"]["val/loss"] for t in trials]
    best = min(range(TRIALS), key=lambda i: (values[i], i))
    assert status["bestTrial"]["name"] == f"{name}-{best}" and status["bestTrial"]["value"] == values[best]
    assert status["bestTrial"]["hparams"] == {"lr": LRS[0], "warmup_steps": 0}


def run_with_kills(cluster, api, ns: str, name: str, manifest: dict, kwok_op: OperatorProcess,
                   kill_after: list[int], rng: random.Random, why: str) -> tuple[StjWatch, dict]:
    """Apply the sweep, SIGKILL and restart the operator once the watch has seen each number of runs in
    `kill_after` (a random moment later), and wait for the sweep to succeed; its watch and object."""
    try:
        with StjWatch(api, ns, f"{LABEL_SWEEP}={name}") as watch:
            kwok_op.start()
            res = kubectl_apply(cluster.kubectl, ns, manifest)
            assert res.returncode == 0, res.stderr
            for threshold in kill_after:
                wait_for(lambda: len(watch.added()) >= threshold, SWEEP_TIMEOUT, f"{threshold} runs {why}")
                time.sleep(rng.uniform(0, 1.5))
                kwok_op.kill(signal.SIGKILL)
                assert not kwok_op.alive()
                phase = ((get_sweep(api, ns, name) or {}).get("status") or {}).get("phase")
                assert phase not in TERMINAL, f"the sweep ended before kill at {threshold} runs {why}"
                kwok_op.start()
            obj = wait_sweep_phase(api, ns, name, "Succeeded", SWEEP_TIMEOUT)
            time.sleep(2)  # room for a late, wrong creation to show in the watch
    finally:
        kwok_op.stop()  # the checks that follow read objects; no operator changes them meanwhile
    return watch, obj


ASHA = {"min": 1, "max": 9, "eta": 3}  # rungs of 1, 3 and 9 steps


def test_operator_killed_five_times_mid_tpe_asha_sweep_makes_each_trial_and_promotion_once_by_the_rule(
        cluster, api, namespace, kwok_op, claims):
    ns, name = namespace, "adaptive"
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    why = f"(kill moments from seed {seed}; operator log {kwok_op.log})"
    parameters = {"tpe": {"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1.0}}, "trials": TRIALS, "seed": 5}
    objective = {"metric": "val/loss", "goal": "min"}
    manifest = sweep(name, {
        "template": {"hparams": {}, "resources": {"gpus": 0}, "output": {"claim": claims(ns).output}},
        "parameters": parameters, "schedule": {"asha": ASHA}, "parallelism": PARALLELISM, "trialRetries": 0,
        "objective": objective})
    kill_after = sorted(rng.sample(range(PARALLELISM // 2, TRIALS), KILLS))
    watch, obj = run_with_kills(cluster, api, ns, name, manifest, kwok_op, kill_after, rng, why)

    # every run once: no name added twice or deleted, each trial index once at rung 0, promotions one rung up
    events = watch.checked()
    added = [e.name for e in watch.added()]
    assert len(added) == len(set(added)) and not [e for e in events if e.type == "DELETED"], why
    runs = {(int(o["metadata"]["labels"][LABEL_TRIAL]), int(o["metadata"]["labels"][LABEL_RUNG])): o
            for o in trials_of(api, ns, name)}
    assert len(runs) == len(added) and {i for i, _ in runs} == set(range(TRIALS)), why
    for (index, rung), o in runs.items():
        assert o["metadata"]["name"] == run_name(name, index, rung)
        assert rung == 0 or (index, rung - 1) in runs
        assert o["status"]["phase"] == "Succeeded", o["status"]
    assert all(CONDITIONED in runs[i, 0]["metadata"]["annotations"] for i in range(TRIALS))  # TPE says on what

    # every promotion by the rule, on the first n results of its rung, n as it recorded, all written before it
    key_of = {run_name(name, i, r): (i, r) for i, r in runs}
    value = {k: o["status"]["metrics"]["val/loss"] for k, o in runs.items()}
    finished: dict[int, list[tuple[float, int]]] = {}  # rung -> (value, index) in the order they finished
    ended: set[tuple[int, int]] = set()
    for e in events:
        index, rung = key_of[e.name]
        if e.type == "ADDED" and rung > 0:
            rank, n = (int(w) for w in runs[index, rung]["metadata"]["annotations"][PROMOTED_AS].split()[1:4:2])
            known = finished.get(rung - 1, [])
            assert n <= len(known) and rank <= n // ASHA["eta"], (e.name, rank, n, len(known), why)
            assert sorted(known[:n]).index((value[index, rung - 1], index)) + 1 == rank, (e.name, rank, n, why)
        if e.phase in TERMINAL and (index, rung) not in ended:
            ended.add((index, rung))
            finished.setdefault(rung, []).append((value[index, rung], index))
    # and none missing: with every result in, the rule promotes nothing more
    search = Search(parameters, {"asha": ASHA}, objective)
    assert search.promotions([Run(i, r, {}, "Succeeded", value[i, r]) for i, r in runs]) == [], why

    status = obj["status"]
    top = len(search.asha.budgets) - 1
    assert (status["trials"], status["created"], status["active"], status["algorithm"]) == (TRIALS, TRIALS, 0, "tpe+asha")
    best = min((value[k], k[0]) for k in runs if k[1] == top)
    assert (status["bestTrial"]["index"], status["bestTrial"]["rung"], status["bestTrial"]["value"]) == (best[1], top, best[0])
    started = [sum(r == rung for _, r in runs) for rung in range(top + 1)]
    assert [r["started"] for r in status["rungs"]] == started and started[1] >= TRIALS // ASHA["eta"], status["rungs"]

