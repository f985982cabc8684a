"""Runs that start from a pretrained checkpoint (init_from), through every entry point: each pruning
method and granularity, resume after SIGKILL, export, serving on raw text, experiments, sweeps."""

from __future__ import annotations

import os
import signal
import time

import mlflow
import numpy as np
import pandas as pd
import pytest

from gated_bert.config import GatedBertConfig
from gated_bert.data.prepare import prepare_data
from gated_bert.model import prunable_kernels
from gated_bert.training.fit import fit
from tests.conftest import cli_env, write_sst2
from tests.pretrained_checkpoints import packaged_minilm, write_random_bert

METHODS = ["magnitude", "movement", "spt", "random"]
GRANULARITIES = ["weight", "neuron", "head", "structured"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt") / "random-bert"
    write_random_bert(folder, layers=2, hidden=16, heads=4, ffn=32)
    return folder


def _config(checkpoint, data_dir, **changes) -> GatedBertConfig:
    values = dict(
        init_from=str(checkpoint),
        task="sst2",
        data_dir=str(data_dir),
        max_len=32,
        epochs=2,
        batch_size=16,
        learning_rate=1e-3,
        verbose=0,
        pruning_start_epoch=1,
        pruning_end_epoch=2,
        end_sparsity=0.5,
    )
    values.update(changes)
    return GatedBertConfig(**values)


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_and_granularity_prunes_a_pretrained_model(checkpoint, sst2_dir, method, granularity):
    from safetensors.numpy import load_file

    config = _config(checkpoint, sst2_dir, pruning_method=method, pruning_granularity=granularity)
    prepared = prepare_data(config)
    result = fit(config, prepared)
    assert result.rows[-1]["sparsity"] > 0.2 and np.isfinite(result.rows[-1]["train_loss"])
    kernels = prunable_kernels(result.classifier)
    if granularity == "weight":  # exactly half of every kernel (per layer) or of all (global scope)
        zeros = sum(int((k.layer.mask.numpy() == 0).sum()) for k in kernels)
        assert zeros == pytest.approx(0.5 * sum(k.layer.mask.numpy().size for k in kernels), abs=len(kernels))
    # the token rows no batch touched keep the checkpoint's values (lazy updates): loaded, not random
    touched = np.unique(np.concatenate([[0], *prepared.train.token_ids]))  # 0: [PAD], in every padded batch
    untouched = np.setdiff1d(np.arange(52), touched)
    assert untouched.size > 0
    table = result.classifier.get_layer("embeddings").token.embeddings.numpy()
    stored = load_file(str(checkpoint / "model.safetensors"))["embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(table[untouched], stored[untouched])


def _run_of(uri, experiment):
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[experiment], output_format="list")
    assert len(runs) == 1
    return runs[0]


def test_a_run_logs_its_checkpoint_and_exports_and_serves_on_raw_text(
    checkpoint, sst2_dir, tmp_path, monkeypatch
):
    from gated_bert.export.exporter import export_run
    from gated_bert.pretrained.checkpoint import weights_sha256
    from gated_bert.run import train

    uri = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    config = _config(
        checkpoint,
        sst2_dir,
        pruning_method="magnitude",
        pruning_granularity="structured",
        output_root=str(tmp_path / "out"),
        experiment_name="pretrained",
        register_model="pretrained-sst2",
    )
    result = train(config)
    run = mlflow.get_run(result.run_id)
    params = run.data.params
    assert params["init_from"] == str(checkpoint)
    assert params["init_from_sha256"] == weights_sha256(checkpoint / "model.safetensors")
    assert (params["num_layers"], params["d_model"], params["num_heads"], params["dff"]) == (
        "2",
        "16",
        "4",
        "32",
    )
    assert (params["learning_rate"], params["lr_schedule"], params["dropout_rate"]) == (
        "0.001",
        "linear",
        "0.1",
    )
    registered = mlflow.MlflowClient().search_model_versions("name = 'pretrained-sst2'")
    assert registered and registered[0].run_id == result.run_id
    model = mlflow.pyfunc.load_model(f"runs:/{result.run_id}/model")
    answer = model.predict(
        pd.DataFrame({"sentence": ["a good , great and lovely film", "a dull , awful movie"]})
    )
    assert list(answer["label_name"]) == [("negative", "positive")[i] for i in answer["label"]]
    assert np.allclose(answer["prob_negative"] + answer["prob_positive"], 1.0)
    report = export_run(result.run_id, str(tmp_path / "exported"), "compact", False)
    assert report.max_abs_difference < 1e-4  # the export predicts what the run's model predicts
    exported = mlflow.pyfunc.load_model(str(tmp_path / "exported"))
    again = exported.predict(
        pd.DataFrame({"sentence": ["a good , great and lovely film", "a dull , awful movie"]})
    )
    np.testing.assert_allclose(again["prob_positive"], answer["prob_positive"], atol=1e-5)


@pytest.mark.slow
def test_sigkilled_pretrained_run_resumes_to_the_uninterrupted_result(glue_dir, tmp_path):
    from tests.test_resume import _train

    minilm = packaged_minilm()
    args = ["--task", "sst2", "--init-from", str(minilm), "--epochs", "3", "--batch-size", "32"]
    args += ["--max-train-samples", "480", "--max-eval-samples", "200", "--max-len", "64"]
    args += ["--pruning-method", "magnitude", "--pruning-start-epoch", "2", "--pruning-end-epoch", "3"]
    args += ["--end-sparsity", "0.5", "--data-dir", str(glue_dir), "--verbose", "0"]
    killed_uri, whole_uri = f"sqlite:///{tmp_path}/killed.db", f"sqlite:///{tmp_path}/whole.db"
    whole = _train(
        [*args, "--output-root", str(tmp_path / "whole"), "--experiment-name", "whole"], tmp_path, whole_uri
    )
    out_whole, _ = whole.communicate(timeout=600)
    assert whole.returncode == 0, out_whole[-3000:]
    killed_root = tmp_path / "killed"
    victim = _train(
        [*args, "--output-root", str(killed_root), "--experiment-name", "killed"], tmp_path, killed_uri
    )
    deadline = time.time() + 300
    while not list((killed_root / "checkpoints_magnitude_sst2").glob("*/epoch_001")):
        assert victim.poll() is None, victim.stdout.read()[-2000:]
        assert time.time() < deadline, "epoch 1 never finished"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    run = _run_of(killed_uri, "killed")
    assert run.info.status == "RUNNING"
    resumed = _train(["--resume", run.info.run_id], tmp_path, killed_uri)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    run, reference = _run_of(killed_uri, "killed"), _run_of(whole_uri, "whole")
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from_epoch"] == "1"
    for key, value in reference.data.metrics.items():
        if key.startswith("final_"):
            assert run.data.metrics[key] == pytest.approx(value, abs=1e-4), key


def _cli(args, cwd, uri, timeout=900):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "gated_bert.cli", *args],
        cwd=cwd,
        env=cli_env(uri),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.mark.slow
def test_experiments_and_a_two_worker_sweep_start_every_run_from_the_checkpoint(checkpoint, tmp_path):
    from gated_bert.pretrained.checkpoint import weights_sha256

    data = write_sst2(tmp_path / "glue")
    uri = f"sqlite:///{tmp_path}/m.db"
    common = [
        "-t",
        "sst2",
        "--data-dir",
        str(data),
        "-e",
        "2",
        "-b",
        "16",
        "-ml",
        "32",
        "-ps",
        "1",
        "-pe",
        "2",
    ]
    relative = [os.path.relpath(v, tmp_path) if v == str(data) else v for v in common]  # jobs run elsewhere
    _cli(
        ["experiments", "-i", os.path.relpath(checkpoint, tmp_path), "-p", "baseline,magnitude", *relative,
         "-f", "0.5",
         "--output-mode", "logs", "--output-root", str(tmp_path / "exp")],
        tmp_path,
        uri,
    )  # fmt: skip
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["sst2"], output_format="list")
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.tags["method"] for r in children) == ["baseline", "magnitude"]
    digest = weights_sha256(checkpoint / "model.safetensors")
    assert {r.data.params["init_from_sha256"] for r in children} == {digest}
    assert {r.data.params["d_model"] for r in children} == {"16"}
    _cli(
        ["sweep", "--init-from", str(checkpoint), "--task", "sst2", "--data-dir", str(data), "--epochs", "2",
         "--batch-size", "16", "--max-len", "32", "--pruning-method", "spt", "--end-sparsity", "0.5",
         "--n-trials", "2", "--n-jobs", "2", "--study-name", "pretrained", "--sampler", "random",
         "--pruner", "none", "--experiment-name", "sweep", "--output-root", str(tmp_path / "sweep")],
        tmp_path,
        uri,
    )  # fmt: skip
    runs = mlflow.search_runs(experiment_names=["sweep"], output_format="list")
    trials = [r for r in runs if "optuna.trial_number" in r.data.tags]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    assert {r.data.params["init_from_sha256"] for r in trials} == {digest}
