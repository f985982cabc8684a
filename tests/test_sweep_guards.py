"""What keeps a sweep safe to start and to stop: its defaults, the memory check, the study's
fixed settings, refusals before any run, checkpoint cleanup and Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

import mlflow
import optuna
import pytest

from gated_bert import memory
from gated_bert.architecture import parameter_count, preset_architecture
from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError
from gated_bert.sweep.runner import (
    SWEEP_CONFIG_DEFAULTS,
    SWEEP_SCRATCH_DEFAULTS,
    SweepSettings,
    base_fingerprint,
    plan_workers,
    run_sweep,
    sweep_base,
)
from gated_bert.sweep.storage import make_storage
from tests.conftest import REPO, cli_env, micro_config


def _runs(experiment: str) -> list:
    if mlflow.get_experiment_by_name(experiment) is None:
        return []
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


# ------------------------------------------------------------------ defaults
def test_the_sweep_command_and_mlproject_carry_the_sweep_budget():
    from click.testing import CliRunner

    from gated_bert.cli import cli
    from gated_bert.mlproject import render

    sweep_block = render().split("  sweep:\n")[1]
    train_block = render().split("  train:\n")[1].split("  sweep:\n")[0]
    assert "      epochs: {type: int, default: 7}" in sweep_block
    assert '      max_train_samples: {type: string, default: "32000"}' in sweep_block
    assert "      epochs: {type: int, default: 25}" in train_block  # train keeps its own
    assert '      n_jobs: {type: string, default: "auto"}' in sweep_block
    shown = CliRunner().invoke(cli, ["sweep", "--help"], terminal_width=200).output
    assert "--epochs INTEGER" in shown and "[default: 7]" in shown.split("--epochs")[1].split("\n")[0]
    assert SWEEP_CONFIG_DEFAULTS["pruning_end_epoch"] <= SWEEP_CONFIG_DEFAULTS["epochs"]


def test_sweep_base_fills_the_scratch_recipe_only_where_left_at_auto(tmp_path):
    filled = sweep_base(GatedBertConfig())
    assert filled.model_size == "tiny" and filled.pruning_method == "spt"
    assert {k: getattr(filled, k) for k in SWEEP_SCRATCH_DEFAULTS} == SWEEP_SCRATCH_DEFAULTS
    mine = sweep_base(GatedBertConfig(model_size="small", learning_rate=1e-3, pruning_method="magnitude"))
    assert (mine.model_size, mine.learning_rate, mine.pruning_method) == ("small", 1e-3, "magnitude")
    from tests.pretrained_checkpoints import write_random_bert

    folder = write_random_bert(tmp_path / "ckpt")
    pretrained = sweep_base(GatedBertConfig(init_from=str(folder)))
    assert pretrained.model_size is None and pretrained.learning_rate is None  # fine-tuning defaults
    assert pretrained.pruning_method == "spt"


# ------------------------------------------------------------------ memory
def test_peak_estimate_grows_with_what_a_worker_holds():
    tiny = GatedBertConfig(model_size="tiny", batch_size=32)
    base = GatedBertConfig(model_size="base", batch_size=32)
    arch = preset_architecture("tiny", 128)
    assert (
        parameter_count(arch)
        == 30522 * 256
        + 130 * 256
        + 2 * 256
        + 2 * (4 * 256 * 256 + 2 * 256 * 512 + 4 * 256 + 512 + 256 + 4 * 256)
        + 256 * 256
        + 256
    )
    grown = memory.peak_bytes(base) - memory.peak_bytes(tiny)
    params = parameter_count(preset_architecture("base", 128)) - parameter_count(arch)
    assert grown == memory.BYTES_PER_PARAMETER * params + memory.BYTES_PER_ACTIVATION * 32 * 128 * (
        12 * 768 - 2 * 256
    )
    more = memory.peak_bytes(GatedBertConfig(model_size="tiny", batch_size=96)) - memory.peak_bytes(tiny)
    assert more == memory.BYTES_PER_ACTIVATION * 64 * 2 * 256 * 128
    fit = memory.fitting_workers(tiny, 4, available=int(2.5 * memory.peak_bytes(tiny) / memory.HEADROOM))
    assert (fit.wanted, fit.workers) == (4, 2)


def test_workers_are_lowered_to_what_fits_and_none_fitting_is_refused(monkeypatch, caplog):
    from gated_bert.training.settings import resolved_config

    base = sweep_base(GatedBertConfig(batch_size=96))
    one = memory.peak_bytes(resolved_config(base))
    monkeypatch.setattr(memory, "available_bytes", lambda: int(1.5 * one / memory.HEADROOM))
    with caplog.at_level("WARNING", logger="gated_bert"):
        assert plan_workers(base, SweepSettings(n_jobs=2, n_trials=4)) == 1
    assert "2 workers would need about" in caplog.text and "starting 1" in caplog.text
    assert plan_workers(base, SweepSettings(n_jobs=4, n_trials=1)) == 1  # never more than trials
    monkeypatch.setattr(memory, "available_bytes", lambda: int(0.5 * one))
    with pytest.raises(ConfigError, match=r"one worker training tiny at batch size 96 needs about .* GB"):
        plan_workers(base, SweepSettings(n_jobs=1, n_trials=1))


def test_a_sweep_that_does_not_fit_exits_2_before_any_run(sst2_dir, tmp_path, monkeypatch, capsys):
    from gated_bert.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**28)
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--model-size", "base", "--data-dir", str(sst2_dir), "--output-root", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and "needs about" in err[0], err
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "optuna_journal.log").exists()


# ------------------------------------------------------------------ fingerprint
def test_fingerprint_compares_what_trains():
    auto = base_fingerprint(sweep_base(GatedBertConfig()))
    explicit = base_fingerprint(sweep_base(GatedBertConfig(model_size="tiny", learning_rate=2e-4)))
    assert auto == explicit  # 'auto' and the value it means are the same setting
    elsewhere = base_fingerprint(sweep_base(GatedBertConfig(data_dir="/elsewhere", output_root="/o")))
    assert elsewhere == auto  # where the data and outputs live does not change a trial
    assert base_fingerprint(sweep_base(GatedBertConfig(model_size="base")))["model_size"] == "base"


def test_joining_a_study_with_other_fixed_settings_is_refused(sst2_dir, tracking):
    base = micro_config(
        data_dir=str(sst2_dir),
        pruning_method="spt",
        epochs=2,
        end_sparsity=0.3,
        experiment_name="sweep-fingerprint",
        output_root=str(tracking / "out"),
    )
    settings = SweepSettings(n_trials=1, n_jobs=1, study_name="fp", pruner="none")
    run_sweep(base, settings)
    assert not any((tracking / "out").glob("checkpoints_*/*"))  # a finished trial keeps none
    before = len(_runs("sweep-fingerprint"))
    other = base.replace(learning_rate=3e-3, d_model=32)
    with pytest.raises(ConfigError) as info:
        run_sweep(other, settings)
    message = str(info.value)
    assert "study 'fp' was created with other fixed settings" in message
    assert "d_model 16 (now 32)" in message and "learning_rate 0.001 (now 0.003)" in message
    assert "--study-name" in message and "--allow-different-base" in message
    assert len(_runs("sweep-fingerprint")) == before  # refused before any run
    joined = run_sweep(
        other,
        SweepSettings(
            n_trials=1,
            n_jobs=1,
            study_name="fp",
            pruner="none",
            allow_different_base=True,
            keep_checkpoints=True,
        ),
    )
    assert joined.states == {"COMPLETE": 2}
    kept = sorted(p.name for p in (tracking / "out").glob("checkpoints_spt_sst2/*/epoch_*/*"))
    assert kept and "training_state.npz" not in kept and any(k.endswith(".weights.h5") for k in kept)


# ------------------------------------------------------------------ refusals
def test_invalid_sweep_settings_exit_2_before_any_run(tmp_path, capsys, monkeypatch):
    from gated_bert.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    with pytest.raises(SystemExit) as info:
        main(["sweep", "--epochs", "1", "--output-root", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        info.value.code == 2
        and err[-1] == "Error: searching the pruning window needs epochs >= 2 (start < end)"
    )
    assert not (tmp_path / "m.db").exists()


@pytest.mark.slow
def test_mlflow_run_sweep_with_invalid_settings_says_why_on_its_run(glue_dir, tmp_path):
    """`mlflow run` creates its run before gated-bert starts: bad input is noted there, nothing else."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    command = ["mlflow", "run", str(REPO), "-e", "sweep", "--env-manager", "local"]
    command += ["--experiment-name", "refused", "-P", f"data_dir={glue_dir}", "-P", "epochs=1"]
    done = subprocess.run(
        command, cwd=tmp_path, env=cli_env(uri), capture_output=True, text=True, timeout=300
    )
    message = "searching the pruning window needs epochs >= 2 (start < end)"
    assert done.returncode != 0 and f"Error: {message}" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    mlflow.set_tracking_uri(uri)
    runs = _runs("refused")
    assert [r.info.status for r in runs] == ["FAILED"]  # MLflow's own run, and no other
    assert runs[0].data.tags["gated_bert.refused"] == message and not runs[0].data.metrics
    assert not (tmp_path / "optuna_journal.log").exists()


# ------------------------------------------------------------------ Ctrl-C
def _sweep_command(glue_dir, tmp_path, launcher: str) -> list[str]:
    flags = {
        "n_trials": "2",
        "n_jobs": "2",
        "task": "sst2",
        "data_dir": str(glue_dir),
        "max_train_samples": "4000",
        "epochs": "10",  # long trials: both still run when the interrupt comes, even on a loaded machine
        "output_root": str(tmp_path / "out"),
        "study_name": "interrupted",
        "verbose": "1",
    }
    if launcher == "gated-bert":
        command = [sys.executable, "-m", "gated_bert.cli", "sweep", "--experiment-name", "sweep-int"]
        return command + [arg for k, v in flags.items() for arg in (f"--{k.replace('_', '-')}", v)]
    command = ["mlflow", "run", str(REPO), "-e", "sweep", "--env-manager", "local", "--experiment-name"]
    return command + ["sweep-int"] + [arg for k, v in flags.items() for arg in ("-P", f"{k}={v}")]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["gated-bert", "mlflow run"])
def test_ctrl_c_in_a_terminal_kills_every_run_and_leaves_nothing_half_written(glue_dir, tmp_path, launcher):
    """Ctrl-C in a terminal: SIGINT to the whole process group (the command, MLflow's launcher, the
    workers) at once."""
    import psutil

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.search_experiments()  # create the store here first: two first users of one sqlite file race
    proc = subprocess.Popen(
        _sweep_command(glue_dir, tmp_path, launcher),
        cwd=tmp_path,
        env=cli_env(uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        time.sleep(1)
        trials = [r for r in _runs("sweep-int") if "optuna.trial_number" in r.data.tags]
        if len([r for r in trials if r.info.status == "RUNNING"]) == 2:
            break
    else:
        proc.kill()
        pytest.fail(f"trials never started: {proc.communicate()[1][-2000:]}")
    processes = psutil.Process(proc.pid).children(recursive=True)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    _, alive = psutil.wait_procs(processes, timeout=30)
    assert alive == [], [p.cmdline() for p in alive]
    ours = [line for line in err.splitlines() if "Traceback" in line or "KeyboardInterrupt" in line]
    assert ours == [], err[-3000:]
    if launcher == "gated-bert":
        assert proc.returncode == 130
        assert err.strip().splitlines()[-1] == "Aborted.", err[-2000:]
    else:  # MLflow's launcher reports the interrupt itself and exits 1
        assert "Aborted" in err and proc.returncode != 0
    runs = _runs("sweep-int")
    statuses = dict(sorted((r.data.tags.get("mlflow.runName"), r.info.status) for r in runs))
    assert statuses.pop("trial_0") == statuses.pop("trial_1") == "KILLED", statuses
    # the parent: KILLED. Under `mlflow run` it is MLflow's own run, which its launcher ends FAILED
    # after an interrupt whatever it was (MLflow 3's "already terminated?" check never holds)
    assert statuses == {"sweep_interrupted": "KILLED" if launcher == "gated-bert" else "FAILED"}, statuses
    assert list((tmp_path / "out").rglob("*.tmp")) == []
    study = optuna.load_study(
        study_name="interrupted", storage=make_storage(str(tmp_path / "optuna_journal.log"))
    )
    assert {t.state.name for t in study.trials} == {"FAIL"}
    assert {t.user_attrs.get("fail_reason") for t in study.trials} == {"interrupted (Ctrl-C or SIGTERM)"}


def test_storage_comes_from_the_option_then_the_environment_then_the_default(tmp_path, monkeypatch):
    from gated_bert.sweep.storage import STORAGE_ENV, resolve_storage

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert resolve_storage(None) == str(tmp_path / "optuna_journal.log")
    monkeypatch.setenv(STORAGE_ENV, "postgresql://u:secret@db/optuna?sslmode=require")
    assert resolve_storage(None) == "postgresql://u:secret@db/optuna?sslmode=require"
    assert resolve_storage(str(tmp_path / "j.log")) == str(tmp_path / "j.log")


def test_after_an_interrupt_no_trial_failure_prints_a_traceback(monkeypatch):
    """A library may turn the KeyboardInterrupt into its own error (TensorFlow does while tracing)."""
    import logging

    from gated_bert import interrupts
    from gated_bert.sweep.runner import _no_interrupt_tracebacks

    def record(error):
        return logging.LogRecord(
            "optuna", logging.WARNING, "", 0, "Trial 0 failed", (), (type(error), error, None)
        )

    monkeypatch.setattr(interrupts, "_received", __import__("threading").Event())
    assert _no_interrupt_tracebacks(record(RuntimeError("a real failure")))  # shown
    assert not _no_interrupt_tracebacks(record(KeyboardInterrupt()))
    signal.signal(signal.SIGINT, interrupts.interrupt_once)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert interrupts.received()
    assert not _no_interrupt_tracebacks(record(RuntimeError("wrapped by a library")))
