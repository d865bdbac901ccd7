"""Issue 5: a sweep's life apart from its trials' results. Deleting it deletes its trials and their Jobs
and pods (the garbage collector, through ownerReferences); `spec.suspend` stops new trials while the
running ones go on, and lifting it continues the sweep; what `kubectl apply` refuses, naming the
parameter (the CRD schema, generated from the hparam registry); and objects that already hold a trial's
name (`<sweep>-<index>`): a user's job stops the sweep saying so, a deleted namesake's trial only delays it.

Trials run on kwok nodes (3 s each) under this module's own operator, which watches `e2e-kwsweep-*`.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable, Iterator

import pytest
from kubernetes import client, config

from e2e_support import (LABEL_PARENT_UID, LABEL_SWEEP, LABEL_SWEEP_UID, LABEL_TRIAL, STJ_API, STJ_PLURAL,
                         SWEEP_PLURAL, OperatorProcess, StjWatch, condition, get_stj, get_sweep, kubectl_apply,
                         kwok_operator, new_namespace, stj, sweep, trials_of, wait_for, wait_sweep_phase)

GLOB = "e2e-kwsweep-*"
HOLD = "e2e.seqmodel.dev/hold"  # a finalizer of the tests' own, that keeps a deleted object for a while


def template(output: str) -> dict:
    """A trial's spec: what the kwok pods get needs no more (they run 3 s whatever the hparams)."""
    return {"hparams": {"max_steps": 100}, "resources": {"gpus": 0}, "output": {"claim": output}}


@pytest.fixture(scope="module")
def kwok_op(cluster, crds) -> Iterator[OperatorProcess]:
    """One operator for this module's namespaces, placing pods on kwok nodes where they run 3 s."""
    proc = kwok_operator(cluster.kubeconfig, [GLOB], cluster.layout.logs / "operator-kwsweep.log", run_for="3s")
    proc.verbose = True
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        proc.start().watching_new_namespaces(client.CoreV1Api(api), "kwsweep-probe")
        yield proc
    finally:
        proc.stop()
        api.close()


@pytest.fixture
def kw_namespace(cluster, core, kwok_op, request) -> Iterator[str]:
    """A fresh namespace that this module's operator watches."""
    ns = new_namespace(core, f"kwsweep-{request.node.name}")
    yield ns
    core.delete_namespace(ns)


def patch_sweep(api: client.ApiClient, ns: str, name: str, spec: dict) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(*STJ_API, ns, SWEEP_PLURAL, name, {"spec": spec})


def test_deleting_a_sweep_deletes_its_trials_their_jobs_and_pods(cluster, api, core, batch, kw_namespace, claims):
    ns, name = kw_namespace, "gone"
    manifest = sweep(name, {"template": template(claims(ns).output), "parallelism": 3,
                            "parameters": {"grid": {"lr": [0.001, 0.002, 0.003, 0.004]}}})
    assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0
    uids = wait_for(lambda: len(t := trials_of(api, ns, name)) == 3 and {x["metadata"]["uid"] for x in t}, 60,
                    "3 trials")
    wait_for(lambda: {j.metadata.labels[LABEL_PARENT_UID] for j in batch.list_namespaced_job(ns).items} == uids
             and len(core.list_namespaced_pod(ns).items) >= 3, 60, "a Job and a pod for each trial")

    res = cluster.kubectl("delete", "sweep", name, "-n", ns, check=False)
    assert res.returncode == 0, res.stderr

    wait_for(lambda: not trials_of(api, ns, name), 60, "the garbage collector to delete the trials")
    wait_for(lambda: not batch.list_namespaced_job(ns).items, 60, "the trials' Jobs to be deleted")
    wait_for(lambda: not core.list_namespaced_pod(ns).items, 60, "their pods to be deleted")
    assert get_sweep(api, ns, name) is None
    time.sleep(2)  # an operator that missed the deletion would make trials again
    assert not trials_of(api, ns, name)


def test_suspend_stops_new_trials_and_resuming_continues(cluster, api, kw_namespace, claims):
    ns, name = kw_namespace, "pause"
    manifest = sweep(name, {"template": template(claims(ns).output), "parallelism": 1,
                            "parameters": {"grid": {"lr": [0.001, 0.002]}}})
    with StjWatch(api, ns, f"{LABEL_SWEEP}={name}") as watch:
        assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0
        wait_for(lambda: watch.added(), 60, "the first trial")
        patch_sweep(api, ns, name, {"suspend": True})
        suspended = wait_sweep_phase(api, ns, name, "Suspended", 60)
        assert suspended["status"]["active"] == 1, suspended["status"]  # trial 0 still runs: nothing was due
        cond = condition(suspended, "Suspended")
        assert (cond["status"], cond["observedGeneration"]) == ("True", suspended["metadata"]["generation"])
        # the running trial goes on and finishes; no trial takes its place while suspended
        wait_for(lambda: {e.name: e.phase for e in watch.checked()}[f"{name}-0"] == "Succeeded", 60,
                 "trial 0 to finish")
        held = wait_for(lambda: (s := get_sweep(api, ns, name)["status"])["active"] == 0 and s, 30,
                        "the sweep's status to count trial 0 finished")
        time.sleep(3)  # several of the operator's status intervals and reconciles
        assert [e.name for e in watch.added()] == [f"{name}-0"], "a trial started while the sweep was suspended"
        assert (held["phase"], held["created"], held["succeeded"]) == ("Suspended", 1, 1), held
        assert get_sweep(api, ns, name)["status"]["phase"] == "Suspended"

        patch_sweep(api, ns, name, {"suspend": False})
        done = wait_sweep_phase(api, ns, name, "Succeeded", 120)
    assert [e.name for e in watch.added()] == [f"{name}-0", f"{name}-1"]
    assert max(watch.active_counts()) == 1
    assert (done["status"]["created"], done["status"]["succeeded"]) == (2, 2)
    assert condition(done, "Suspended")["status"] == "False"


# --- refused at apply -------------------------------------------------------------------------------------
BASE: dict[str, Any] = {"template": template("out"), "parameters": {"grid": {"lr": [0.001, 0.002]}}}


def case(change: Callable[[dict], None], name: str = "bad") -> dict:
    manifest = sweep(name, copy.deepcopy(BASE))
    change(manifest)
    return manifest


def params(**parameters: Any) -> Callable[[dict], None]:
    return lambda m: m["spec"].update(parameters=parameters)


REFUSED = {  # id: (manifest, what stderr must name)
    "empty-grid-list": (case(params(grid={"lr": []})), "spec.parameters.grid.lr"),
    "empty-grid": (case(params(grid={})), "spec.parameters.grid"),
    "unknown-grid-parameter": (case(params(grid={"no_such_hparam": [1, 2]})), "spec.parameters.grid.no_such_hparam"),
    "grid-value-out-of-range": (case(params(grid={"dropout": [0.1, 1.5]})), "spec.parameters.grid.dropout[1]"),
    "grid-value-wrong-type": (case(params(grid={"batch_size": [8, "big"]})), "spec.parameters.grid.batch_size[1]"),
    "random-bound-out-of-range": (case(params(random={"dropout": {"distribution": "uniform", "low": 0.0, "high": 2.0}},
                                              trials=4)), "spec.parameters.random.dropout.high"),
    "random-unknown-parameter": (case(params(random={"no_such_hparam": {"distribution": "choice", "values": [1]}},
                                             trials=4)), "spec.parameters.random.no_such_hparam"),
    "list-unknown-parameter": (case(params(list=[{"lr": 0.1}, {"no_such_hparam": 1}])),
                               "spec.parameters.list[1].no_such_hparam"),
    "list-value-out-of-range": (case(params(list=[{"lr": 0.1}, {"batch_size": 0}])),
                                "spec.parameters.list[1].batch_size"),
    "grid-and-list": (case(params(grid={"lr": [0.1]}, list=[{"lr": 0.2}])),
                      "spec.parameters: set exactly one of grid, random, list and tpe"),
    "tpe-bound-out-of-range": (case(params(tpe={"dropout": {"distribution": "uniform", "low": 0.0, "high": 2.0}},
                                           trials=4)), "spec.parameters.tpe.dropout.high"),
    "tpe-without-trials": (case(params(tpe={"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2}})),
                           "spec.parameters.trials goes with random or tpe"),
    "startup-trials-without-tpe": (case(params(grid={"lr": [0.1]}, startupTrials=3)),
                                   "spec.parameters.startupTrials goes with tpe only"),
    "tpe-without-objective": (case(params(tpe={"lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2}},
                                          trials=4)), "spec.objective: tpe and asha rank trials by it"),
    "asha-min-over-max": (case(lambda m: m["spec"].update(schedule={"asha": {"min": 90, "max": 30}},
                                                          objective={"metric": "val/loss"})),
                          "spec.schedule.asha: min <= max"),
    "asha-eta-1": (case(lambda m: m["spec"].update(schedule={"asha": {"min": 10, "max": 30, "eta": 1}},
                                                   objective={"metric": "val/loss"})), "spec.schedule.asha.eta"),
    "operator-owned-parameter": (case(params(grid={"default_root_dir": ["/tmp/x"]})),
                                 "spec.parameters.grid.default_root_dir"),
    "template-unknown-hparam": (case(lambda m: m["spec"]["template"]["hparams"].update(no_such_hparam=1)),
                                "spec.template.hparams.no_such_hparam"),
    "zero-parallelism": (case(lambda m: m["spec"].update(parallelism=0)), "spec.parallelism"),
}


@pytest.mark.parametrize("manifest, field", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_search_space_is_refused_at_apply_naming_the_parameter(cluster, api, crds, namespace, manifest, field):
    res = kubectl_apply(cluster.kubectl, namespace, manifest)

    assert res.returncode != 0, f"accepted: {res.stdout}"
    assert field in res.stderr, res.stderr
    assert "no such key" not in res.stderr, f"a validation rule failed to evaluate: {res.stderr}"
    assert get_sweep(api, namespace, manifest["metadata"]["name"]) is None


def test_a_sweeps_search_space_cannot_change_but_its_parallelism_can(cluster, api, crds, namespace):
    manifest = case(lambda m: m["spec"].update(suspend=True), name="fixed")  # no operator here: nothing runs
    assert kubectl_apply(cluster.kubectl, namespace, manifest).returncode == 0
    changed = copy.deepcopy(manifest)
    changed["spec"]["parameters"]["grid"]["lr"].append(0.004)
    res = kubectl_apply(cluster.kubectl, namespace, changed)
    assert res.returncode != 0 and "spec.parameters cannot change after the sweep is created" in res.stderr, res.stderr
    faster = copy.deepcopy(manifest)
    faster["spec"]["parallelism"] = 4
    res = kubectl_apply(cluster.kubectl, namespace, faster)
    assert res.returncode == 0, res.stderr
    obj = get_sweep(api, namespace, "fixed")
    assert (obj["spec"]["parallelism"], obj["spec"]["parameters"]["grid"]) == (4, BASE["parameters"]["grid"])


def test_a_job_that_holds_a_trials_name_stops_the_sweep_saying_so(cluster, api, kw_namespace, claims):
    ns, out = kw_namespace, claims(kw_namespace).output
    mine = stj("clash-0", {**template(out), "suspend": True})  # a user's own job, named like the sweep's trial 0
    assert kubectl_apply(cluster.kubectl, ns, mine).returncode == 0
    manifest = sweep("clash", {"template": template(out), "parameters": {"grid": {"lr": [0.001, 0.002]}}})
    assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0

    obj = wait_sweep_phase(api, ns, "clash", "Failed", 60)
    assert "clash-0" in obj["status"]["message"], obj["status"]
    assert condition(obj, "Succeeded")["reason"] == "InvalidSpec"
    assert LABEL_SWEEP not in (get_stj(api, ns, "clash-0")["metadata"].get("labels") or {})


def test_a_namesakes_trial_still_being_deleted_delays_the_new_sweep_and_is_not_taken_for_its_trial(
        cluster, api, kw_namespace, claims):
    ns, name, out = kw_namespace, "again", claims(kw_namespace).output
    custom = client.CustomObjectsApi(api)
    # trial 0 of an earlier sweep of this name, deleted, but held by a finalizer: the garbage collector's
    # moment between a sweep's deletion and its trials' going, made to last
    old = stj(f"{name}-0", {**template(out), "suspend": True})
    old["metadata"].update(
        labels={LABEL_SWEEP: name, LABEL_SWEEP_UID: "earlier", LABEL_TRIAL: "0"},
        finalizers=[HOLD], ownerReferences=[{"apiVersion": "seqmodel.dev/v1alpha1", "kind": "SeqSweep",
                                             "name": name, "uid": "d0d0d0d0-0000-4000-8000-000000000000"}])
    assert kubectl_apply(cluster.kubectl, ns, old).returncode == 0
    wait_for(lambda: get_stj(api, ns, f"{name}-0")["metadata"].get("deletionTimestamp"), 60,
             "the garbage collector to delete the earlier trial (its owner is gone)")
    manifest = sweep(name, {"template": template(out), "parameters": {"grid": {"lr": [0.001, 0.002]}},
                            "parallelism": 2})
    assert kubectl_apply(cluster.kubectl, ns, manifest).returncode == 0

    wait_for(lambda: get_stj(api, ns, f"{name}-1"), 60, "trial 1")
    time.sleep(3)  # retries of trial 0 meet the earlier one
    obj = get_sweep(api, ns, name)
    assert (obj.get("status") or {}).get("phase") != "Failed", obj["status"]
    assert get_stj(api, ns, f"{name}-0")["metadata"]["labels"][LABEL_SWEEP_UID] == "earlier"
    custom.patch_namespaced_custom_object(*STJ_API, ns, STJ_PLURAL, f"{name}-0", {"metadata": {"finalizers": None}})

    obj = wait_sweep_phase(api, ns, name, "Succeeded", 120)
    trials = trials_of(api, ns, name)
    assert [t["metadata"]["name"] for t in trials] == [f"{name}-0", f"{name}-1"]
    assert {t["metadata"]["labels"][LABEL_SWEEP_UID] for t in trials} == {obj["metadata"]["uid"]}
    assert (obj["status"]["created"], obj["status"]["succeeded"]) == (2, 2)
