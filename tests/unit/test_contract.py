"""seqmodel.contract is the one statement of what a job means: its rules are defined there and nowhere else,
and its phase and metrics rules hold for every backend."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seqmodel import contract
from seqmodel.hparam import registry

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("seqmodel", "operator", "hack", "bench") for p in (ROOT / d).rglob("*.py")]


@pytest.mark.parametrize("name", ["CHECKPOINT_FLAGS", "CHECKPOINT_USES", "JOB_OWNED_HPARAMS", "EXIT_USER_ERROR",
                                  "EXIT_VERSION_TAKEN", "MAX_JOB_NAME_CHARS", "GROUP",
                                  "TERMINATION_LOG_ENV", "WHOLE_MODEL_FLAGS"])
def test_each_rule_is_defined_once(name: str) -> None:
    definition = re.compile(rf"^\s*(\w+\s*,\s*)*{name}\b(\s*,\s*\w+)*\s*(:[^=]+)?=(?!=)", re.MULTILINE)
    defined_in = [str(p.relative_to(ROOT)) for p in SOURCES if definition.search(p.read_text())]
    assert defined_in == ["seqmodel/contract/__init__.py"]


def test_no_copy_of_the_checkpoint_flags_is_spelled_out() -> None:
    """A tuple of the flags written again elsewhere is the drift this module exists to stop."""
    copies = [str(p.relative_to(ROOT)) for p in SOURCES
              if re.search(r'\(\s*"resume_from_checkpoint",\s*"load_checkpoint_path"', p.read_text())]
    assert copies == ["seqmodel/contract/__init__.py"]


def test_the_flags_a_job_owns_include_every_checkpoint_flag() -> None:
    assert set(contract.CHECKPOINT_FLAGS) == set(contract.CHECKPOINT_USES.values())
    assert set(contract.CHECKPOINT_FLAGS) <= set(contract.JOB_OWNED_HPARAMS)


@pytest.mark.parametrize("phases,replicates,suspended,expected", [
    ([], 2, False, "Pending"),
    ([], 2, True, "Suspended"),
    (["Pending", "Pending"], 2, False, "Pending"),
    (["Running", "Pending"], 2, False, "Running"),
    (["Succeeded"], 2, False, "Running"),  # one done, one not created yet
    (["Succeeded", "Succeeded"], 2, False, "Succeeded"),
    (["Succeeded", "Succeeded"], 2, True, "Succeeded"),
    (["Succeeded", "Failed"], 2, False, "Failed"),
    (["Running", "Failed"], 2, True, "Failed"),
    (["Suspended", "Suspended"], 2, True, "Suspended"),
    (["Suspended", "Suspended"], 2, False, "Pending"),  # queued by Kueue
])
def test_job_phase(phases: list[str], replicates: int, suspended: bool, expected: str) -> None:
    assert contract.job_phase(phases, replicates, suspended) == expected


def test_mean_metrics() -> None:
    entries = [("Succeeded", {"a": 1.0, "b": 2.0}), ("Succeeded", {"a": 3.0, "b": None}), ("Succeeded", {"a": 5.0}),
               ("Failed", {"a": 100.0}), ("Running", {})]
    assert contract.mean_metrics(entries) == {"a": 3.0, "b": None}
    assert contract.mean_metrics([("Running", {})]) == {}


def test_custom_hparams_enter_the_canonical_name_by_their_full_names() -> None:
    assert contract.canonical_name({"d_model": 96, "dilated_layers": 3}) == "dilated_layers=3,dm=96"
    assert contract.canonical_name({"d_model": 96}) == registry().canonical_name({"d_model": 96})
    # set to anything, even what may be its default: only the component's code knows its defaults
    assert contract.canonical_name({"dilated_layers": 0}) == "dilated_layers=0"
    # the operator sees 3 as written, the run 3.0 as a float hparam makes it
    assert contract.canonical_name({"scale": 3.0}) == contract.canonical_name({"scale": 3}) == "scale=3"
    assert contract.canonical_name({"mode": "test", "seed": 4, "d_model": 128}) == "default"
    with pytest.raises(contract.ContractError, match="short name 'dm'"):
        contract.canonical_name({"dm": 1})
