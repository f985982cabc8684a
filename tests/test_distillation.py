"""Distillation from a frozen teacher: the loss, its gradient, the cached outputs and the checks."""

import json

import mlflow
import numpy as np
import pytest
import tensorflow as tf

from gated_bert.run import train
from gated_bert.tasks import TASKS
from gated_bert.teacher import OUTPUTS_FILE, load_teacher, outputs_for
from gated_bert.training.distillation import DistillationLoss
from gated_bert.training.fit import task_loss
from tests.conftest import micro_config


def _config(sst2_dir, tmp_path, **overrides):
    values = dict(data_dir=str(sst2_dir), epochs=2, output_root=str(tmp_path / "out"), dropout_rate=0.1)
    values.update(overrides)
    return micro_config(**values)


@pytest.fixture
def teacher_run(sst2_dir, tracking):
    """A dense micro model trained on the synthetic SST-2: (run id, its saved model folder)."""
    result = train(_config(sst2_dir, tracking, epochs=3, experiment_name="teachers", seed=7))
    folder = next(result.results_dir.glob("model_*"))
    return result.run_id, folder


def _kl_term(teacher, student, t):
    p = tf.nn.softmax(teacher / t)
    return t * t * tf.reduce_mean(tf.reduce_sum(p * (tf.math.log(p) - tf.nn.log_softmax(student / t)), -1))


def test_the_loss_is_alpha_task_plus_one_minus_alpha_t_squared_kl():
    rng = np.random.default_rng(0)
    labels = tf.constant([0, 1, 1, 0])
    teacher = tf.constant(rng.normal(size=(4, 2)), tf.float32)
    student = tf.constant(rng.normal(size=(4, 2)), tf.float32)
    task = task_loss(TASKS["sst2"])
    loss = DistillationLoss(task, False, alpha=0.3, temperature=2.0)
    expected = 0.3 * task(labels, student) + 0.7 * _kl_term(teacher, student, 2.0)
    assert float(loss((labels, teacher), student)) == pytest.approx(float(expected), rel=1e-6)
    assert float(loss.soft_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-7)
    plain = DistillationLoss(task, False, alpha=1.0, temperature=2.0)
    assert float(plain((labels, teacher), student)) == float(task(labels, student))
    regression = DistillationLoss(task_loss(TASKS["stsb"]), True, alpha=0.0, temperature=2.0)
    scores = tf.constant([[1.0], [2.0]])
    assert float(regression((tf.constant([0.0, 0.0]), tf.constant([[2.0], [4.0]])), scores)) == 2.5
    with pytest.raises(ValueError, match="distill_alpha must be in"):
        DistillationLoss(task, False, alpha=1.5, temperature=2.0)


def test_the_kl_terms_gradient_matches_a_finite_difference_on_a_tiny_model():
    """d/dW of the soft term through a tiny two-layer model, against central differences (float64)."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(6, 5)))
    teacher = tf.constant(rng.normal(size=(6, 3)) * 2)
    w1 = tf.Variable(rng.normal(size=(5, 4)))
    w2 = tf.Variable(rng.normal(size=(4, 3)))

    def soft(w1_value, w2_value):
        student = tf.tanh(x @ w1_value) @ w2_value
        return _kl_term(teacher, student, 3.0)

    loss = DistillationLoss(task_loss(TASKS["sst2"]), False, alpha=0.0, temperature=3.0)
    with tf.GradientTape() as tape:
        student = tf.tanh(x @ w1) @ w2
        value = loss((tf.zeros(6, tf.int64), tf.cast(teacher, tf.float32)), student)
    grads = tape.gradient(value, [w1, w2])
    eps = 1e-6
    for variable, grad, index in ((w1, grads[0], (2, 1)), (w1, grads[0], (4, 3)), (w2, grads[1], (1, 2))):
        base = variable.numpy()
        up, down = base.copy(), base.copy()
        up[index] += eps
        down[index] -= eps
        args_up = (up, w2.numpy()) if variable is w1 else (w1.numpy(), up)
        args_down = (down, w2.numpy()) if variable is w1 else (w1.numpy(), down)
        numeric = (float(soft(*args_up)) - float(soft(*args_down))) / (2 * eps)
        assert float(grad.numpy()[index]) == pytest.approx(numeric, rel=2e-4, abs=1e-6)


def test_cached_teacher_outputs_equal_a_direct_forward(sst2_dir, tracking, teacher_run):
    run_id, folder = teacher_run
    config = _config(sst2_dir, tracking, teacher=run_id, experiment_name="students")
    student = train(config)
    cached = np.load(next((tracking / "out").glob(f"checkpoints_*/*/{OUTPUTS_FILE}")))
    teacher = load_teacher(str(folder))
    from gated_bert.data.prepare import prepare_data
    from gated_bert.training.settings import resolved_config

    resolved = resolved_config(config)
    prepared = prepare_data(resolved)
    assert cached.shape == (len(prepared.train), 2)
    assert np.array_equal(cached, outputs_for(teacher, prepared.train))
    for i in (0, 5, len(prepared.train) - 1):  # one example at a time, unpadded
        ids = prepared.train.token_ids[i][None, :]
        segments = prepared.train.segment_ids[i][None, :]
        direct = teacher.predictor.classifier({"token_ids": ids, "segment_ids": segments}, training=False)
        np.testing.assert_allclose(cached[i], np.asarray(direct)[0], rtol=1e-5, atol=1e-5)
    run = mlflow.MlflowClient().get_run(student.run_id)
    assert run.data.params["teacher_run_id"] == run_id and run.data.params["teacher"] == run_id
    teacher_metric = mlflow.MlflowClient().get_run(run_id).data.metrics["final_eval_accuracy"]
    assert run.data.metrics["teacher_eval_accuracy"] == pytest.approx(teacher_metric, abs=1e-9)


def test_alpha_one_trains_exactly_as_without_a_teacher(sst2_dir, tracking, teacher_run):
    _, folder = teacher_run
    pruning = dict(pruning_method="magnitude", end_sparsity=0.5, pruning_start_epoch=1)
    teachers = {"plain": {}, "alpha1": dict(distill_alpha=1.0), "alpha05": dict(distill_alpha=0.5)}
    plain, taught, distilled = (
        train(
            _config(
                sst2_dir,
                tracking,
                experiment_name=name,
                **({"teacher": str(folder), **alpha} if alpha else {}),
                **pruning,
            )
        )
        for name, alpha in teachers.items()
    )
    keys = ("train_loss", "eval_loss", "eval_accuracy", "sparsity")
    assert [[r[k] for k in keys] for r in plain.rows] == [[r[k] for k in keys] for r in taught.rows]
    assert [r["train_loss"] for r in distilled.rows] != [r["train_loss"] for r in plain.rows]


def test_a_teacher_of_another_task_or_tokenizer_is_refused(sst2_dir, tracking, teacher_run, capsys):
    from gated_bert.cli import main

    run_id, folder = teacher_run
    config = json.loads((folder / "config.json").read_text())
    other_task = tracking / "other_task"
    other_task.mkdir()
    for name in ("model.keras", "tokenizer.json"):
        (other_task / name).write_bytes((folder / name).read_bytes())
    (other_task / "config.json").write_text(json.dumps({**config, "task": "mrpc"}))
    flags = [
        "train",
        "--task",
        "sst2",
        "--data-dir",
        str(sst2_dir),
        "--epochs",
        "1",
        "--pruning-method",
        "none",
    ]
    flags += ["--model-size", "tiny"]
    flags += ["--num-layers", "2", "--d-model", "16", "--num-heads", "2", "--dff", "32", "--max-len", "32"]
    flags += ["--output-root", str(tracking / "refused"), "--experiment-name", "refused"]
    cases = [
        (["--teacher", str(other_task), "--vocab-size", "300"], "was trained on mrpc and this run is sst2"),
        (["--teacher", run_id, "--vocab-size", "120"], "uses another tokenizer"),
        (["--teacher", str(tracking / "nowhere")], "is neither a model folder nor an MLflow run id"),
        (
            ["--teacher", str(folder), "--vocab-size", "300", "--distill-alpha", "2"],
            "distill_alpha must be in",
        ),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as info:
            main(flags + extra)
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and message in err[0], err
    assert mlflow.get_experiment_by_name("refused") is None and not (tracking / "refused").exists()


@pytest.mark.slow
def test_experiments_teacher_auto_trains_the_dense_model_first_and_distils_from_it(glue_dir, tmp_path):
    from tests.test_experiments import _experiments, _runs

    extra = ("--teacher", "auto", "--undistilled-sparsities", "0.5", "--teacher-train-samples", "240")
    done = _experiments(tmp_path, glue_dir, "--output-mode", "logs", *extra, methods="magnitude")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "teacher            auto" in done.stdout and "also without a teacher at 0.5" in done.stdout
    children = [r for r in _runs(tmp_path) if "mlflow.parentRunId" in r.data.tags]
    by_method = {(r.data.tags["method"], r.data.tags["distilled"]): r for r in children}
    # the dense teacher was added and ran first; magnitude ran with it and without
    assert sorted(by_method) == [("baseline", "false"), ("magnitude", "false"), ("magnitude", "true")]
    dense, pruned = by_method[("baseline", "false")], by_method[("magnitude", "true")]
    undistilled = by_method[("magnitude", "false")]
    assert "teacher_run_id" not in undistilled.data.params and undistilled.data.tags["end_sparsity"] == "0.5"
    assert (
        dense.data.params["max_train_samples"] == "240" and pruned.data.params["max_train_samples"] == "200"
    )
    assert dense.info.end_time <= pruned.info.start_time
    assert (
        pruned.data.params["teacher_run_id"] == dense.info.run_id
        and "teacher" not in dense.data.params
        or (dense.data.params.get("teacher", "") == "")
    )
    assert pruned.data.metrics["teacher_eval_accuracy"] == pytest.approx(
        dense.data.metrics["final_eval_accuracy"], abs=1e-9
    )
