"""spec.configFrom, spec.componentHparams and spec.code: what the operator checks, names and mounts."""

from __future__ import annotations

from typing import Any

import pytest

from operator_support import job_body
from seqmodel_operator.config_from import ConfigSpecError, config_values, split
from seqmodel_operator.plan import CONFIG_MOUNT, SpecError, make_plan
from seqmodel_operator.render import Replicate, render_job
from seqmodel_operator.settings import Settings

CONFIG = Settings()
FILES = {
    "config.yaml": "defaults: [model/small, base.yaml]\nlr: 0.003\nencoder: my_encoders.conv:DilatedConvEncoder\n"
                   "dilated_layers: 3\n",
    "base.yaml": "lr: 0.1\nbatch_size: 16\n",
}


def body(**spec: Any) -> dict[str, Any]:
    out = job_body(**spec)
    out["spec"]["hparams"] = {"d_model": 96}
    return out


def test_config_defaults_merge_in_order_then_the_files_own_keys() -> None:
    values = config_values(FILES, "config.yaml", "cfg")
    assert values["d_model"] == 64  # preset model/small
    assert values["batch_size"] == 16 and values["lr"] == 0.003  # base.yaml, then the file's own key
    assert values["dilated_layers"] == 3


@pytest.mark.parametrize("files, message", [
    ({"config.yaml": "defaults: [a.yaml]\n", "a.yaml": "defaults: [config.yaml]\n"}, "cycle in defaults"),
    ({"config.yaml": "defaults: [missing.yaml]\n"}, "missing.yaml: no such file"),
    ({"config.yaml": "lr: [1\n"}, "not valid YAML"),
    ({"config.yaml": "default_root_dir: /x\n"}, "sets default_root_dir, which the operator sets"),
])
def test_bad_configs_are_refused_naming_the_configmap(files: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigSpecError, match=message) as err:
        config_values(files, "config.yaml", "cfg")
    assert "spec.configFrom" in str(err.value)
    assert "/tmp" not in str(err.value)  # the operator's scratch copy is not what the user knows


def test_split_checks_builtins_and_keeps_custom_hparams_apart() -> None:
    builtin, custom = split({"lr": "0.5", "dilated_layers": 3}, {"dilation_base": 2})
    assert builtin == {"lr": 0.5} and custom == {"dilated_layers": 3, "dilation_base": 2}
    with pytest.raises(ConfigSpecError, match="'lr'"):
        split({"lr": "fast"}, {})
    with pytest.raises(ConfigSpecError, match=r"spec.componentHparams.lr: a built-in hparam"):
        split({}, {"lr": 1})
    with pytest.raises(ConfigSpecError, match=r"spec.componentHparams.depth: must be a string"):
        split({}, {"depth": [1, 2]})
    with pytest.raises(ConfigSpecError, match=r"spec.componentHparams.bad-key: not an hparam name"):
        split({}, {"bad-key": 1})


def test_a_job_from_a_config_passes_it_first_so_spec_hparams_win() -> None:
    plan = make_plan(body(configFrom={"name": "cfg"}, componentHparams={"dilation_base": 3}), CONFIG,
                     config_files=FILES)
    args = plan.run_args(0)
    assert args[0] == f"--config={CONFIG_MOUNT}/config.yaml"
    assert args.index("--d_model=96") > 0 and "--dilation_base=3" in args
    assert "--dilated_layers=3" not in args  # it comes with the config file
    # the name: the config's built-ins and custom hparams, spec.hparams over the config (d_model 96, not 64)
    assert plan.canonical == ("dilated_layers=3,dilation_base=3,dm=96,enc=my_encoders.conv%3ADilatedConvEncoder,"
                              "ff=128,lr=0.003,nl=2")


def test_a_seed_in_the_config_is_pinned_and_not_overridden() -> None:
    files = {"config.yaml": "seed: 11\n"}
    plan = make_plan(body(configFrom={"name": "cfg"}), CONFIG, config_files=files)
    assert not [a for a in plan.run_args(3) if a.startswith("--seed")]
    assert [a for a in make_plan(body(), CONFIG).run_args(3) if a.startswith("--seed")] == ["--seed=3"]


def test_config_errors_become_spec_errors() -> None:
    with pytest.raises(SpecError, match="spec.componentHparams.batch_size"):
        make_plan(body(componentHparams={"batch_size": 2}), CONFIG)


def test_config_and_code_are_mounted_read_only_on_the_trainer_with_pythonpath() -> None:
    for code, volume, mount in [
        ({"claim": "code", "subPath": "src"}, {"persistentVolumeClaim": {"claimName": "code", "readOnly": True}},
         {"mountPath": "/opt/seqmodel/src", "subPath": "src"}),
        ({"configMap": "enc-code", "package": "my_encoders"}, {"configMap": {"name": "enc-code"}},
         {"mountPath": "/opt/seqmodel/src/my_encoders"}),
    ]:
        plan = make_plan(body(configFrom={"name": "cfg"}, code=code), CONFIG, config_files=FILES)
        job = render_job(plan, Replicate(0, 0), CONFIG)
        pod = job["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"] == {"name": "config", "configMap": {"name": "cfg"}}
        assert all(volumes["code"][k] == v for k, v in volume.items())
        trainer, stage = pod["containers"][0], pod["initContainers"][0]
        mounts = {m["name"]: m for m in trainer["volumeMounts"]}
        assert mounts["config"] == {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}
        assert mounts["code"]["readOnly"] is True and all(mounts["code"][k] == v for k, v in mount.items())
        assert {"name": "PYTHONPATH", "value": "/opt/seqmodel/src"} in trainer["env"]
        assert not {"config", "code"} & {m["name"] for m in stage["volumeMounts"]}
