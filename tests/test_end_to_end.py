"""The real path: `mlflow run . -e train` on real SST-2 into a temporary sqlite store."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, micro_config


def _env(tracking_uri):
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("MLFLOW_RUN_ID", None)
    return env


@pytest.mark.slow
def test_mlflow_run_train_entry_point(glue_dir, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "out"
    cmd = [
        "mlflow",
        "run",
        str(REPO),
        "-e",
        "train",
        "--env-manager",
        "local",
        "--experiment-name",
        "e2e",
        "-P",
        "model_size=tiny",
        "-P",
        "epochs=2",
        "-P",
        f"data_dir={glue_dir}",
        "-P",
        "max_train_samples=600",
        "-P",
        "max_eval_samples=200",
        "-P",
        "batch_size=32",
        "-P",
        "learning_rate=1e-4",
        "-P",
        "pruning_method=magnitude",
        "-P",
        "pruning_start_epoch=1",
        "-P",
        "end_sparsity=0.5",
        "-P",
        f"output_root={out}",
        "-P",
        "verbose=1",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(uri), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("e2e").experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model_size"] == "tiny" and params["pruning_method"] == "magnitude"
    assert params["resolved.pruning_end_epoch"] == "2"  # capped from 23
    assert params["num_layers"] == "2" or params.get("resolved.num_layers") == "2"
    assert params["matmul_precision"] == "auto"  # as given; what it meant on this machine:
    assert params["resolved.matmul_precision"] in ("float32", "bfloat16")
    # the command line chose TensorFlow's intra-op threads for this machine before TensorFlow started
    from gated_bert.training import threads

    machine = threads.default_intra_op_threads(threads.available_cpus())
    expected = os.environ.get(threads.ENV) or (str(machine) if machine else "default")
    assert run.data.tags["gated_bert.intra_op_threads"] == expected
    for key in (
        "train_loss",
        "eval_loss",
        "eval_accuracy",
        "sparsity",
        "sparsity/layer_1/ffn_out",
        "epoch_seconds",
        "examples_per_second",
        "sparsity_all_params",
    ):
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [1, 2], key
    sparsity = [m.value for m in client.get_metric_history(run.info.run_id, "sparsity")]
    # by step: 19 steps per epoch (600 / 32), window steps 0..38, an update every 10 steps and at
    # the last: after epoch 1 the latest update is step 10's, linear 0.5 * 10 / 38
    assert sparsity == pytest.approx([0.5 * 10 / 38, 0.5], abs=1e-4)

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "results")}
    names = {p.split("/")[-1].split("_2")[0] for p in artifacts}
    assert {
        "results_magnitude",
        "metadata_magnitude",
        "accuracy_sparsity_magnitude",
        "loss_sparsity_magnitude",
        "sparsity_heatmap_magnitude",
        "config.json",
    } <= names
    results_dir = out / "results_magnitude_sst2"
    metadata = json.loads(next(results_dir.glob("metadata_*.json")).read_text())
    assert metadata["num_train_examples"] == 600 and metadata["data_source"] == str(glue_dir)
    assert (out / "experiment_logs").is_dir() and any(
        (out / "checkpoints_magnitude_sst2").rglob("*.weights.h5")
    )
    # a finished run cannot be resumed: its checkpoints keep their weights, not the optimizer state
    assert not any((out / "checkpoints_magnitude_sst2").rglob("training_state.npz"))

    # the logged model reloads in a fresh process and reproduces the logged eval metric
    script = f"""
import mlflow, pandas as pd, csv
from sklearn.metrics import accuracy_score
mlflow.set_tracking_uri({uri!r})
model = mlflow.pyfunc.load_model("runs:/{run.info.run_id}/model")
dev = pd.read_csv({str(glue_dir / "SST-2" / "dev.tsv")!r}, sep="\\t", quoting=csv.QUOTE_NONE).head(200)
print(accuracy_score(dev["label"], model.predict(dev[["sentence"]])["label"]))
"""
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_env(uri),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert float(loaded.stdout.strip().splitlines()[-1]) == pytest.approx(run.data.metrics["eval_accuracy"])


def test_failed_and_interrupted_runs_are_never_left_running(tmp_path):
    from gated_bert import tracking

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    config = micro_config(experiment_name="status")
    for error, status in ((RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")):
        with pytest.raises(type(error)), tracking.start_run(config) as run:
            raise error
        assert MlflowClient().get_run(run.info.run_id).info.status == status
    with tracking.start_run(config) as run:
        pass
    assert MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"


def test_train_twice_in_one_process_after_an_interrupt(sst2_dir, tmp_path):
    """As in a notebook: an interrupted run must not colour the next run's status."""
    from gated_bert.run import train

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/m.db")
    config = micro_config(
        data_dir=str(sst2_dir), epochs=1, output_root=str(tmp_path / "out"), experiment_name="twice"
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a notebook's handlers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    package_log = logging.getLogger("gated_bert")
    log_state = (package_log.level, list(package_log.handlers))

    def interrupt(row):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C
        time.sleep(5)

    def fail(row):
        raise RuntimeError("boom")

    def rewrapped(row):  # a library that turns the interrupt into its own error
        try:
            interrupt(row)
        except KeyboardInterrupt:
            raise RuntimeError("wrapped") from None

    for hook, error in ((interrupt, KeyboardInterrupt), (fail, RuntimeError), (rewrapped, RuntimeError)):
        with pytest.raises(error):
            train(config, on_epoch_end=hook)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
        assert (package_log.level, list(package_log.handlers)) == log_state
    train(config)
    runs = sorted(
        mlflow.search_runs(experiment_names=["twice"], output_format="list"), key=lambda r: r.info.start_time
    )
    assert [r.info.status for r in runs] == ["KILLED", "FAILED", "KILLED", "FINISHED"]
