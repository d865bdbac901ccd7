"""make_plan: hparams checked, canonical names, run arguments, output claim, checkpoints, names."""

from __future__ import annotations

from typing import Any

import pytest

from operator_support import example, job_body, with_replicates
from seqmodel.hparam import format_value, registry
from seqmodel_operator import constants as C
from seqmodel_operator.plan import CHECKPOINT_MOUNT, CheckpointMount, SpecError, make_plan
from seqmodel_operator.render import Replicate, render_job
from seqmodel_operator.settings import Settings

CONFIG = Settings()


def tail(args: list[str], n: int = 3) -> list[str]:
    return args[-n:]


def test_example_job_canonical_name_is_the_registry_s() -> None:
    body = example("job.yaml")
    plan = make_plan(body, CONFIG)
    assert plan.canonical == registry().canonical_name(body["spec"]["hparams"])
    assert plan.canonical != "default"
    assert (plan.name, plan.namespace, plan.uid, plan.mode) == ("pretrain-small", "research", "uid-1", "train")
    assert plan.output_claim == "seqmodel-output" and plan.output_root == "runs"
    assert plan.image == CONFIG.image and plan.replicates == 1 and plan.checkpoint is None


def test_run_args_hold_each_hparam_once_then_what_the_operator_owns() -> None:
    body = example("job.yaml")
    hparams = body["spec"]["hparams"]
    plan = make_plan(body, CONFIG)
    args = plan.run_args(4)
    for name, value in hparams.items():
        matching = [a for a in args if a.startswith(f"--{name}=")]
        assert matching == [f"--{name}={format_value(registry()[name].convert(value))}"], name
    assert len(args) == len(hparams) + 4
    assert args[-4:] == ["--data_root=data", "--mode=train", "--default_root_dir=/output", "--seed=4"]
    assert "--dropout=0.0" in args and "--limit_val_batches=10.0" in args  # typed, then formatted


def test_each_version_gets_its_own_seed() -> None:
    plan = make_plan(example("job.yaml"), CONFIG)
    seeds = {tail(plan.run_args(v))[-1] for v in range(5)}
    assert seeds == {f"--seed={v}" for v in range(5)}


def test_a_pinned_seed_holds_for_every_version() -> None:
    body = example("job.yaml")
    body["spec"]["hparams"]["seed"] = "17"
    plan = make_plan(body, CONFIG)
    for version in range(3):
        args = plan.run_args(version)
        assert [a for a in args if a.startswith("--seed=")] == ["--seed=17"]
        assert args[-1] == "--seed=17"


@pytest.mark.parametrize("name", C.JOB_OWNED_HPARAMS)
def test_operator_owned_hparams_are_refused(name: str) -> None:
    body = job_body(hparams={"d_model": 64, name: "x"})
    with pytest.raises(SpecError, match=rf"^spec\.hparams\.{name}: "):
        make_plan(body, CONFIG)


@pytest.mark.parametrize("hparams,named", [
    ({"d_model": "big"}, "d_model"),
    ({"d_model": 1.5}, "d_model"),
    ({"accelerator": "tpu"}, "accelerator"),
    ({"reverse_complement": "maybe"}, "reverse_complement"),
    ({"d_modle": 64}, "d_modle"),
])
def test_wrong_types_and_unknown_hparams_are_refused_by_name(hparams: dict[str, Any], named: str) -> None:
    with pytest.raises(SpecError, match=rf"spec\.hparams: .*'{named}'"):
        make_plan(job_body(hparams=hparams), CONFIG)


def test_output_claim_is_required_unless_the_operator_has_a_default() -> None:
    body = job_body()
    del body["spec"]["output"]
    with pytest.raises(SpecError, match=r"^spec\.output\.claim: "):
        make_plan(body, CONFIG)
    plan = make_plan(body, Settings(output_claim="shared-out"))
    assert plan.output_claim == "shared-out"
    assert make_plan(job_body(), Settings(output_claim="shared-out")).output_claim == "out"  # the spec wins


def test_names_paths_and_owner_formats() -> None:
    body = job_body(name="exp", uid="u-9", output={"claim": "out", "root": "team/a"})
    plan = make_plan(body, CONFIG)
    assert plan.child_name(2, 5) == "exp-2-v5"
    assert plan.output_path(5) == f"team/a/{plan.canonical}/version_5"
    assert plan.owner(2) == "u-9/2"
    other_root = make_plan(job_body(name="exp", uid="u-9", output={"claim": "out", "root": "team/b"}), CONFIG)
    other_claim = make_plan(job_body(name="exp", uid="u-9", output={"claim": "out2"}), CONFIG)
    assert len({plan.version_key, other_root.version_key, other_claim.version_key}) == 3
    assert make_plan(job_body(uid="other"), CONFIG).version_key == make_plan(job_body(), CONFIG).version_key


def test_image_comes_from_the_spec_or_the_config() -> None:
    assert make_plan(job_body(image="reg/x:1"), CONFIG).image == "reg/x:1"
    assert make_plan(job_body(), Settings(image="reg/default:2")).image == "reg/default:2"


# --- checkpoints -----------------------------------------------------------------------------------------
SOURCE_OUTPUT = "runs/dm=64/version_3"


def source() -> dict[str, Any]:
    return with_replicates(example("job.yaml", uid="uid-src"), SOURCE_OUTPUT, "runs/dm=64/version_7")


def test_test_mode_loads_the_source_s_weights() -> None:
    plan = make_plan(example("inference.yaml", uid="uid-test"), CONFIG, source())
    assert plan.checkpoint == CheckpointMount("seqmodel-output", f"{SOURCE_OUTPUT}/checkpoints", "last.ckpt",
                                              "load_checkpoint_path")
    assert plan.run_args(0)[-1] == "--load_checkpoint_path=/checkpoint/last.ckpt"
    assert plan.run_args(0)[-4:-1] == ["--mode=test", "--default_root_dir=/output", "--seed=0"]


def test_checkpoint_replicate_and_file_pick_the_mount() -> None:
    body = example("inference.yaml")
    body["spec"]["checkpoint"] = {"fromJob": "pretrain-small", "replicate": 1, "file": "checkpoints/epoch=2.ckpt"}
    plan = make_plan(body, CONFIG, source())
    assert plan.checkpoint is not None
    assert (plan.checkpoint.sub_path, plan.checkpoint.file) == ("runs/dm=64/version_7/checkpoints", "epoch=2.ckpt")


def test_train_mode_defaults_to_the_encoder() -> None:
    body = job_body(checkpoint={"fromJob": "pretrain-small"})
    plan = make_plan(body, CONFIG, source())
    assert plan.checkpoint is not None and plan.checkpoint.flag == "load_encoder_from_checkpoint"
    assert plan.run_args(0)[-1] == "--load_encoder_from_checkpoint=/checkpoint/last.ckpt"


@pytest.mark.parametrize("use,flag", [("weights", "load_checkpoint_path"), ("resume", "resume_from_checkpoint"),
                                      ("encoder", "load_encoder_from_checkpoint")])
def test_checkpoint_use_picks_the_flag(use: str, flag: str) -> None:
    plan = make_plan(job_body(checkpoint={"fromJob": "pretrain-small", "use": use}), CONFIG, source())
    assert plan.checkpoint is not None and plan.checkpoint.flag == flag


def test_test_mode_inherits_the_source_s_tracked_hparams_in_its_name() -> None:
    src = source()
    body = example("inference.yaml")
    plan = make_plan(body, CONFIG, src)
    expected = registry().canonical_name({**src["spec"]["hparams"], **body["spec"]["hparams"]})
    assert plan.canonical == expected == make_plan(src, CONFIG).canonical
    assert registry().canonical_name(body["spec"]["hparams"]) == "default"  # its own hparams are untracked
    assert plan.hparams == {"accelerator": "cpu", "limit_test_batches": 20.0}  # the args stay the job's own
    assert not any(a.startswith("--d_model=") for a in plan.run_args(0))  # seqmodel.run inherits them itself


def test_encoder_init_is_named_by_its_own_hparams_only() -> None:
    body = job_body(hparams={"n_layers": 6}, checkpoint={"fromJob": "pretrain-small"})
    plan = make_plan(body, CONFIG, source())
    assert plan.canonical == registry().canonical_name({"n_layers": 6})


def test_each_replicate_resumes_its_namesake_in_the_source() -> None:
    body = job_body(checkpoint={"fromJob": "pretrain-small", "use": "resume", "eachReplicate": True}, replicates=2)
    plan = make_plan(body, CONFIG, source())
    assert [plan.checkpoint_dir(r) for r in (0, 1)] == [f"{SOURCE_OUTPUT}/checkpoints",
                                                        "runs/dm=64/version_7/checkpoints"]
    mounts = [render_job(plan, Replicate(r, r), CONFIG)["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
              for r in (0, 1)]
    assert [next(m["subPath"] for m in ms if m["mountPath"] == CHECKPOINT_MOUNT) for ms in mounts] == [
        plan.checkpoint_dir(0), plan.checkpoint_dir(1)]
    three = job_body(checkpoint={"fromJob": "pretrain-small", "use": "resume", "eachReplicate": True}, replicates=3)
    with pytest.raises(SpecError, match=r"^spec\.checkpoint\.eachReplicate: .*pretrain-small.* 2"):
        make_plan(three, CONFIG, source())


def test_a_missing_source_replicate_is_a_spec_error() -> None:
    body = example("inference.yaml")
    body["spec"]["checkpoint"] = {"fromJob": "pretrain-small", "replicate": 5}
    with pytest.raises(SpecError, match=r"^spec\.checkpoint\.replicate: .*pretrain-small.* 5"):
        make_plan(body, CONFIG, source())
    with pytest.raises(SpecError, match=r"spec\.checkpoint\.replicate"):
        make_plan(example("inference.yaml"), CONFIG, example("job.yaml"))  # no status at all


def test_checkpoint_path_is_on_the_job_s_output_claim() -> None:
    body = job_body(mode="test", checkpoint={"path": "models/best/model.ckpt"})
    plan = make_plan(body, CONFIG)
    assert plan.checkpoint == CheckpointMount("out", "models/best", "model.ckpt", "load_checkpoint_path")


def test_a_source_without_a_claim_wrote_to_the_operator_s_default_claim() -> None:
    """The source ran on Settings.output_claim; a job with its own claim must still mount the source's."""
    src = source()
    del src["spec"]["output"]
    body = example("inference.yaml")
    body["spec"]["output"] = {"claim": "my-out"}
    plan = make_plan(body, Settings(output_claim="default-out"), src)
    assert plan.output_claim == "my-out"
    assert plan.checkpoint is not None and plan.checkpoint.claim == "default-out"


def test_data_root_points_at_the_staged_data_only_when_there_is_data() -> None:
    """The operator owns data_root: the stage step copies spec.data to ./data; without it the image decides."""
    with_data = make_plan(example("job.yaml"), CONFIG).run_args(0)
    assert [a for a in with_data if a.startswith("--data_root")] == ["--data_root=data"]
    body = example("job.yaml")
    del body["spec"]["data"]
    assert not [a for a in make_plan(body, CONFIG).run_args(0) if a.startswith("--data_root")]
    body["spec"]["hparams"]["data_root"] = "/elsewhere"
    with pytest.raises(SpecError, match="spec.hparams.data_root"):
        make_plan(body, CONFIG)
