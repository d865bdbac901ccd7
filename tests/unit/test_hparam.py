"""The hparam registry: parsing, errors, canonical names, schema export."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from seqmodel.components import registry_for
from seqmodel.hparam import Hparam, HparamError, HparamGroup, Hparams, digest, registry


def small_registry() -> Hparams:
    return Hparams(
        [
            HparamGroup(
                "a",
                [
                    Hparam("lr", 1e-3, float, "learning rate", "lr", minimum=0.0),
                    Hparam("name", "x", str, "a string", "nm"),
                    Hparam("flag", False, bool, "a flag", "fl"),
                    Hparam("steps", 10, int, "steps", "st", minimum=1),
                    Hparam("path", None, str, "a path", "p", tracked=False, nullable=True),
                ],
            )
        ]
    )


def test_parse_dict_fills_defaults_and_converts_types() -> None:
    hp = small_registry().parse_dict({"lr": "1e-4", "flag": "yes", "steps": "20", "path": "none"})
    assert hp == {"lr": 1e-4, "name": "x", "flag": True, "steps": 20, "path": None}
    assert isinstance(hp["steps"], int) and isinstance(hp["lr"], float)


@pytest.mark.parametrize("word,expected", [("true", True), ("False", False), ("on", True), ("0", False)])
def test_bool_words(word: str, expected: bool) -> None:
    assert small_registry().parse_dict({"flag": word})["flag"] is expected


def test_unknown_hparam_suggests_closest() -> None:
    with pytest.raises(HparamError, match=r"^unknown hparam 'lrr'; did you mean 'lr'\?$"):
        small_registry().parse_dict({"lrr": 0.1})


@pytest.mark.parametrize(
    "key,value,pattern",
    [
        ("lr", "fast", r"hparam 'lr' expects float, got 'fast'"),
        ("steps", 1.5, r"hparam 'steps' expects int, got 1.5"),
        ("steps", True, r"hparam 'steps' expects int"),
        ("flag", "maybe", r"hparam 'flag' expects bool"),
        ("steps", 0, r"hparam 'steps' must be >= 1"),
        ("lr", None, r"hparam 'lr' expects float, got none"),
        ("lr", "nan", r"hparam 'lr' expects float"),
    ],
)
def test_wrong_types_name_the_hparam_and_type(key: str, value: object, pattern: str) -> None:
    with pytest.raises(HparamError, match=pattern):
        small_registry().parse_dict({key: value})


def test_where_prefixes_errors() -> None:
    with pytest.raises(HparamError, match=r"^configs/a.yaml: unknown hparam 'zz'"):
        small_registry().parse_dict({"zz": 1}, where="configs/a.yaml: ")


def test_duplicate_name_names_both_owners() -> None:
    g1 = HparamGroup("model", [Hparam("lr", 0.1, float, "", "a")])
    g2 = HparamGroup("task", [Hparam("lr", 0.2, float, "", "b")])
    with pytest.raises(HparamError, match="'lr' is declared by both 'model' and 'task'"):
        Hparams([g1, g2])


def test_duplicate_short_name_names_both_owners() -> None:
    g1 = HparamGroup("model", [Hparam("alpha", 0.1, float, "", "a")])
    g2 = HparamGroup("task", [Hparam("beta", 0.2, float, "", "a")])
    with pytest.raises(HparamError, match="short name 'a' is used by both 'model.alpha' and 'task.beta'"):
        Hparams([g1, g2])


def test_builtin_registry_has_no_clashes_and_expected_trainer_settings() -> None:
    reg = registry()
    for name in ("max_steps", "max_epochs", "accelerator", "devices", "num_nodes", "val_check_interval",
                 "limit_train_batches", "limit_val_batches", "limit_test_batches", "seed"):
        assert not reg[name].tracked, name
    for name in ("precision", "accumulate_grad_batches", "gradient_clip_val"):
        assert reg[name].tracked, name


def test_canonical_name_uses_only_changed_tracked_hparams_sorted() -> None:
    reg = small_registry()
    assert reg.canonical_name({}) == "default"
    assert reg.canonical_name({"path": "/data/x"}) == "default"  # untracked
    assert reg.canonical_name({"steps": 10}) == "default"  # equal to the default
    assert reg.canonical_name({"steps": 20, "lr": 0.01}) == "lr=0.01,st=20"


def test_equal_values_give_equal_names() -> None:
    reg = small_registry()
    assert reg.canonical_name({"lr": 1e-4}) == reg.canonical_name({"lr": "0.0001"})
    assert reg.canonical_name({"flag": "yes"}) == reg.canonical_name({"flag": True})


def test_close_floats_never_share_a_name() -> None:
    reg = small_registry()
    names = {reg.canonical_name({"lr": v}) for v in (1.0001e-4, 1.0002e-4, 1e-4, 0.00010000000000000002)}
    assert len(names) == 4


@pytest.mark.parametrize(
    "a,b",
    [
        ({"name": "a,st=5"}, {"name": "a", "steps": 5}),
        ({"name": "a/b"}, {"name": "a%2Fb"}),
        ({"name": "x=y"}, {"name": "x%3Dy"}),
    ],
)
def test_reserved_characters_are_escaped_so_names_never_collide(a: dict, b: dict) -> None:
    reg = small_registry()
    na, nb = reg.canonical_name(a), reg.canonical_name(b)
    assert na != nb
    assert "/" not in na and "/" not in nb


def test_long_names_stay_path_safe_and_distinct() -> None:
    reg = small_registry()
    a = reg.canonical_name({"name": "x" * 300})
    b = reg.canonical_name({"name": "x" * 299 + "y"})
    assert a != b and len(a) <= 200 and len(b) <= 200


def test_canonical_name_is_stable_across_processes() -> None:
    code = (
        "from seqmodel.hparam import registry;"
        "r=registry();print(r.canonical_name({'lr':3e-4,'seq_len':128,'precision':'bf16-mixed'}))"
    )
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    }
    assert outs == {"len=128,lr=0.0003,prec=bf16-mixed"}


def test_digest_is_short_stable_and_label_safe() -> None:
    d = digest("lr=0.001")
    assert d == digest("lr=0.001") and len(d) == 10 and d.isalnum() and d.islower()
    assert d != digest("lr=0.0010001")


def test_parser_help_lists_every_hparam_with_default() -> None:
    reg = registry()
    text = reg.parser(prog="seqmodel.run").format_help()
    for hp in reg:
        assert f"--{hp.name}" in text
    assert "(default: 0.002)" in text


def test_parse_args_reports_bad_values_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        small_registry().parse_args(["--lr", "fast"])
    assert "hparam 'lr' expects float, got 'fast'" in capsys.readouterr().err


def test_json_schema_covers_every_hparam() -> None:
    schema = registry().json_schema()
    json.dumps(schema)  # serialisable
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert set(props) == set(registry().names())
    assert props["lr"]["type"] == "number" and props["lr"]["default"] == 2e-3
    assert props["seq_len"]["type"] == "integer" and props["seq_len"]["minimum"] == 1
    assert props["load_checkpoint_path"]["nullable"] is True
    assert props["precision"]["enum"][0] == "32-true"
    assert all(p["description"] for p in props.values())


@pytest.mark.parametrize("slot", ["dataset", "encoder", "head", "task", "loss"])
def test_component_slots_take_a_builtin_or_a_qualified_path(slot: str) -> None:
    hp = registry()[slot]
    pattern = hp.json_schema()["pattern"]  # what the CRD checks at `kubectl apply`
    for good in [*hp.builtins, "my_pkg.enc:MyEncoder", "m:C", "a.b.c:D_2"]:
        assert hp.convert(good) == good and re.fullmatch(pattern, good), good
    for bad in ["classify", "my_pkg.enc", "my_pkg.enc:", ":C", "a..b:C", "a.b:C.D", "a-b:C", "a.b:C\n", ""]:
        with pytest.raises(HparamError, match=rf"hparam '{slot}' must be one of: .*package.module:Class"):
            hp.convert(bad)
        assert not re.fullmatch(pattern, bad), bad
    assert "enum" not in hp.json_schema()


def test_registry_for_builtin_choices_is_the_builtin_registry() -> None:
    assert registry_for({}) is registry()
    assert registry_for({"task": "finetune", "encoder": "transformer", "lr": 5}) is registry()


@pytest.mark.parametrize("value", ["a\x00b", "a\nb", "tab\there", "\x1b[31m", "del\x7f", "nel\x85"])
def test_string_hparams_refuse_control_characters_in_code_and_in_the_crd_pattern(value):
    hp = Hparam("path", "x", str, "a path", "p")
    with pytest.raises(HparamError, match="hparam 'path' must not contain control characters"):
        hp.convert(value)
    assert not re.fullmatch(hp.json_schema()["pattern"], value)
    assert re.fullmatch(hp.json_schema()["pattern"], "genome/chr I, é.fa")
    assert hp.convert("genome/chr I, é 日本.fa") == "genome/chr I, é 日本.fa"
