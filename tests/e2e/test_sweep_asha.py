"""Issue 15 on the local cluster: `kubectl apply -f manifests/examples/sweep-asha.yaml`, ASHA over 9
configurations (min 20, max 180, eta 3) trains for real on node-0 (the session's operator).

What must hold: 9 runs at rung 0; the best third of each rung's final results promoted (ASHA is
asynchronous: a trial promoted while few had finished stays promoted, so a rung may send up more than a
third, up to 7 of 9 when results come in best last); each promotion by the rule on the results it records
(`seqmodel.dev/promoted-as`; tests/e2e/test_sweep_crash.py checks such records against the API server's
history, tests/unit/test_adaptive_search.py the rule on tables); each
promotion resuming every replicate from the run below (its log says so, and no step is trained twice);
each run trained exactly to its rung's budget; and the best trial at the top rung.
"""

from __future__ import annotations

import csv
import json

import pytest

from e2e_support import (LABEL_SWEEP, RUN_TIMEOUT, job_pods, kubectl_apply, load_example, trainer_log,
                         trials_of, wait_sweep_phase)
from seqmodel.contract.asha import RungResult, ranking
from seqmodel_operator.constants import ANNOTATION_PROMOTED_AS as PROMOTED_AS

SWEEP_TIMEOUT = 4 * RUN_TIMEOUT  # 13 small runs, 3 at a time on 2 shared cores
LABEL_RUNG = "seqmodel.dev/rung"


@pytest.mark.slow
def test_example_asha_sweep_promotes_the_best_by_resuming_and_ends_at_the_top_rung(
        cluster, api, core, op_namespace, claims):
    ns = op_namespace
    c = claims(ns)
    manifest = load_example("sweep-asha.yaml", data=c.data, output=c.output)
    name, spec = manifest["metadata"]["name"], manifest["spec"]
    asha, metric = spec["schedule"]["asha"], spec["objective"]["metric"]
    assert (asha["min"], asha["max"], asha["eta"]) == (20, 180, 3), "not the issue's schedule"
    budgets = (20, 60, 180)

    res = kubectl_apply(cluster.kubectl, ns, manifest)
    assert res.returncode == 0, res.stderr
    obj = wait_sweep_phase(api, ns, name, "Succeeded", SWEEP_TIMEOUT)

    runs = {(int(r["metadata"]["labels"]["seqmodel.dev/trial"]), int(r["metadata"]["labels"][LABEL_RUNG])): r
            for r in trials_of(api, ns, name)}
    by_rung = [sorted(i for i, rung in runs if rung == k) for k in range(3)]
    assert len(by_rung[0]) == 9 and 3 <= len(by_rung[1]) <= 7 and by_rung[2], sorted(runs)
    value = {key: run["status"]["metrics"][metric] for key, run in runs.items()}
    # the rule on the final results: the top third of each rung went on, and only trials from the rung below
    for k in (0, 1):
        results = [RungResult(i, k, value[(i, k)]) for i in by_rung[k]]
        assert set(ranking(results)[:len(results) // 3]) <= set(by_rung[k + 1]) <= set(by_rung[k]), (k, results)

    for (index, rung), run in runs.items():
        assert run["metadata"]["name"] == (f"{name}-{index}" if rung == 0 else f"{name}-{index}-r{rung}")
        assert run["spec"]["hparams"]["max_steps"] == budgets[rung]
        (rep,) = run["status"]["replicates"]
        run_dir = c.output_dir / rep["outputPath"]
        assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == budgets[rung]
        if rung == 0:
            assert "checkpoint" not in run["spec"]
            continue
        below = runs[(index, rung - 1)]
        rank, known = (int(w) for w in run["metadata"]["annotations"][PROMOTED_AS].split()[1:4:2])
        assert rank <= known // 3 and known <= len(by_rung[rung - 1]), run["metadata"]["annotations"]
        assert run["spec"]["checkpoint"] == {"fromJob": below["metadata"]["name"], "use": "resume",
                                             "eachReplicate": True, "file": "checkpoints/last.ckpt",
                                             "replicate": 0}  # the last two: the CRD's defaults
        assert run["status"]["canonicalName"] == below["status"]["canonicalName"]  # the same trial's name
        assert rep["version"] > below["status"]["replicates"][0]["version"]  # its next version
        (pod,) = [p for p in job_pods(core, ns, rep["job"]) if p.status.phase == "Succeeded"]
        assert f"resuming from /checkpoint/last.ckpt at step {budgets[rung - 1]}" in trainer_log(core, ns, pod)
        steps = [int(row["step"]) for row in csv.DictReader(open(run_dir / "csv" / "version_0" / "metrics.csv"))]
        assert min(steps) >= budgets[rung - 1], f"{run['metadata']['name']} trained steps again: {min(steps)}"

    status = obj["status"]
    top = min(((i, 2) for i in by_rung[2]), key=lambda key: (value[key], key[0]))
    assert status["algorithm"] == "grid+asha" and status["trials"] == 9 and status["created"] == 9
    assert (status["bestTrial"]["name"], status["bestTrial"]["rung"]) == (runs[top]["metadata"]["name"], 2)
    assert status["bestTrial"]["value"] == pytest.approx(value[top])
    counts = [len(r) for r in by_rung]
    assert [(r["rung"], r["budget"], r["started"], r["succeeded"]) for r in status["rungs"]] == [
        (k, budgets[k], counts[k], counts[k]) for k in range(3)]
    assert [r.get("promoted") for r in status["rungs"]] == [counts[1], counts[2], None]
    trained = sum(counts[k] * (budgets[k] - (budgets[k - 1] if k else 0)) for k in range(3))
    assert trained <= 9 * budgets[-1] * 2 / 3, f"{trained} steps: no saving over the grid's {9 * budgets[-1]}"
    assert LABEL_SWEEP in runs[top]["metadata"]["labels"]
