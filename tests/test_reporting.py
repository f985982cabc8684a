"""Results on disk (`reporting.py`, `plots.py`) and predictions from text (`inference.py`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from gated_bert import reporting
from gated_bert.data.prepare import prepare_data
from gated_bert.inference import TextPredictor, predict_outputs
from gated_bert.training.fit import build_classifier
from tests.conftest import assert_png, micro_config

ROW = {
    "epoch": 2,
    "train_loss": 0.4,
    "eval_loss": 0.5,
    "eval_accuracy": 0.75,
    "eval_accuracy_dev_mismatched": 0.7,
    "sparsity": 0.9,
    "learning_rate": 1e-3,
    "sparsity/layer_0/query": 0.5,
    "sparsity/layer_1/ffn_out": 0.25,
}


def test_final_metrics_are_the_eval_metrics_and_sparsity():
    assert reporting.final_metrics(ROW) == {
        "final_eval_loss": 0.5,
        "final_eval_accuracy": 0.75,
        "final_eval_accuracy_dev_mismatched": 0.7,
        "final_sparsity": 0.9,
    }


def test_csv_puts_the_main_columns_first_and_keeps_every_value(tmp_path):
    rows = [{**ROW, "epoch": 1, "sparsity": 0.0}, ROW]
    reporting.write_csv(rows, tmp_path / "r.csv")
    frame = pd.read_csv(tmp_path / "r.csv")
    assert list(frame.columns[:4]) == ["epoch", "train_loss", "eval_loss", "sparsity"]
    assert sorted(frame.columns) == sorted(ROW)
    assert frame["sparsity"].tolist() == [0.0, 0.9] and frame["sparsity/layer_1/ffn_out"].tolist() == [
        0.25,
        0.25,
    ]


def test_sparsity_matrix_places_each_kernel():
    matrix = reporting.sparsity_matrix(ROW, 2)
    expected = np.zeros((2, 6))
    expected[0, 0] = 0.5  # layer 0, query
    expected[1, 5] = 0.25  # layer 1, ffn_out
    np.testing.assert_array_equal(matrix, expected)


def test_run_paths_follow_the_original_layout(tmp_path):
    config = micro_config(pruning_method="none", output_root=str(tmp_path))
    paths = reporting.RunPaths.for_config(config, "20260101_000000_000001")
    assert paths.results_dir == tmp_path / "results_baseline_sst2"
    assert paths.csv.name == "results_baseline_20260101_000000_000001.csv"
    assert paths.heatmap.name == "sparsity_heatmap_baseline_20260101_000000_000001.png"
    assert paths.checkpoints_dir == tmp_path / "checkpoints_baseline_sst2" / "20260101_000000_000001"
    assert paths.log_file == tmp_path / "experiment_logs" / "train_baseline_20260101_000000_000001.log"


def test_curves_are_real_plots(tmp_path):
    config = micro_config(pruning_method="magnitude", output_root=str(tmp_path))
    paths = reporting.RunPaths.for_config(config, "t")
    paths.make_dirs()
    rows = [{**ROW, "epoch": 1, "sparsity": 0.0}, ROW]
    reporting.write_curves(rows, config, "accuracy", paths)
    for path in (paths.accuracy_plot, paths.loss_plot):
        assert_png(path, 800, 450)
    assert_png(paths.heatmap, 700, 200)
    assert pd.read_csv(paths.csv)["eval_accuracy"].tolist() == [0.75, 0.75]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.conftest import write_sst2

    glue = write_sst2(tmp_path_factory.mktemp("glue"))
    config = micro_config(data_dir=str(glue))
    prepared = prepare_data(config)
    return config, prepared, build_classifier(config, prepared.task)


TEXTS = [
    "a good film",
    "the plot was dull and the story was very poor",
    "fine",
    "awful movie and a dull story",
]


def test_predict_outputs_are_in_input_order(trained):
    _, prepared, classifier = trained
    together = predict_outputs(classifier, prepared.tokenizer, TEXTS, batch_size=3)
    alone = np.concatenate([predict_outputs(classifier, prepared.tokenizer, [t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert together.shape == (4, 2) and not np.allclose(together[0], together[1])
    assert predict_outputs(classifier, prepared.tokenizer, []).shape == (0, 2)


def test_saved_model_predicts_like_the_trained_one(trained, tmp_path):
    config, prepared, classifier = trained
    paths = reporting.RunPaths.for_config(config.replace(output_root=str(tmp_path)), "t")
    paths.make_dirs()
    saved = reporting.save_model(classifier, prepared.tokenizer, config, paths)
    assert json.loads(saved.config.read_text()) == config.to_dict()
    predictor = TextPredictor.from_files(saved.model, saved.tokenizer, saved.config)
    predicted = predictor.predict(pd.DataFrame({"sentence": TEXTS}))
    outputs = predict_outputs(classifier, prepared.tokenizer, TEXTS)
    np.testing.assert_array_equal(predicted["label"], outputs.argmax(axis=-1))
    assert list(predicted.columns) == ["label", "label_name", "prob_negative", "prob_positive"]
    assert list(predicted["label_name"]) == [("negative", "positive")[i] for i in predicted["label"]]
    probabilities = predicted[["prob_negative", "prob_positive"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
    expected = np.exp(outputs) / np.exp(outputs).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5)


def test_summary_metrics_window_mean_and_best_at_target():
    config = micro_config(pruning_method="magnitude", epochs=6, pruning_start_epoch=2, pruning_end_epoch=4)
    accuracy = [0.50, 0.70, 0.60, 0.65, 0.80, 0.75]
    target = [0.0, 0.3, 0.6, 0.9, 0.9, 0.9]
    rows = [
        {"epoch": e + 1, "eval_accuracy": a, "target_sparsity": t}
        for e, (a, t) in enumerate(zip(accuracy, target))
    ]
    out = reporting.summary_metrics(rows, config, "accuracy")
    assert out["window_mean_eval_accuracy"] == pytest.approx((0.70 + 0.60 + 0.65) / 3)
    assert out["best_eval_accuracy_at_target"] == 0.80 and out["best_eval_accuracy_at_target_epoch"] == 5
    baseline = reporting.summary_metrics([{**r, "target_sparsity": 0.0} for r in rows], config, "accuracy")
    assert (
        baseline["best_eval_accuracy_at_target"] == 0.80
        and baseline["best_eval_accuracy_at_target_epoch"] == 5
    )
