"""Issue 5 on the local cluster: `kubectl apply -f manifests/examples/sweep.yaml`, a 3x2 grid with 2
replicates and parallelism 2, trains every trial for real on node-0 (the session's operator).

What must hold: 6 trials named <sweep>-<index> with the grid's hparams in search.grid's order, 12 runs
(versions 0 and 1 of each canonical name, on the output claim and in each trial's status), never more than
`parallelism` trials active at any moment of a watch of the trials, and the best trial chosen from the
trials' own metrics by the objective.
"""

from __future__ import annotations

import json
import statistics

import pytest

from e2e_support import (LABEL_SWEEP, LABEL_TRIAL, RUN_TIMEOUT, StjWatch, condition, kubectl_apply, load_example,
                         trials_of, wait_sweep_phase)
from seqmodel.hparam import registry
from seqmodel.job import search

SWEEP_TIMEOUT = 2 * RUN_TIMEOUT  # 12 small runs, 4 at a time on 2 shared cores


@pytest.mark.slow
def test_example_grid_sweep_trains_every_replicate_within_parallelism_and_picks_the_best(
        cluster, api, core, op_namespace, claims):
    ns = op_namespace
    c = claims(ns)
    manifest = load_example("sweep.yaml", data=c.data, output=c.output)
    name, spec = manifest["metadata"]["name"], manifest["spec"]
    grid = spec["parameters"]["grid"]
    replicates, parallelism, metric = spec["replicates"], spec["parallelism"], spec["objective"]["metric"]
    assert (len(grid), sorted(len(v) for v in grid.values()), replicates) == (2, [2, 3], 2), "not a 3x2 grid x 2"
    params = search.grid({}, grid)  # trial i has params[i]: the order is the contract
    expected = search.grid(spec["template"]["hparams"], grid)

    with StjWatch(api, ns, f"{LABEL_SWEEP}={name}") as watch:
        res = kubectl_apply(cluster.kubectl, ns, manifest)
        assert res.returncode == 0, res.stderr
        obj = wait_sweep_phase(api, ns, name, "Succeeded", SWEEP_TIMEOUT)

    # parallelism at every moment, as the watch saw the trials' writes; and reached, so it was what held them
    active = watch.active_counts()
    assert max(active) == parallelism, f"active trials after each event: {active}"
    added = [e.name for e in watch.added()]  # trials due at once are created in parallel, in any order
    assert sorted(added) == sorted(f"{name}-{i}" for i in range(len(params))), f"not each trial once: {added}"

    # the trials: the template with each trial's parameters, owned by the sweep, each run twice
    trials = trials_of(api, ns, name)
    assert [t["metadata"]["name"] for t in trials] == [f"{name}-{i}" for i in range(6)]
    runs = set()
    for i, trial in enumerate(trials):
        assert trial["metadata"]["labels"][LABEL_TRIAL] == str(i)
        (owner,) = trial["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("SeqSweep", obj["metadata"]["uid"], True)
        assert trial["spec"]["hparams"] == expected[i]
        assert (trial["spec"]["replicates"], trial["spec"]["backoffLimit"]) == (replicates, spec["trialRetries"])
        status = trial["status"]
        canonical = registry().canonical_name(expected[i])
        assert (status["phase"], status["canonicalName"]) == ("Succeeded", canonical)
        assert sorted(r["version"] for r in status["replicates"]) == [0, 1]
        for rep in status["replicates"]:
            assert rep["outputPath"] == f"runs/{canonical}/version_{rep['version']}"
            assert rep["phase"] == "Succeeded"
            run_dir = c.output_dir / rep["outputPath"]
            assert (run_dir / "checkpoints" / "last.ckpt").is_file(), f"no checkpoint in {run_dir}"
            written = json.loads((run_dir / "metrics.json").read_text())
            assert written["global_step"] == expected[i]["max_steps"]
            runs.add((canonical, rep["version"]))
    assert len(runs) == 12
    # on the claim: exactly these 6 canonical names, each with version_0 and version_1 and nothing else
    on_disk = {(d.name, v.name) for d in (c.output_dir / "runs").iterdir() for v in d.iterdir()}
    assert on_disk == {(canonical, f"version_{v}") for canonical, v in runs}

    # the status: counts, and the best trial by the objective (min) over the trials' own metrics
    status = obj["status"]
    assert {k: status[k] for k in ("trials", "created", "active", "succeeded", "failed")} == {
        "trials": 6, "created": 6, "active": 0, "succeeded": 6, "failed": 0}
    done = condition(obj, "Succeeded")
    assert (done["status"], done["reason"], done["observedGeneration"]) == \
        ("True", "AllTrialsFinished", obj["metadata"]["generation"])
    assert status["observedGeneration"] == obj["metadata"]["generation"] and status.get("completionTime")
    values = [t["status"]["metrics"][metric] for t in trials]
    assert len(set(values)) > 1, f"every trial has the same {metric}: the choice would prove nothing"
    best = min(range(len(trials)), key=lambda i: (values[i], i))
    each = [r["metrics"][metric] for r in trials[best]["status"]["replicates"]]  # the mean is of these two
    assert status["bestTrial"] == {"name": f"{name}-{best}", "index": best, "rung": 0,
                                   "value": pytest.approx(values[best]), "replicates": 2,
                                   "sd": pytest.approx(statistics.stdev(each)), "hparams": params[best]}
    assert values[best] == pytest.approx(statistics.fmean(each))

    # what `kubectl get sweep` shows
    row = cluster.kubectl("get", "sweep", name, "-n", ns, "--no-headers").stdout.split()
    assert row[:7] == [name, "Succeeded", "grid", "6", "0", "6", "0"], row
