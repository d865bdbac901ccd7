"""Issue 5: the operator killed with SIGKILL five times at random moments of a 300-trial sweep on kwok nodes.

The test runs its own operator (a namespace outside the session operator's `e2e-op-*`) that puts pods on
the kwok nodes, where they end after a second with a run summary as termination message (val/loss = the
trial's lr). The kill moments are random (the seed is in every failure message) but always inside the
sweep: each comes a random fraction of a second after the watch has seen a random number of trials.

In the end: exactly 300 trials, `<sweep>-0..299` once each (never deleted and made again), one child Job
per trial replicate, every one counted in status, and parallelism never exceeded at any moment, kills
included, as a watch of the trials saw it.
"""

from __future__ import annotations

import random
import signal
import time
from typing import Iterator

import pytest
from kubernetes import client

from e2e_support import (LABEL_PARENT_UID, LABEL_SWEEP, LABEL_TRIAL, STJ_API, STJ_PLURAL, TERMINAL, OperatorProcess,
                         StjEvent, StjWatch, condition, kubectl_apply, kwok_operator, sweep, trials_of, wait_for,
                         wait_sweep_phase)

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

    try:
        with StjWatch(api, ns, f"{LABEL_SWEEP}={name}") as watch:
            kwok_op.start()
            res = kubectl_apply(cluster.kubectl, ns, manifest)
            assert res.returncode == 0, res.stderr
            for threshold in kill_after:
                wait_for(lambda: len(watch.added()) >= threshold, SWEEP_TIMEOUT, f"{threshold} trials {why}")
                time.sleep(rng.uniform(0, 1.5))
                kwok_op.kill(signal.SIGKILL)
                assert not kwok_op.alive()
                finished = sum(e.phase in TERMINAL for e in latest(watch).values())
                assert finished < TRIALS, f"the sweep ended before kill at {threshold} trials {why}"
                kwok_op.start()
            obj = wait_sweep_phase(api, ns, name, "Succeeded", SWEEP_TIMEOUT)
            time.sleep(2)  # room for a late, wrong creation to show in the watch
    finally:
        kwok_op.stop()  # the checks below read objects; no operator changes them meanwhile

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


def latest(watch: StjWatch) -> dict[str, StjEvent]:
    """Each trial's last event so far."""
    return {e.name: e for e in watch.checked()}
