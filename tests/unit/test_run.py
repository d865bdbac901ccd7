"""run.py in-process on the fake datamodule: outputs, resume, test mode, user errors, exit summary."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import pytest
import torch
import yaml

from conftest import LABELS, TINY
import seqmodel.outputs.checkpoint
from seqmodel import VERSION, run
from seqmodel.hparam import registry
from seqmodel.contract import EXIT_STOPPED, TERMINATION_LOG_ENV
from seqmodel.outputs.run_dir import compact_summary, is_global_zero, write_termination_log
from seqmodel.training.trainer import fraction_or_count

RUN_PY = Path(run.__file__).resolve()
COMMANDS = {"script": [str(RUN_PY)], "module": ["-m", "seqmodel.run"]}
FAST = ["--max_steps=6", "--log_every_n_steps=2", "--val_check_interval=3"]


def tiny_args(out: Path, *extra: str) -> list[str]:
    return [f"--{k}={v}" for k, v in TINY.items()] + FAST + ["--accelerator=cpu", f"--default_root_dir={out}", *extra]


def summary_of(path: Path) -> dict[str, Any]:
    text = path.read_text()
    assert len(text.encode()) < 4096
    return json.loads(text)


@pytest.fixture
def termination_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "termination-log"
    monkeypatch.setenv(TERMINATION_LOG_ENV, str(path))
    return path


@pytest.fixture
def trained(tmp_path_factory: pytest.TempPathFactory, fake_data: Any) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pt"
    assert run.main(tiny_args(out)) == 0
    return out


def test_train_writes_every_output_and_a_summary(tmp_path: Path, fake_data: Any, termination_log: Path) -> None:
    out = tmp_path / "run"
    assert run.main(tiny_args(out)) == 0
    summary = summary_of(termination_log)
    assert summary["status"] == "succeeded" and summary["version"] == VERSION
    assert summary["metrics"]["val/masked_acc"] >= 0 and "val/baseline_acc" in summary["metrics"]
    assert summary["outputs"]["best_checkpoint"] == str(out / "checkpoints" / "best.ckpt")
    saved = yaml.safe_load((out / "hparams.yaml").read_text())
    assert saved["version"] == VERSION and saved["hparams"]["d_model"] == 16
    assert saved["name"] == summary["name"] and "dm=16" in saved["name"]
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 6
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert (out / "csv" / "version_0" / "metrics.csv").read_text().count("\n") > 2
    assert list((out / "tensorboard" / "version_0").glob("events.out.tfevents.*"))


def test_a_run_without_validation_ends_with_its_last_checkpoint_and_no_best(tmp_path: Path, fake_data: Any,
                                                                           termination_log: Path) -> None:
    out = tmp_path / "noval"
    assert run.main(tiny_args(out, "--limit_val_batches=0", "--val_check_interval=1.0", "--max_steps=3")) == 0
    summary = summary_of(termination_log)
    assert summary["outputs"]["last_checkpoint"] == str(out / "checkpoints" / "last.ckpt")
    assert "best_checkpoint" not in summary["outputs"] and not any(k.startswith("best/") for k in summary["metrics"])
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]


def test_resume_last_continues_without_overwriting_logs(trained: Path, fake_data: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    first_log = (trained / "csv" / "version_0" / "metrics.csv").read_text()
    assert run.main(["--accelerator=cpu", "--max_steps=9", "--log_every_n_steps=1", f"--default_root_dir={trained}",
                     "--resume_from_checkpoint=last"]) == 0
    assert f"resuming from {trained / 'checkpoints' / 'last.ckpt'} at step 6" in capsys.readouterr().err
    assert json.loads((trained / "metrics.json").read_text())["global_step"] == 9
    assert (trained / "csv" / "version_0" / "metrics.csv").read_text() == first_log
    assert (trained / "csv" / "version_1" / "metrics.csv").exists()


def test_test_mode_writes_one_prediction_per_window(trained: Path, tmp_path: Path, fake_data: Any,
                                                     termination_log: Path) -> None:
    out = tmp_path / "test"
    ckpt = trained / "checkpoints" / "best.ckpt"
    assert run.main(["--mode=test", f"--load_checkpoint_path={ckpt}", f"--default_root_dir={out}",
                     "--accelerator=cpu"]) == 0
    rows = (out / "predictions.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["chrom", "start", "end", "n_masked", "masked_loss", "masked_acc", "n_random",
                                   "random_loss", "random_acc", "n_kept", "kept_loss", "kept_acc"]
    assert len(rows) == 1 + 24 and rows[1].startswith("chr1\t0\t32\t")
    summary = summary_of(termination_log)
    assert summary["outputs"]["predictions"] == str(out / "predictions.tsv")
    assert "test/masked_acc" in summary["metrics"]
    # the architecture came from the checkpoint, not from the defaults
    assert yaml.safe_load((out / "hparams.yaml").read_text())["hparams"]["d_model"] == 16


def test_finetune_from_encoder_then_test_names_label_columns(trained: Path, tmp_path: Path, fake_data: Any) -> None:
    ft = tmp_path / "ft"
    encoder = trained / "checkpoints" / "last.ckpt"
    assert run.main(["--task=finetune", f"--load_encoder_from_checkpoint={encoder}", f"--default_root_dir={ft}",
                     "--batch_size=8", "--seq_len=32", "--accelerator=cpu", *FAST]) == 0
    before = torch.load(encoder, weights_only=True)["state_dict"]["encoder.embed.weight"]
    after = torch.load(ft / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]["encoder.embed.weight"]
    assert torch.allclose(before, after, atol=0.05) and not torch.equal(before, after)  # started from it
    out = tmp_path / "ft-test"
    assert run.main(["--mode=test", f"--load_checkpoint_path={ft / 'checkpoints' / 'best.ckpt'}",
                     f"--default_root_dir={out}", "--accelerator=cpu"]) == 0
    header, first = (out / "predictions.tsv").read_text().splitlines()[:2]
    assert header.split("\t") == ["chrom", "start", "end", *LABELS]
    assert all(0.0 <= float(p) <= 1.0 for p in first.split("\t")[3:])


def test_bf16_mixed_precision_trains_on_cpu(tmp_path: Path, fake_data: Any) -> None:
    out = tmp_path / "bf16"
    assert run.main(tiny_args(out, "--precision=bf16-mixed", "--max_steps=3")) == 0
    assert json.loads((out / "metrics.json").read_text())["metrics"]["train/loss"] > 0


def test_a_crash_while_saving_leaves_only_complete_checkpoints(tmp_path: Path, fake_data: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every checkpoint file Lightning writes (best, last) goes through the atomic writer: a save that dies
    half-way (disk full, preemption) leaves the previous file, which a rerun resumes from."""
    real_open = seqmodel.outputs.checkpoint.atomic_open
    written: list[Path] = []

    @contextmanager
    def dies_on_third_save(path: Path, mode: str = "w") -> Iterator[IO]:
        with real_open(path, mode) as handle:
            written.append(Path(path))
            if len(written) == 3:  # the first saves after step 3 (best, last); this one is at step 6
                handle.write(b"half a checkpoint")
                raise OSError("No space left on device")
            yield handle

    monkeypatch.setattr(seqmodel.outputs.checkpoint, "atomic_open", dies_on_third_save)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        run.main(tiny_args(out))
    monkeypatch.undo()
    files = sorted((out / "checkpoints").iterdir())
    assert [f.name for f in files] == ["best.ckpt", "last.ckpt"] and set(files) <= set(written)
    assert all(seqmodel.outputs.checkpoint.read(f)["global_step"] == 3 for f in files)
    assert run.main(tiny_args(out, "--resume_from_checkpoint=last")) == 0
    assert json.loads((out / "metrics.json").read_text())["global_step"] == 6


@pytest.mark.parametrize("env, lead", [({}, True), ({"LOCAL_RANK": "0", "NODE_RANK": "0"}, True),
                                       ({"LOCAL_RANK": "1"}, False), ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),
                                       ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"RANK": "3"}, False)])
def test_the_global_zero_rank_is_known_from_the_launcher(env: dict[str, str], lead: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_global_zero() is lead


def test_other_ranks_of_a_pod_report_only_their_failure(termination_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    write_termination_log({"status": "succeeded"})
    assert not termination_log.exists()
    write_termination_log({"status": "failed", "error": "OutOfMemoryError: rank 1"})
    assert summary_of(termination_log)["error"] == "OutOfMemoryError: rank 1"


def user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert run.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_bad_hparams_are_one_line_errors(capsys: pytest.CaptureFixture[str], termination_log: Path) -> None:
    assert user_error(["--lrr=0.1"], capsys) == "error: unknown hparam 'lrr'; did you mean 'lr'?"
    summary = summary_of(termination_log)
    assert summary["status"] == "failed" and "unknown hparam 'lrr'" in summary["error"]
    assert "expects float" in user_error(["--lr=fast"], capsys)
    assert "must be one of" in user_error(["--task=classify"], capsys)
    assert "'accelerator' must be one of" in user_error(["--accelerator=tpu"], capsys)
    assert "unknown hparam 'max_step'" in user_error(["--max_step=3"], capsys)  # no prefix matching


def test_run_errors_are_one_line(trained: Path, tmp_path: Path, fake_data: Any,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = trained / "checkpoints" / "best.ckpt"
    assert "--resume_from_checkpoint=last or pick another" in user_error(tiny_args(trained), capsys)
    assert "needs --load_checkpoint_path" in user_error(["--mode=test", f"--default_root_dir={tmp_path / 'a'}"], capsys)
    assert "checkpoint not found" in user_error([f"--load_checkpoint_path={tmp_path / 'no.ckpt'}",
                                                 f"--default_root_dir={tmp_path / 'b'}"], capsys)
    assert "exclude each other" in user_error([f"--load_checkpoint_path={ckpt}", f"--load_encoder_from_checkpoint={ckpt}",
                                               f"--default_root_dir={tmp_path / 'c'}"], capsys)
    assert "use --load_encoder_from_checkpoint" in user_error(
        [f"--load_checkpoint_path={ckpt}", "--task=finetune", f"--default_root_dir={tmp_path / 'd'}"], capsys)
    assert "weights do not fit this model" in user_error(
        [f"--load_checkpoint_path={ckpt}", "--d_model=32", f"--default_root_dir={tmp_path / 'e'}"], capsys)
    assert "trainer settings" in user_error(tiny_args(tmp_path / "f", "--accelerator=gpu"), capsys)  # none here
    assert "trainer settings" in user_error(tiny_args(tmp_path / "g", "--devices=two"), capsys)  # a TypeError


@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_both_commands_list_every_hparam_and_refuse_in_one_line(command: list[str], tmp_path: Path) -> None:
    """`python seqmodel/run.py` and `python -m seqmodel.run`, from another directory, as users type them."""
    shown = subprocess.run([sys.executable, *command, "--help"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0 and shown.stderr == ""
    text = "".join(shown.stdout.split())  # argparse wraps lines, also after hyphens
    for hp in registry():
        entry = "".join(f"--{hp.name} {hp.type_name.upper().replace(' ', '_')} {hp.help}".split())
        assert entry in text, hp.name
        after = text[text.find(entry) + len(entry):]
        assert after[after.find("(default:"):].startswith(f"(default:{hp.default})"), hp.name
    refused = subprocess.run([sys.executable, *command, "--lrr=0.1"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == "error: unknown hparam 'lrr'; did you mean 'lr'?\n"


def test_summary_stays_under_4_kib_keeping_the_headline_metrics() -> None:
    metrics = {"val/auroc": 0.9, **{f"val/auroc_label_{i:04d}": 0.5 for i in range(2000)}}
    text = compact_summary({"status": "succeeded", "metrics": metrics, "outputs": {"dir": "out"},
                            "error": "x" * 10_000})
    data = json.loads(text)
    assert len(text.encode()) <= 4000 and data["truncated"]
    assert data["metrics"]["val/auroc"] == 0.9 and data["status"] == "succeeded"


@pytest.mark.parametrize("value, expected", [(1.0, 1.0), (0.25, 0.25), (200.0, 200), (3.0, 3)])
def test_fractions_and_counts(value: float, expected: float | int) -> None:
    out = fraction_or_count(value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.slow
def test_compiled_model_trains_and_its_checkpoint_loads_uncompiled(tmp_path: Path, fake_data: Any) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    out = tmp_path / "compiled"
    assert run.main(tiny_args(out, "--compile=true", "--max_steps=2", "--val_check_interval=2")) == 0
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the encoder really went through dynamo
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 and not any("_orig_mod" in key for key in ckpt["state_dict"])
    assert run.main(["--mode=test", f"--load_checkpoint_path={out / 'checkpoints' / 'last.ckpt'}",
                     f"--default_root_dir={tmp_path / 'test'}", "--accelerator=cpu"]) == 0


def test_a_log_that_is_no_terminal_gets_progress_lines(tmp_path: Path, fake_data: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """What `kubectl logs` of a trainer shows: a line every log_every_n_steps steps (FAST: 2) and after each
    validation (every 3), with the newest metrics; no progress bar escapes."""
    assert run.main(tiny_args(tmp_path / "run")) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [line.split()[1] for line in lines if line.startswith("step ")]
    assert steps == ["2/6", "4/6", "6/6"]
    assert all("train/loss" in line for line in lines if line.startswith("step "))
    validations = [line for line in lines if line.startswith("validation at step ")]
    assert [v.split()[3] for v in validations] == ["3", "6"]
    assert all("val/loss" in v for v in validations)
    assert not any("\r" in line or "it/s" in line for line in lines)


def test_sigterm_stops_training_with_a_checkpoint_and_an_exit_code_a_job_retries(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Lightning ends fit on SIGTERM (an eviction, a preemption) with a SystemExit of status 0; a run so
    stopped must not pass for a finished one: it exits EXIT_STOPPED, says where it stopped, and its
    last.ckpt resumes it."""
    data = Path(__file__).resolve().parents[2] / "data" / "genome"
    sample = [f"--seq_file={data / 'genome.fa.gz'}", f"--train_intervals={data / 'train.bed'}",
              f"--valid_intervals={data / 'valid.bed'}"]
    out, log = tmp_path / "run", tmp_path / "summary.json"
    args = [*(f"--{k}={v}" for k, v in TINY.items()), "--accelerator=cpu", "--val_check_interval=2",
            "--limit_val_batches=1", f"--default_root_dir={out}", *sample]
    env = {**os.environ, TERMINATION_LOG_ENV: str(log), "SEQMODEL_CACHE_DIR": str(tmp_path_factory.getbasetemp() / "genome-cache")}
    proc = subprocess.Popen([sys.executable, "-m", "seqmodel.run", *args, "--max_steps=100000"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "best.ckpt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_STOPPED, err
    summary = summary_of(log)
    assert summary["status"] == "failed" and summary["error"] in err
    step = int(re.fullmatch(r"stopped by SIGTERM at step (\d+); .*last\.ckpt resumes the run", summary["error"])[1])
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == step > 0
    assert run.main([*args, "--resume_from_checkpoint=last", f"--max_steps={step + 2}"]) == 0
    assert json.loads((out / "metrics.json").read_text())["global_step"] == step + 2
