"""Resume: a run killed with SIGKILL continues in the same MLflow run to the same result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pytest

from tests.conftest import MICRO_FLAGS, cli_env, micro_config


def _train(args: list[str], cwd, uri: str, **kwargs):
    command = [sys.executable, "-m", "gated_bert.cli", "train", *args]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=cli_env(uri),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _run_of(uri: str, experiment: str):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    assert len(runs) == 1, [r.info.status for r in runs]
    return runs[0]


def _latest_state(root, method):
    """The newest checkpoint's name and its model weights (a finished run keeps only those)."""
    import h5py

    from gated_bert.training import checkpoint

    folders = sorted((root / f"checkpoints_{method}_sst2").glob("*/epoch_*"))
    assert not (folders[-1] / checkpoint.VARIABLES).exists()  # nothing left to resume: state dropped
    state = {}
    with h5py.File(folders[-1] / checkpoint.WEIGHTS) as weights:
        weights.visititems(
            lambda name, item: (
                state.update({f"weights/{name}": item[()]}) if isinstance(item, h5py.Dataset) else None
            )
        )
    return folders[-1].name, state


@pytest.mark.slow
@pytest.mark.parametrize("method", ["magnitude", "movement", "spt"])
def test_sigkilled_run_resumes_to_the_uninterrupted_result(glue_dir, tmp_path, method):
    args = ["--task", "sst2", "--model-size", "tiny", "--epochs", "4", "--batch-size", "32"]
    args += ["--max-train-samples", "1200", "--max-eval-samples", "300", "--learning-rate", "1e-4"]
    args += ["--pruning-method", method, "--pruning-start-epoch", "2", "--pruning-end-epoch", "4"]
    args += ["--end-sparsity", "0.8", "--movement-pruning-frequency-steps", "10", "--data-dir", str(glue_dir)]
    args += ["--verbose", "0"]
    killed_root, whole_root = tmp_path / "killed", tmp_path / "whole"
    killed_uri, whole_uri = f"sqlite:///{tmp_path}/killed.db", f"sqlite:///{tmp_path}/whole.db"
    whole = _train(
        [*args, "--output-root", str(whole_root), "--experiment-name", "whole"], tmp_path, whole_uri
    )

    victim = _train(
        [*args, "--output-root", str(killed_root), "--experiment-name", "killed"], tmp_path, killed_uri
    )
    deadline = time.time() + 240
    while not list((killed_root / f"checkpoints_{method}_sst2").glob("*/epoch_002")):
        assert victim.poll() is None, victim.stdout.read()[-2000:]
        assert time.time() < deadline, "epoch 2 never finished"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # during epoch 3 (or while logging epoch 2)
    victim.wait()
    run = _run_of(killed_uri, "killed")
    assert run.info.status == "RUNNING"  # nothing can catch SIGKILL

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = _train(["--resume", run.info.run_id], elsewhere, killed_uri)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-3000:]
    out_whole, _ = whole.communicate(timeout=300)
    assert whole.returncode == 0, out_whole[-3000:]

    run = _run_of(killed_uri, "killed")
    reference = _run_of(whole_uri, "whole")
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_epoch"] == "2"
    history = mlflow.MlflowClient(killed_uri).get_metric_history(run.info.run_id, "eval_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]  # one point per epoch, none twice
    finals = {k: v for k, v in reference.data.metrics.items() if k.startswith("final_")}
    assert finals and set(finals) <= set(run.data.metrics)
    for key, value in finals.items():  # the same predictions: within 1e-4
        assert run.data.metrics[key] == pytest.approx(value, abs=1e-4), key
    name, state = _latest_state(killed_root, method)
    reference_name, reference_state = _latest_state(whole_root, method)
    assert name == reference_name == "epoch_004" and set(state) == set(reference_state)
    assert len(state) >= 12 * 2  # at least the 12 gated kernels and their masks
    for key in state:  # every weight, mask and movement score (the optimizer and method state: below)
        np.testing.assert_array_equal(state[key], reference_state[key], err_msg=key)
    assert not list(elsewhere.iterdir())  # the resumed run wrote to the run's own folders


@pytest.mark.parametrize(
    "method, frequency, dropout, scores",
    [
        ("none", 7, 0.0, "adam"),
        ("magnitude", 7, 0.0, "adam"),
        ("movement", 7, 0.0, "adam"),
        ("movement", None, 0.0, "adam"),
        ("movement", 7, 0.0, "sgd"),
        ("spt", 7, 0.0, "adam"),
        ("random", 7, 0.0, "adam"),
        ("none", 7, 0.1, "adam"),
        ("spt", 7, 0.1, "adam"),
    ],
    ids=[
        "none",
        "magnitude",
        "movement",
        "movement_in_step",
        "movement_sgd",
        "spt",
        "random",
        "none_dropout",
        "spt_dropout",
    ],
)
def test_resuming_in_one_process_is_exact(sst2_dir, tmp_path, method, frequency, dropout, scores):
    """Interrupted after epoch 2 and resumed: every row and every saved array equal the uninterrupted run's
    (movement at its default, ranked inside the train step after every step, too)."""
    from gated_bert.data.prepare import prepare_data
    from gated_bert.training import checkpoint
    from gated_bert.training.fit import fit

    class Interrupt(Exception):
        pass

    def stop_after_2(row):
        if row["epoch"] == 2:
            raise Interrupt

    config = micro_config(
        data_dir=str(sst2_dir),
        pruning_method=method,
        epochs=4,
        pruning_start_epoch=2,
        pruning_end_epoch=4,
        end_sparsity=0.8,
        movement_pruning_frequency_steps=frequency,
        dropout_rate=dropout,  # with dropout, its random states are part of the checkpoint
        movement_scores_optimizer=scores,
    )
    prepared = prepare_data(config)
    whole = fit(config, prepared, checkpoint_dir=tmp_path / "whole").rows
    with pytest.raises(Interrupt):
        fit(config, prepared, on_epoch_end=stop_after_2, checkpoint_dir=tmp_path / "cut")
    assert checkpoint.latest(tmp_path / "cut").name == "epoch_002"
    resumed = fit(
        config, prepared, checkpoint_dir=tmp_path / "cut", resume_from=tmp_path / "cut" / "epoch_002"
    ).rows
    timing = ("epoch_seconds", "examples_per_second")
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed] == [
        {k: v for k, v in r.items() if k not in timing} for r in whole
    ]
    with np.load(tmp_path / "whole" / "epoch_004" / checkpoint.VARIABLES) as a:
        with np.load(tmp_path / "cut" / "epoch_004" / checkpoint.VARIABLES) as b:
            assert a.files == b.files
            method_state = {key.split("/")[1] for key in a.files if key.startswith("method/")}
            assert method_state or method in ("none", "magnitude", "random")
            if method == "spt":  # the explorer's reward EMA, visits, probe count and generator survive
                assert {"probe_count", "seed_generator"} <= method_state, method_state
                assert any("visit" in n for n in method_state), method_state
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_refuses_unknown_runs_and_other_settings(sst2_dir, tmp_path, capsys):
    from gated_bert.cli import main
    from gated_bert.run import train

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/m.db"
    try:
        result = train(
            micro_config(data_dir=str(sst2_dir), epochs=1, output_root=str(tmp_path), experiment_name="r")
        )
        for argv, message in (
            (["--resume", "0123456789abcdef"], "no MLflow run '0123456789abcdef'"),
            (["--resume", result.run_id], "has already FINISHED; there is nothing to resume"),
        ):
            with pytest.raises(SystemExit) as info:
                main(["train", *argv])
            err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
            assert info.value.code == 2 and len(err) == 1 and message in err[0], err
        mlflow.MlflowClient().set_terminated(result.run_id, status="KILLED")
        with pytest.raises(SystemExit) as info:
            main(["train", "--resume", result.run_id, "--epochs", "7"])
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and "--epochs 7 differs from the run's 1; give --resume alone" in err
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    sst2_dir, tmp_path, monkeypatch, capsys
):
    import errno

    import keras

    from gated_bert.cli import main

    calls = []
    original = keras.Model.save_weights

    def save_weights(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # epoch 2's checkpoint: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")  # an earlier test may have set another one
    argv = ["train", "--data-dir", str(sst2_dir), "--output-root", str(tmp_path / "out"), "--epochs", "3"]
    argv += MICRO_FLAGS
    argv += ["--pruning-method", "none", "--verbose", "0", "--vocab-size", "300", "--batch-size", "64"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert info.value.code == 2 and len(err) == 1
    assert (
        "epoch_002' (No space left on device); free space, then continue with gated-bert train --resume"
        in err[0]
    )
    folders = sorted(p.name for p in (tmp_path / "out" / "checkpoints_baseline_sst2").glob("*/*"))
    assert folders == ["epoch_001", "tokenizer.json"]  # no half-written epoch_002, no temporary folder
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    run = mlflow.search_runs(experiment_names=["sst2"], output_format="list")[0]
    assert run.info.status == "FAILED"
    assert sorted(
        m.step for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    ) == [1]


@pytest.mark.slow
def test_mlflow_run_resume_parameter_continues_the_run(sst2_dir, tmp_path, monkeypatch):
    """`mlflow run . -e train -P resume=ID` (every other parameter at its MLproject default)."""
    from gated_bert.run import train
    from gated_bert.training import callbacks
    from tests.conftest import REPO

    uri = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    original = callbacks.EpochCheckpoint.on_epoch_end

    def killed_after_epoch_2(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch + 1 == 2:
            raise KeyboardInterrupt  # as Ctrl-C right after epoch 2's checkpoint

    monkeypatch.setattr(callbacks.EpochCheckpoint, "on_epoch_end", killed_after_epoch_2)
    config = micro_config(
        data_dir=str(sst2_dir),
        epochs=3,
        output_root=str(tmp_path / "out"),
        experiment_name="cut",
        pruning_method="magnitude",
        end_sparsity=0.5,
        pruning_start_epoch=1,
        pruning_end_epoch=3,
    )
    with pytest.raises(KeyboardInterrupt):
        train(config)
    (cut,) = mlflow.search_runs(experiment_names=["cut"], output_format="list")
    assert cut.info.status == "KILLED"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = ["mlflow", "run", str(REPO), "-e", "train", "--env-manager", "local"]
    bad = [*command, "-P", f"resume={cut.info.run_id}", "-P", "epochs=9"]
    done = subprocess.run(bad, cwd=elsewhere, env=cli_env(uri), capture_output=True, text=True)
    assert done.returncode != 0 and "--epochs 9 differs from the run's 3" in done.stderr
    command += ["--experiment-name", "launcher", "-P", f"resume={cut.info.run_id}"]
    done = subprocess.run(command, cwd=elsewhere, env=cli_env(uri), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    run = mlflow.get_run(cut.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_epoch"] == "2"
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [1, 2, 3]
    assert run.data.metrics["final_sparsity"] == pytest.approx(0.5, abs=1e-3)
    (launched,) = mlflow.search_runs(experiment_names=["launcher"], output_format="list")
    assert launched.data.tags["gated_bert.resumes"] == cut.info.run_id
    assert not [m for m in launched.data.metrics if m.startswith("final_")]
