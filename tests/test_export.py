"""Export: the compact model is smaller, predicts the same, and loads as an MLflow pyfunc model."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from gated_bert.export import compact
from gated_bert.export.exporter import dense_encoder_bytes, padded_batch, probe_texts
from tests.conftest import micro_config


def test_kernels_are_stored_as_csr_only_where_that_is_smaller():
    rng = np.random.default_rng(0)
    sparse = rng.normal(size=(64, 48)).astype(np.float32) * (rng.random((64, 48)) < 0.1)
    stored = compact.encode_kernel("k", sparse)
    assert set(stored) == {"k/data", "k/indices", "k/indptr", "k/shape"}
    assert stored["k/indices"].dtype == np.int16 and stored["k/data"].size == np.count_nonzero(sparse)
    np.testing.assert_array_equal(compact.decode_kernel(stored, "k"), sparse)
    dense = rng.normal(size=(64, 48)).astype(np.float32)
    assert set(compact.encode_kernel("k", dense)) == {"k/dense"}
    empty = np.zeros((0, 48), dtype=np.float32)  # a block whose heads were all removed
    np.testing.assert_array_equal(compact.decode_kernel(compact.encode_kernel("k", empty), "k"), empty)


def _pruned_tiny(granularity: str, sparsity: float):
    """The real tiny shape (2 x 256, 4 heads, 512 FFN), masks set by magnitude at `sparsity`."""
    from gated_bert.pruning.pruner import Pruner
    from gated_bert.tasks import TASKS
    from gated_bert.training.fit import build_classifier

    config = micro_config(
        num_layers=2,
        d_model=256,
        num_heads=4,
        dff=512,
        vocab_size=1000,
        max_len=64,
        pruning_method="magnitude",
        pruning_granularity=granularity,
    )
    classifier = build_classifier(config, TASKS["sst2"])
    pruner = Pruner(config, classifier, steps_per_epoch=1)
    pruner.apply(sparsity)
    return classifier


class _Words:
    def get_vocab(self):
        return {w: i for i, w in enumerate(["good", "bad", "film", "plot", "dull", "great"])}


@pytest.mark.parametrize("granularity, sparsity", [("structured", 0.75), ("weight", 0.9)])
def test_compact_model_is_3x_smaller_and_predicts_the_same(granularity, sparsity):
    import tensorflow as tf

    classifier = _pruned_tiny(granularity, sparsity)
    arrays = compact.compact_arrays(classifier, num_heads=4)
    ratio = dense_encoder_bytes(classifier) / compact.encoder_bytes(arrays)
    assert ratio >= 3.0, ratio
    if granularity == "structured":  # 1 of 4 heads and 128 of 512 neurons kept per block
        assert arrays["block_0/query/dense"].shape == (256, 64)
        assert arrays["block_0/ffn_in/dense"].shape == (256, 128)
    model = compact.CompactModel(arrays)
    rng = np.random.default_rng(1)
    ids = tf.constant(rng.integers(5, 1000, size=(8, 20)), tf.int32)
    ids = tf.concat([ids[:, :15], tf.zeros((8, 5), tf.int32)], axis=1)  # padding at the end
    segments = tf.zeros_like(ids)
    inputs = {"token_ids": ids, "segment_ids": segments}
    np.testing.assert_allclose(model(inputs).numpy(), classifier(inputs, training=False).numpy(), atol=1e-5)
    assert len(probe_texts(_Words(), 3)) == 3


def test_float16_embeddings_halve_the_token_table():
    classifier = _pruned_tiny("structured", 0.5)
    full = compact.compact_arrays(classifier, num_heads=4)
    half = compact.compact_arrays(classifier, num_heads=4, float16_embeddings=True)
    assert half["embeddings/token"].nbytes * 2 == full["embeddings/token"].nbytes


@pytest.mark.slow
def test_export_command_writes_a_pyfunc_model_and_reports_the_ratio(sst2_dir, tmp_path, capsys, monkeypatch):
    import mlflow

    from gated_bert.cli import main
    from gated_bert.run import train
    from gated_bert.tracking import model_files

    uri = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    config = micro_config(
        data_dir=str(sst2_dir),
        output_root=str(tmp_path / "out"),
        pruning_method="magnitude",
        pruning_granularity="structured",
        end_sparsity=0.5,
        pruning_start_epoch=1,
        num_heads=4,
        dff=32,
        experiment_name="export",
    )
    run_id = train(config).run_id
    out = tmp_path / "exported"
    try:
        main(["export", "--run-id", run_id, "--output", str(out)])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    printed = capsys.readouterr().out
    found = re.search(r"encoder weights: ([\d.]+) MB -> ([\d.]+) MB \(([\d.]+)x smaller\)", printed)
    assert found, printed
    stored = np.load(next(out.rglob("model.npz")))
    encoder = sum(stored[k].nbytes for k in stored.files if k.startswith("block_"))
    import keras

    from gated_bert.model import CUSTOM_OBJECTS

    dense_file = model_files(run_id, tmp_path / "dense")[0]
    dense = keras.saving.load_model(str(dense_file), custom_objects=CUSTOM_OBJECTS)
    assert float(found.group(3)) == pytest.approx(dense_encoder_bytes(dense) / encoder, abs=0.051)
    assert float(found.group(3)) >= 1.9  # half the heads and neurons, the biases and norms stay

    frame = pd.DataFrame({"sentence": ["a good , great film", "an awful , dull plot", "the movie"]})
    exported = mlflow.pyfunc.load_model(str(out)).predict(frame)
    original = mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(frame)
    logged = mlflow.pyfunc.load_model(f"runs:/{run_id}/compact_model").predict(frame)
    assert list(exported.columns) == list(original.columns)
    np.testing.assert_allclose(exported.iloc[:, 2:], original.iloc[:, 2:], atol=1e-5)
    np.testing.assert_allclose(logged.iloc[:, 2:], original.iloc[:, 2:], atol=1e-5)
    run = mlflow.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["export_compact_encoder_bytes"] == encoder

    keras_out = tmp_path / "as_keras"  # the other format: the gated model with masks applied
    try:
        main(["export", "--run-id", run_id, "--output", str(keras_out), "--format", "keras"])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    assert "predictions: max |difference| of outputs" in capsys.readouterr().out
    as_keras = mlflow.pyfunc.load_model(str(keras_out)).predict(frame)
    np.testing.assert_allclose(as_keras.iloc[:, 2:], original.iloc[:, 2:], atol=1e-5)

    for argv, message in (
        (["--run-id", run_id, "--output", str(out)], "already exists"),
        (
            ["--run-id", "0123456789abcdef", "--output", str(tmp_path / "x")],
            "no MLflow run '0123456789abcdef'",
        ),
        (
            ["--run-id", run_id, "--output", str(tmp_path / "y"), "--format", "keras", "--float16"],
            "--float16 needs --format compact",
        ),
    ):
        with pytest.raises(SystemExit) as info:
            main(["export", *argv])
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
        assert info.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_padded_batch_pads_with_zeros():
    class Encoding:
        def __init__(self, ids):
            self.ids, self.type_ids = ids, [0] * len(ids)

    class Tokenizer:
        def encode_batch(self, texts):
            return [Encoding(list(range(2, 2 + len(t.split())))) for t in texts]

    ids, segments = padded_batch(Tokenizer(), ["a b c", "a"])
    np.testing.assert_array_equal(ids.numpy(), [[2, 3, 4], [2, 0, 0]])
    assert segments.numpy().sum() == 0
