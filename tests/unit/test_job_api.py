"""seqmodel.job.Job: both backends without a cluster or torch (a stand-in interpreter, a fake API whose
SeqTrainingJobs are named by the operator's own planner)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
import torch
import yaml

from job_api_support import METRICS, NAMESPACE, FakeKube, NamingOperator, argv_of, fake_python, finish, stamped_checkpoint
from operator_support import PodsOf, child_job, job_body
from seqmodel.contract import JOB_PLURAL, LABEL_JOB, LABEL_REPLICATE
from seqmodel.job import Job, JobConfigError, JobFailed, JobSpecError, JobStateError, WaitTimeout, joblog
from seqmodel.job.defaults import CONFIG_ENV, JobConfig, load_config
from seqmodel.job.kube_backend import KubeBackend
from seqmodel.job.local_backend import JOB_FILES, LocalBackend
from seqmodel.job.progress import Progress, render
from seqmodel.job.spec import canonical_name
from seqmodel.job.status import Placed
from seqmodel.outputs import checkpoint
from seqmodel.outputs.versions import OWNER_FILE
from seqmodel_operator.plan import make_plan
from seqmodel_operator.settings import Settings

HP = {"d_model": 32, "lr": 0.004, "max_steps": 10}
CANONICAL = "dm=32,lr=0.004"


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's ~/.config/seqmodel/job.yaml."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def local(tmp_path: Path, hparams: dict = HP, **settings) -> Job:
    settings.setdefault("output_dir", str(tmp_path / "out"))
    return Job(hparams, backend="local", python=str(fake_python(tmp_path)), **settings)


def kube(api: FakeKube, tmp_path: Path, hparams: dict = HP, **settings) -> Job:
    settings.setdefault("output_dir", str(tmp_path / "claim"))
    return Job(hparams, backend="kubernetes", api=api, output={"claim": "out"}, **settings)


# --- local backend --------------------------------------------------------------------------------------
def test_local_job_runs_each_replicate_in_its_own_version_with_its_own_seed(tmp_path: Path) -> None:
    job = local(tmp_path, name="pre", replicates=2).submit()
    status = job.wait(timeout=60, poll=0.05, progress=False)
    root = tmp_path / "out" / "runs" / CANONICAL
    assert job.outputs() == [root / "version_0", root / "version_1"]
    assert status.phase == "Succeeded" and [r.phase for r in status.replicates] == ["Succeeded"] * 2
    assert status.metrics == METRICS and status.canonical == CANONICAL
    for version, out in enumerate(job.outputs()):
        argv = argv_of(out)
        assert argv[:3] == ["--d_model=32", "--lr=0.004", "--max_steps=10"]  # the user's, then the job's
        assert argv[3:] == ["--mode=train", f"--default_root_dir={out}", f"--seed={version}"]
        assert (out / OWNER_FILE).read_text().strip() == f"local/pre/{version}"  # claimed like a pod does
    assert job.logs(1) == "training\n"


def test_a_pinned_seed_is_used_by_every_replicate(tmp_path: Path) -> None:
    job = local(tmp_path, {**HP, "seed": 7}, replicates=2).submit()
    job.wait(timeout=60, poll=0.05, progress=False)
    assert [argv_of(out)[-1] for out in job.outputs()] == ["--seed=7", "--seed=7"]


@pytest.mark.parametrize("hparams", [HP, {**HP, "seed": 7}, {**HP, "dropout": 0.0, "seq_file": "my genome.fa"}])
def test_a_replicate_runs_with_the_same_arguments_on_both_backends(tmp_path: Path, hparams: dict) -> None:
    """One rule for seeds and run arguments (seqmodel.contract): the local run's argv is the operator's
    rendered trainer args but for the paths, which are the pod's there."""
    job = local(tmp_path, hparams, replicates=2).submit()
    job.wait(timeout=60, poll=0.05, progress=False)
    plan = make_plan(job_body(hparams=hparams), Settings())
    for version, out in enumerate(job.outputs()):
        pod_args = plan.run_args(version)
        assert argv_of(out) == [a.replace("--default_root_dir=/output", f"--default_root_dir={out}") for a in pod_args]


def test_every_replicate_is_a_row_of_the_job_log_beside_the_runs(tmp_path: Path) -> None:
    job = local(tmp_path, name="pre", replicates=2).submit()
    rows = joblog.read(tmp_path / "out" / "runs" / "jobs.jsonl")
    assert [(r["name"], r["backend"], r["replicate"], r["version"], r["canonical"], r["output"]) for r in rows] == [
        ("pre", "local", i, i, CANONICAL, str(out)) for i, out in enumerate(job.outputs())]
    assert set(rows[0]) == set(joblog.KEYS) and rows[0]["namespace"] is None
    job.wait(timeout=60, poll=0.05, progress=False)


def test_hparam_values_reach_the_run_as_one_word_and_never_run_as_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"x'; touch {marker}; echo '$(touch {marker})`touch {marker}`;touch {marker} \" {{args}}"
    job = local(tmp_path, {**HP, "seq_file": evil}, output_dir=str(tmp_path / "it's $HOME")).submit()
    assert job.wait(timeout=60, poll=0.05, progress=False).phase == "Succeeded"
    assert f"--seq_file={evil}" in argv_of(job.outputs()[0])
    assert not marker.exists()



def test_a_version_a_pod_claimed_is_skipped(tmp_path: Path) -> None:
    taken = tmp_path / "out" / "runs" / CANONICAL / "version_0"
    taken.mkdir(parents=True)
    (taken / OWNER_FILE).write_text("uid-9/0\n")  # a Kubernetes run on the same claim took it
    job = local(tmp_path).submit()
    assert [p.version for p in job.placed] == [1]
    job.wait(timeout=60, poll=0.05, progress=False)
    assert (taken / OWNER_FILE).read_text() == "uid-9/0\n" and not (taken / "argv.json").exists()


def test_a_failed_run_says_why_and_wait_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RUN_EXIT", "2")
    job = local(tmp_path, name="bad").submit()
    with pytest.raises(JobFailed, match="job bad failed: replicate 0: hparam 'x' is bad") as err:
        job.wait(timeout=60, poll=0.05, progress=False)
    assert err.value.status.replicates[0].metrics == {}
    assert job.wait(timeout=1, progress=False, check=False).phase == "Failed"


class _Running:
    """The local driver process, still running."""

    def poll(self) -> None:
        return None


def test_a_failed_replicate_fails_the_job_on_both_backends_while_the_others_run(tmp_path: Path) -> None:
    """One phase rule (seqmodel.contract): Failed once a replicate has failed, the others running on.
    Job.wait() of a local job used to say Running until every replicate had ended."""
    from seqmodel_operator import status as operator_status

    local_job = LocalBackend("two", HP, JobConfig(output_dir=str(tmp_path)))
    for replicate in (0, 1):
        (tmp_path / f"v{replicate}" / JOB_FILES).mkdir(parents=True)
        local_job.placed.append(Placed(replicate, replicate, tmp_path / f"v{replicate}"))
    (tmp_path / "v0" / JOB_FILES / "exit_code").write_text("2\n")
    (tmp_path / "v1" / JOB_FILES / "output.log").write_text("training\n")
    local_job.process = _Running()  # type: ignore[assignment]
    on_kubernetes, _ = operator_status.compute(
        job_body(replicates=2), "dm=64", [child_job(0, 0, failed="BackoffLimitExceeded"),
                                          child_job(1, 1, active=1, ready=1)], PodsOf({}), "t0")

    local = local_job.status()
    assert [r.phase for r in local.replicates] == [r["phase"] for r in on_kubernetes["replicates"]] == [
        "Failed", "Running"]
    assert local.phase == on_kubernetes["phase"] == "Failed"


def test_cancel_stops_the_run_and_it_counts_as_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_RUN_SLEEP", "60")
    job = local(tmp_path).submit()
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="is still (Pending|Running) after 0 s"):
        job.wait(timeout=0.2, poll=0.05, progress=False)
    job.cancel()
    status = job.status()
    assert status.phase == "Failed" and "stopped before it finished" in status.replicates[0].message
    assert time.monotonic() - started < 30


def test_a_local_job_name_is_used_once_per_root(tmp_path: Path) -> None:
    local(tmp_path, name="once").submit().wait(timeout=60, poll=0.05, progress=False)
    with pytest.raises(JobSpecError, match="name: a local job named once was already submitted"):
        local(tmp_path, name="once").submit()


def test_local_checkpoint_paths_are_on_the_output_dir_and_name_the_run_like_the_operator(tmp_path: Path) -> None:
    model = tmp_path / "out" / "runs" / "m" / "version_0"
    (model / "checkpoints").mkdir(parents=True)
    saved = {"hyper_parameters": {"d_model": 48, "lr": 0.01, "batch_size": 64}, "state_dict": {}}
    checkpoint.stamp(saved, None, ["d_model", "lr"])  # the model's run set d_model and lr, not batch_size
    torch.save(saved, model / "checkpoints" / "best.ckpt")
    ckpt = {"path": "runs/m/version_0/checkpoints/best.ckpt"}
    test = local(tmp_path, {"limit_test_batches": 2}, mode="test", checkpoint=ckpt).submit()
    assert test.canonical == "dm=48,lr=0.01"  # predictions are the next version of the model's name
    test.wait(timeout=60, poll=0.05, progress=False)
    assert argv_of(test.outputs()[0])[-1] == f"--load_checkpoint_path={model / 'checkpoints' / 'best.ckpt'}"
    finetune = local(tmp_path, {"lr": 0.003}, checkpoint=ckpt)
    assert finetune.canonical == "lr=0.003"  # an encoder init keeps the run's own name


# --- checks before anything runs ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"hparams": {"default_root_dir": "x"}}, "hparams.default_root_dir: set by the job"),
    ({"hparams": {"d_modle": 3}}, "unknown hparam 'd_modle'; did you mean 'd_model'?"),
    ({"hparams": {"d_model": "wide"}}, "hparam 'd_model'"),
    ({"hparams": {"seq_file": "genome\x00.fa"}}, "hparam 'seq_file' must not contain control characters"),
    ({"hparams": {"seq_file": "genome\n.fa"}}, "hparam 'seq_file' must not contain control characters"),
    ({"backend": "slurm"}, "backend: expected one of kubernetes, local, got 'slurm'"),
    ({"mode": "test"}, "checkpoint: required in test mode"),
    ({"checkpoint": {"path": "a", "fromJob": "b"}}, "checkpoint: set exactly one of fromJob and path"),
    ({"name": "Bad_Name"}, "job name 'Bad_Name': must be lowercase"),
    ({"name": "x" * 46}, "at most 45 characters"),
    ({"replicates": 0}, "replicates must be a whole number >= 1"),
    ({"gpus": 1}, "keyword arguments: unknown setting 'gpus'"),
])
def test_bad_jobs_are_refused_before_anything_is_sent(kwargs: dict, message: str) -> None:
    kwargs = {"hparams": HP, "backend": "kubernetes", "api": FakeKube(), **kwargs}
    with pytest.raises((JobSpecError, JobConfigError, ValueError), match=message):
        Job(kwargs.pop("hparams"), kwargs.pop("backend"), **kwargs)


def test_a_local_job_starts_from_another_local_job_by_name_each_replicate_from_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """checkpoint.fromJob finds the job's outputs in the job log, as the operator finds a job's in its status."""
    monkeypatch.setenv("FAKE_RUN_CHECKPOINT", str(stamped_checkpoint(tmp_path / "model.ckpt", {"lr": 0.004})))
    with pytest.raises(JobSpecError, match=r"checkpoint.fromJob: no local job pretrain in the job log .*jobs.jsonl"):
        local(tmp_path, checkpoint={"fromJob": "pretrain"})
    source = local(tmp_path, name="pretrain", replicates=2).submit()
    source.wait(timeout=60, poll=0.05, progress=False)
    each = local(tmp_path, {"max_steps": 20}, name="more", replicates=2,
                 checkpoint={"fromJob": "pretrain", "use": "resume", "eachReplicate": True}).submit()
    each.wait(timeout=60, poll=0.05, progress=False)
    assert each.canonical == "lr=0.004"  # a resumed run is named as its source (max_steps names no run)
    for mine, theirs in zip(each.outputs(), source.outputs()):
        assert argv_of(mine)[-1] == f"--resume_from_checkpoint={theirs / 'checkpoints' / 'last.ckpt'}"
    one = local(tmp_path, {"task": "finetune"}, replicates=2, checkpoint={"fromJob": "pretrain", "replicate": 1})
    one.submit().wait(timeout=60, poll=0.05, progress=False)
    assert {argv_of(out)[-1] for out in one.outputs()} == {
        f"--load_encoder_from_checkpoint={source.outputs()[1] / 'checkpoints' / 'last.ckpt'}"}
    with pytest.raises(JobSpecError, match="checkpoint.eachReplicate: job pretrain has no replicate 2"):
        local(tmp_path, replicates=3, checkpoint={"fromJob": "pretrain", "eachReplicate": True})
    with pytest.raises(JobSpecError, match=r"checkpoint.replicate: .*version_1/checkpoints/best.ckpt is not a file"):
        local(tmp_path, checkpoint={"fromJob": "pretrain", "replicate": 1, "file": "checkpoints/best.ckpt"})


def test_methods_need_a_submitted_job_and_submit_happens_once(tmp_path: Path) -> None:
    job = local(tmp_path)
    with pytest.raises(JobStateError, match="not submitted yet; call submit"):
        job.status()
    job.submit()
    with pytest.raises(JobStateError, match="was submitted already"):
        job.submit()
    job.wait(timeout=60, poll=0.05, progress=False)


# --- config ---------------------------------------------------------------------------------------------
def test_config_file_then_keyword_arguments_and_paths_relative_to_the_file(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "proj" / "job.yaml"
    conf.parent.mkdir()
    conf.write_text(yaml.safe_dump({"namespace": "team", "output_dir": "volumes/out", "replicates": 3,
                                    "data": {"claim": "genomes"}}))
    monkeypatch.setenv(CONFIG_ENV, str(conf))
    config = load_config(replicates=2, namespace=None)
    assert (config.namespace, config.replicates, config.data) == ("team", 2, {"claim": "genomes"})
    assert config.root_dir == tmp_path / "proj" / "volumes" / "out" / "runs"
    assert config.log_file == config.root_dir / "jobs.jsonl"


def test_the_user_config_is_read_when_no_file_is_named(tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "seqmodel" / "job.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("namespace: mine\n")
    assert load_config().namespace == "mine"


@pytest.mark.parametrize("text, message", [
    ("namespace: a\nnamspace: b\n", "job.yaml: unknown setting 'namspace'"),
    ("- a\n", "job.yaml: expected a mapping of settings, got list"),
    ("a: [\n", "job.yaml: not valid YAML"),
    ("data: genomes\n", "job.yaml: data must be a mapping"),
])
def test_a_bad_config_file_is_named_in_the_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "job.yaml").write_text(text)
    with pytest.raises(JobConfigError, match=message):
        load_config(tmp_path / "job.yaml")


def test_a_missing_config_file_named_by_the_environment_is_an_error(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(JobConfigError, match="nope.yaml: no such file"):
        load_config()


# --- kubernetes backend ---------------------------------------------------------------------------------
def test_kubernetes_job_is_a_seqtrainingjob_with_the_settings_in_their_fields(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator())
    job = kube(api, tmp_path, name="pre", replicates=2, data={"claim": "d", "types": ["genome"]},
               resources={"gpus": 1, "cpu": 1}, backoff_limit=2, image="trainer:1",
               spec={"queueName": "gpu"}).submit()
    body = api.objects[(JOB_PLURAL, NAMESPACE, "pre")]
    assert body["apiVersion"] == "seqmodel.dev/v1alpha1" and body["kind"] == "SeqTrainingJob"
    assert body["spec"] == {"mode": "train", "hparams": HP, "replicates": 2, "image": "trainer:1",
                            "data": {"claim": "d", "types": ["genome"]}, "output": {"claim": "out"},
                            "resources": {"gpus": 1, "cpu": 1}, "backoffLimit": 2, "queueName": "gpu"}
    root = tmp_path / "claim" / "runs" / CANONICAL
    assert job.canonical == CANONICAL and job.outputs() == [root / "version_0", root / "version_1"]


def test_spec_cannot_set_a_field_a_setting_owns(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match="spec.replicates: set it with the replicates setting instead"):
        kube(FakeKube(), tmp_path, spec={"replicates": 3})


def test_names_and_versions_are_the_operators_and_rows_match_the_local_backend(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator(delay=3))
    remote = kube(api, tmp_path, name="same").submit()
    assert [c[0] for c in api.calls] == ["create", "get", "get", "get", "get"]  # waited for the names
    here = local(tmp_path, name="same").submit()
    here.wait(timeout=60, poll=0.05, progress=False)
    rows = {r["backend"]: r for r in joblog.read(tmp_path / "claim" / "runs" / "jobs.jsonl")
            + joblog.read(tmp_path / "out" / "runs" / "jobs.jsonl")}
    assert set(rows["kubernetes"]) == set(rows["local"]) == set(joblog.KEYS)
    for key in ("name", "replicate", "canonical", "version"):
        assert rows["kubernetes"][key] == rows["local"][key], key
    assert rows["kubernetes"]["namespace"] == NAMESPACE
    assert Path(rows["kubernetes"]["output"]).relative_to(tmp_path / "claim") == \
        Path(rows["local"]["output"]).relative_to(tmp_path / "out")


@pytest.mark.parametrize("hparams", [
    {}, {"lr": 1e-4}, {"lr": 0.0001, "max_steps": 5, "accelerator": "cpu"}, {"dropout": 0.1, "seed": 3},
    {"task": "finetune", "precision": "bf16-mixed", "mask_prop": 0.2}, {"seq_file": "a b/c=d,e.fa"},
])
def test_local_canonical_names_agree_with_the_operators(hparams: dict) -> None:
    body = {"metadata": {"name": "j", "namespace": "n", "uid": "u"}, "spec": {"hparams": hparams, "output": {"claim": "o"}}}
    assert canonical_name(hparams) == make_plan(body, Settings()).canonical


def test_a_job_the_operator_fails_before_naming_it_fails_submit(tmp_path: Path) -> None:
    def operator(plural: str, obj: dict) -> None:
        obj["status"] = {"phase": "Failed", "message": "spec.output.claim: not set"}

    with pytest.raises(JobFailed, match="job x failed: spec.output.claim: not set"):
        kube(FakeKube(operator), tmp_path, name="x").submit()


def test_no_operator_means_a_timeout_that_says_where_to_look(tmp_path: Path) -> None:
    job = kube(FakeKube(), tmp_path, name="x", assign_timeout=0.2)
    with pytest.raises(WaitTimeout, match="research/x has no versions after 0 s .*watching namespace research"):
        job.submit()


def test_kubernetes_status_wait_and_cancel(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator())
    job = kube(api, tmp_path, name="pre", replicates=2).submit()
    assert job.status().phase == "Running"
    finish(api.objects[(JOB_PLURAL, NAMESPACE, "pre")])
    status = job.wait(timeout=5, poll=0.01, progress=False)
    assert status.metrics == METRICS and status.replicates[1].output == job.outputs()[1]
    assert status.replicates[1].version == 1
    job.cancel()
    assert ("delete", JOB_PLURAL, "pre") in api.calls


def test_logs_come_from_the_newest_pod_of_the_replicate(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator())
    job = kube(api, tmp_path, name="pre").submit()
    pod = lambda name, created: {"metadata": {"name": name, "uid": f"u-{name}", "creationTimestamp": created,  # noqa: E731
                                              "labels": {LABEL_JOB: "pre", LABEL_REPLICATE: "0"}}}
    api.pod_list = [pod("old", "2026-01-01T00:00:00Z"), pod("new", "2026-01-01T00:05:00Z")]
    api.pod_logs = {"old/trainer": "first attempt", "new/trainer": "retry\n"}
    assert job.logs() == "retry\n"
    assert Job.attach("pre", api=api).logs() == "retry\n"


def test_attach_reads_an_existing_job(tmp_path: Path) -> None:
    api = FakeKube(NamingOperator())
    kube(api, tmp_path, name="pre", replicates=3).submit()
    again = Job.attach("pre", api=api, output_dir=str(tmp_path / "claim"))
    assert again.hparams == HP and again.replicates == 3 and len(again.outputs()) == 3
    with pytest.raises(Exception, match="research/nope does not exist"):
        Job.attach("nope", api=api)


# --- progress -------------------------------------------------------------------------------------------
def test_progress_bar_text_and_quiet_streams() -> None:
    assert render("job x", 1, 4, "Running", 65) == "job x [#####---------------] 1/4 Running 01:05"
    stream = io.StringIO()
    bar = Progress("job x", total=2, stream=stream)
    for done, state in ((0, "Pending"), (0, "Pending"), (1, "Running"), (2, "Succeeded")):
        bar.update(done, state)
    lines = stream.getvalue().splitlines()
    assert [line.split("] ")[1].rsplit(" ", 1)[0] for line in lines] == ["0/2 Pending", "1/2 Running", "2/2 Succeeded"]


def test_wait_shows_progress_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeKube(NamingOperator())
    job = kube(api, tmp_path, name="pre").submit()
    finish(api.objects[(JOB_PLURAL, NAMESPACE, "pre")])
    job.wait(timeout=5, poll=0.01)
    assert "job pre [####################] 1/1 Succeeded" in capsys.readouterr().err


def test_kube_backend_waits_no_longer_than_asked(tmp_path: Path) -> None:
    backend = KubeBackend("x", HP, load_config(output={"claim": "o"}), api=FakeKube())
    backend.start()
    slept: list[float] = []
    with pytest.raises(WaitTimeout):
        backend.await_placed(timeout=0, sleep=slept.append)
    assert slept == []


def test_the_job_log_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "log" / "jobs.jsonl"
    rows = [joblog.row(name=f"j{i}", backend="local", namespace=None, replicate=0, canonical="c", version=i,
                       output=tmp_path / str(i)) for i in range(3)]
    joblog.append(path, rows[:2])
    joblog.append(path, rows[2:])
    assert [json.loads(line)["name"] for line in path.read_text().splitlines()] == ["j0", "j1", "j2"]
    assert os.path.getsize(path) == len("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def test_the_sweep_fields_a_template_may_not_hold_are_the_crds() -> None:
    """seqmodel cannot import the operator; the operator takes its other shared names from seqmodel.job."""
    from seqmodel.job import sweep
    from seqmodel_operator.crd import SWEEP_OWNED_JOB_FIELDS

    assert set(sweep.SWEEP_OWNED_JOB_FIELDS) == set(SWEEP_OWNED_JOB_FIELDS)
