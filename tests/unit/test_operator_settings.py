"""Config.from_env: typed fields from SEQMODEL_OPERATOR_* variables, bad values named."""

from __future__ import annotations

import re

import pytest

from seqmodel_operator.settings import PREFIX, Settings


def test_no_variables_give_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"UNRELATED": "1", "SEQMODEL_OTHER_IMAGE": "x"}) == Settings()


def test_each_kind_of_field_is_converted() -> None:
    env = {
        f"{PREFIX}IMAGE": "reg.example/trainer:2",
        f"{PREFIX}WORKER_LIMIT": "5",
        f"{PREFIX}RUN_AS_USER": "4242",
        f"{PREFIX}API_QPS": "2.5",
        f"{PREFIX}TOLERATIONS": '[{"key": "gpu", "operator": "Exists"}]',
        f"{PREFIX}NODE_SELECTOR": '{"type": "kwok"}',
        f"{PREFIX}OUTPUT_CLAIM": "shared-out",
        f"{PREFIX}SCRATCH_STORAGE_CLASS": "",
        f"{PREFIX}TEMPLATES_DIR": "/etc/seqmodel/templates",
    }
    config = Settings.from_env(env)
    assert config.image == "reg.example/trainer:2"
    assert (config.worker_limit, config.run_as_user) == (5, 4242) and isinstance(config.worker_limit, int)
    assert config.api_qps == 2.5 and isinstance(config.api_qps, float)
    assert config.tolerations == ({"key": "gpu", "operator": "Exists"},) and isinstance(config.tolerations, tuple)
    assert config.node_selector == {"type": "kwok"}
    assert config.output_claim == "shared-out" and config.templates_dir == "/etc/seqmodel/templates"
    assert config.scratch_storage_class is None  # "" means unset for optional strings
    assert config.api_burst == Settings().api_burst  # untouched fields keep their defaults


def test_an_empty_json_list_clears_the_tolerations() -> None:
    assert Settings.from_env({f"{PREFIX}TOLERATIONS": "[]"}).tolerations == ()


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PREFIX}WATCH_TIMEOUT", "30")
    assert Settings.from_env().watch_timeout == 30


@pytest.mark.parametrize("name,value", [
    ("WORKER_LIMIT", "many"),
    ("WORKER_LIMIT", "2.5"),
    ("RUN_AS_USER", ""),
    ("API_QPS", "fast"),
    ("TOLERATIONS", '{"key": "gpu"}'),
    ("TOLERATIONS", "[{"),
    ("NODE_SELECTOR", "[]"),
    ("NODE_SELECTOR", "pool=gpu"),
])
def test_a_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(f"{PREFIX}{name}={value!r}: ")):
        Settings.from_env({f"{PREFIX}{name}": value})
