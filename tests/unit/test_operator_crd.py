"""The generated CRD: fresh on disk, spec.hparams from the registry, names, columns, immutability, paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from seqmodel.hparam import registry
from seqmodel_operator import constants as C
from seqmodel_operator import crd


def version_schema() -> dict[str, Any]:
    return crd.training_job_crd()["spec"]["versions"][0]


def spec_schema() -> dict[str, Any]:
    return version_schema()["schema"]["openAPIV3Schema"]["properties"]["spec"]


def re2_search(pattern: str, text: str) -> bool:
    """Go's regexp.MatchString (the API server's `pattern`): unanchored, and `$` is the end of the text
    only (Python's `$` also matches before a trailing newline, so it becomes `\\Z`)."""
    return re.search(re.sub(r"\$(?=\)?$)", r"\\Z", pattern), text) is not None


def test_committed_crds_match_the_generator() -> None:
    assert crd.main(["--check"]) == 0
    for name, obj in crd.all_crds().items():
        committed = crd.MANIFESTS / name
        assert yaml.safe_load(committed.read_text()) == obj


def test_check_fails_on_a_modified_or_missing_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crd.main([str(tmp_path)]) == 0
    assert crd.main(["--check", str(tmp_path)]) == 0
    path = tmp_path / f"{C.GROUP}_{C.JOB_PLURAL}.yaml"
    text = path.read_text()
    changed = re.sub(r"(shortNames:\n\s*- )stj", r"\1stx", text)
    assert changed != text
    path.write_text(changed)
    assert crd.main(["--check", str(tmp_path)]) == 1
    assert "stale CRDs" in capsys.readouterr().err
    path.unlink()
    assert crd.main(["--check", str(tmp_path)]) == 1


def test_hparams_schema_covers_every_user_hparam_with_help_and_no_default() -> None:
    props = spec_schema()["properties"]["hparams"]["properties"]
    expected = {hp.name for hp in registry()} - set(C.JOB_OWNED_HPARAMS)
    assert set(props) == expected
    for hp in registry():
        if hp.name in C.JOB_OWNED_HPARAMS:
            continue
        schema = props[hp.name]
        assert hp.help in schema["description"], hp.name
        assert "default" not in schema, hp.name
        assert schema["type"] == {int: "integer", float: "number", str: "string", bool: "boolean"}[hp.type]
        if hp.choices:
            assert schema["enum"] == list(hp.choices)


@pytest.mark.parametrize("name", C.JOB_OWNED_HPARAMS)
def test_operator_owned_hparams_are_not_in_the_schema(name: str) -> None:
    assert name not in spec_schema()["properties"]["hparams"]["properties"]


def test_printer_columns_names_and_status_subresource() -> None:
    version = version_schema()
    columns = [c for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert [c["name"] for c in columns] == ["Phase", "Mode", "Replicas", "Output", "Age"]
    assert {c["name"]: c["jsonPath"] for c in columns}["Age"] == ".metadata.creationTimestamp"
    assert version["subresources"] == {"status": {}}
    names = crd.training_job_crd()["spec"]["names"]
    assert names["shortNames"] == ["stj"] and names["categories"] == ["seqmodel"]
    assert names["kind"] == "SeqTrainingJob" and crd.training_job_crd()["metadata"]["name"] == "seqtrainingjobs.seqmodel.dev"


def _rules() -> list[str]:
    return [r["rule"] for r in spec_schema()["x-kubernetes-validations"]]


@pytest.mark.parametrize("field", crd.IMMUTABLE_SPEC_FIELDS)
def test_immutable_fields_have_a_transition_rule(field: str) -> None:
    assert any(f"self.{field} == oldSelf.{field}" in rule and f"has(oldSelf.{field})" in rule
               for rule in _rules()), field


def test_suspend_stays_mutable() -> None:
    assert "suspend" not in crd.IMMUTABLE_SPEC_FIELDS
    assert not any("suspend" in rule for rule in _rules())
    assert set(crd.IMMUTABLE_SPEC_FIELDS) == set(spec_schema()["properties"]) - {"suspend"}


REL_PATH_OK = ["runs", "a/b/c", "data-v1/x.y_z", "exp@2/a=b,c+d%e"]
REL_PATH_BAD = ["/abs", "/", "a//b", "a/", "", "a\nb", "a\n", "\na", "a b", "a\tb", "a/\u00e9", "a\\b"]


@pytest.mark.parametrize("text", REL_PATH_OK)
def test_rel_path_pattern_accepts_relative_paths(text: str) -> None:
    assert re2_search(crd.REL_PATH["pattern"], text)


@pytest.mark.parametrize("text", REL_PATH_BAD)
def test_rel_path_pattern_refuses(text: str) -> None:
    assert not re2_search(crd.REL_PATH["pattern"], text)


@pytest.mark.parametrize("text,refused", [("..", True), ("a/../b", True), ("a/..", True), ("../a", True),
                                          ("a..b", False), ("..a/b", False), ("a/b..", False)])
def test_rel_path_rule_refuses_dotdot_components(text: str, refused: bool) -> None:
    (rule,) = crd.REL_PATH["x-kubernetes-validations"]
    found = re.fullmatch(r"!self\.matches\('(.*)'\)", rule["rule"])
    assert found is not None
    regex = found.group(1)
    assert re2_search(regex, text) is refused


def test_re2_helper_is_stricter_than_python_dollar() -> None:
    """The helper matters: Python's `$` would let a trailing newline through."""
    assert re.search(crd.REL_PATH["pattern"], "a\n") and not re2_search(crd.REL_PATH["pattern"], "a\n")


YAML_11_BOOLEANS = {"y", "yes", "n", "no", "on", "off", "true", "false"}  # any case


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def test_no_field_is_a_word_that_kubectls_yaml_reads_as_a_boolean() -> None:
    # PyYAML writes such a key bare and kubectl's YAML 1.1 reader makes it `false`: the field is pruned
    for name, obj in crd.all_crds().items():
        assert not {k for k in _keys(obj) if k.lower() in YAML_11_BOOLEANS}, name
