"""Searches from a notebook: search spaces as lists of hparam dicts (`grid`, `random`, `expand`, from
seqmodel.contract.space, which the operator uses too), run as one Job per point (`submit_all`) or as a
sweep (`sweep`): a SeqSweep the operator runs, or local runs this process drives with the operator's code,
which can also search with TPE (`tpe`) and stop poor trials early with ASHA (`asha=`). Torch-free.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

from seqmodel import contract
from seqmodel.components import registry_for
from seqmodel.hparam import HparamError
from seqmodel.job import spec as S
from seqmodel.job.api import BACKENDS, Job, submit_jobs
from seqmodel.job.defaults import load_config
from seqmodel.job.kube_backend import job_spec
from seqmodel.job.kubeapi import KubeApi, Target
from seqmodel.contract.space import MAX_TRIALS, SearchError, count, expand, grid, random
from seqmodel.contract.sweep_plan import Search
from seqmodel.contract.tpe import check_space, check_startup
from seqmodel.job.local_sweep import LocalSweep
from seqmodel.job.sweep import Sweep, SweepHandle, checked_objective, sweep_body

__all__ = ["SearchError", "check_parameters", "count", "expand", "grid", "random", "submit_all", "sweep", "tpe"]


def tpe(space: Mapping[str, Mapping[str, Any]], trials: int, seed: int = 0,
        startup_trials: int | None = None) -> dict[str, Any]:
    """A sweep's `parameters` for TPE: `space` as for `random` (name -> {distribution, low, high} or
    {distribution: choice, values}); the operator asks Optuna's TPE for each of the `trials` when it starts,
    from the trials finished by then, seeded by (`seed`, trial index). Draws are random until
    `startup_trials` have finished (default: a quarter of the trials, from 2 to 10)."""
    check_space(space)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise SearchError(f"trials: expected a whole number >= 1, got {trials!r}")
    parameters = {"tpe": dict(space), "trials": trials, "seed": seed}
    if startup_trials is not None:
        parameters["startupTrials"] = check_startup(startup_trials, "startup_trials")
    return parameters


def check_parameters(parameters: Mapping[str, Any], base: Mapping[str, Any] | None = None,
                     schedule: Mapping[str, Any] | None = None, objective: Mapping[str, Any] | None = None,
                     sweep_name: str | None = None) -> int:
    """The number of trials, after checking what the API server and the operator would: one kind of search
    (and the schedule), a size the operator runs, known hparam names that a job does not set itself, each
    value (or a distribution's bounds) the hparam takes, and that `sweep_name` leaves room for run names."""
    return _checked_search(parameters, base, schedule, objective, sweep_name).total


def _checked_search(parameters: Mapping[str, Any], base: Mapping[str, Any] | None = None,
                   schedule: Mapping[str, Any] | None = None, objective: Mapping[str, Any] | None = None,
                   sweep_name: str | None = None) -> Search:
    """The sweep's search, checked as check_parameters says."""
    base = dict(base or {})
    trials = count(parameters)
    if trials > MAX_TRIALS:
        raise SearchError(f"parameters: {trials} trials, more than a sweep runs ({MAX_TRIALS})")
    search = Search(parameters, schedule, objective or checked_objective(None))  # structure and distributions
    if sweep_name is not None:
        search.check_name(sweep_name)
    kind = search.kind
    names = set(parameters[kind]) if kind != "list" else {n for trial in parameters["list"] for n in trial}
    for name in sorted(names):
        if name in contract.JOB_OWNED_HPARAMS:
            raise SearchError(f"parameters.{kind}.{name}: set by the job, not searched over")
    reg = registry_for(base)
    if search.points is None:  # tpe: the bounds and choices are what trials can take
        for name in sorted(names):
            spec = parameters[kind][name]
            for key, value in [(k, spec[k]) for k in ("low", "high") if k in spec] + \
                    [(f"values[{i}]", v) for i, v in enumerate(spec.get("values") or ())]:
                try:
                    reg.parse_dict({name: value})
                except HparamError as err:
                    raise SearchError(f"parameters.tpe.{name}.{key}: {err}") from None
        return search
    for i, point in enumerate({**base, **p} for p in search.points):
        try:
            reg.parse_dict({n: point[n] for n in names if n in point})
        except HparamError as err:
            where = f"parameters.{kind}[{i}]" if kind == "list" else f"parameters.{kind} (trial {i})"
            raise SearchError(f"{where}: {err}") from None
    return search


def submit_all(points: Sequence[Mapping[str, Any]], backend: str = "kubernetes", *, name: str | None = None,
               **job_kwargs: Any) -> list[Job]:
    """Submit one Job per hparam dict (from grid, random or your own list), all with the same settings;
    with `name`, job i is named `<name>-<i>`. Every job is checked before the first is submitted.
    Local jobs run at the same time, one process each."""
    jobs = [Job(point, backend, name=f"{name}-{i}" if name else None, **job_kwargs) for i, point in enumerate(points)]
    return submit_jobs(jobs)


def sweep(name: str, template: Job | Mapping[str, Any], parameters: Mapping[str, Any], *,
          backend: str = "kubernetes", replicates: int | None = None, parallelism: int | None = None,
          trial_retries: int | None = None, max_failed_trials: int | None = None,
          asha: Mapping[str, Any] | None = None, objective: Mapping[str, Any] | None = None,
          namespace: str | None = None, config: str | os.PathLike[str] | None = None, api: KubeApi | None = None,
          **settings: Any) -> SweepHandle:
    """Start sweep `name` and return its handle. `backend` "kubernetes" creates a SeqSweep for the operator;
    "local" runs its trials as local Jobs, started by a thread of this process with the operator's planner
    (trials are not retried there). `template` is a Job (a kubernetes one's spec and config; a local one's
    hparams and config), a SeqTrainingJob spec (a mapping with `hparams`; locally only those count), or
    base hparams made into a spec as Job would, with `config` and `settings` (data, output, resources,
    ...). `parameters` is the sweep's: {grid: {...}}, {random: {...}, trials: n, seed: s}, {list: [...]} or
    `tpe(...)`. `asha` ({min, max, eta}, in steps) runs every trial `min` steps first and lets the best
    1/eta of each rung go on, resuming, to eta times the steps. `objective` defaults to minimising
    val/loss; the counts left None take the CRD's defaults (`kubectl explain sweep.spec`)."""
    if backend not in BACKENDS:
        raise S.JobSpecError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(template, Job):
        spec = template.spec if template.backend == "kubernetes" else {"hparams": dict(template.hparams)}
        job_config = template.config
        if namespace:
            job_config = dataclasses.replace(job_config, namespace=namespace)
    else:
        job_config = load_config(config, namespace=namespace, **settings)
        spec = (dict(template, hparams=S.checked_hparams(template["hparams"])) if "hparams" in template
                else {"hparams": S.checked_hparams(template)} if backend == "local"
                else job_spec(S.checked_hparams(template), job_config))
    contract.check_name(name, "sweep", contract.MAX_JOB_NAME_CHARS - len(f"-{MAX_TRIALS - 1}"))
    schedule = {"asha": dict(asha)} if asha is not None else None
    search = _checked_search(parameters, spec.get("hparams") or {}, schedule, checked_objective(objective), name)
    if backend == "local":
        if trial_retries:
            raise S.JobSpecError("trial_retries: local trials are not retried; leave it unset")
        body = sweep_body(name, "", {"hparams": spec["hparams"]}, parameters, replicates=replicates,
                          parallelism=parallelism, max_failed_trials=max_failed_trials, objective=objective,
                          schedule=schedule)
        return LocalSweep(name, body["spec"], search, job_config).start()
    target = Target(job_config, api)
    body = sweep_body(name, target.namespace, spec, parameters, replicates=replicates, parallelism=parallelism,
                      trial_retries=trial_retries, max_failed_trials=max_failed_trials, objective=objective,
                      schedule=schedule)
    target.api.create(contract.SWEEP_PLURAL, target.namespace, body)
    return Sweep.on(name, target)
