"""Optuna sweeps: real parallel trials, failures, continuation, search-space files."""

import json

import mlflow
import optuna
import pytest

from gated_bert.errors import ConfigError
from gated_bert.sweep.runner import SweepSettings, run_sweep
from gated_bert.sweep.search_space import default_space, load_space, suggest_config
from gated_bert.sweep.storage import make_storage
from tests.conftest import MICRO_FLAGS, cli_env, micro_config


def _runs(experiment):
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


@pytest.mark.slow
def test_parallel_sweep_on_real_sst2(glue_dir, tracking):
    base = micro_config(
        model_size="tiny",
        num_layers=None,
        d_model=None,
        num_heads=None,
        dff=None,
        vocab_size=30522,
        max_len=128,
        data_dir=str(glue_dir),
        max_train_samples=300,
        max_eval_samples=100,
        epochs=2,
        pruning_method="spt",
        end_sparsity=0.5,
        pruning_start_epoch=1,
        pruning_end_epoch=2,
        experiment_name="sweep-e2e",
    )
    settings = SweepSettings(n_trials=4, n_jobs=2, study_name="e2e", sampler="random", pruner="none", seed=1)
    result = run_sweep(base, settings)
    study = optuna.load_study(study_name="e2e", storage=make_storage(result.storage))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert result.storage == str(tracking / "optuna_journal.log")
    runs = _runs("sweep-e2e")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert len(parents) == 1 and parents[0].info.run_id == result.parent_run_id and len(children) == 4
    client = mlflow.MlflowClient()
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["optuna.trial_state"] == "COMPLETE"
        assert child.data.tags["optuna.study_name"] == "e2e"
        assert [m.step for m in client.get_metric_history(child.info.run_id, "eval_accuracy")] == [1, 2]
        assert child.data.metrics["sparsity"] == pytest.approx(0.5, abs=1e-4)
        assert 1e-4 <= float(child.data.params["spt_epsilon"]) <= 5e-2
    parent = client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_value"] == pytest.approx(study.best_value)
    assert float(parent.data.tags["best.spt_epsilon"]) == pytest.approx(study.best_params["spt_epsilon"])
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id, "sweep")}
    assert {
        "sweep/trials.csv",
        "sweep/optimization_history.png",
        "sweep/parallel_coordinate.png",
        "sweep/slice.png",
    } <= artifacts
    assert {"sweep/param_importances.png", "sweep/param_importances.txt"} & artifacts


def test_failing_trial_is_fail_and_failed_others_complete(sst2_dir, tracking):
    space = tracking / "space.yaml"
    space.write_text(
        "replace: true\nparams:\n  learning_rate: {type: categorical, choices: [0.001, 1.0e12]}\n"
    )
    base = micro_config(
        data_dir=str(sst2_dir),
        pruning_method="spt",
        epochs=1,
        pruning_start_epoch=1,
        pruning_end_epoch=1,
        end_sparsity=0.5,
        experiment_name="sweep-fail",
    )
    settings = SweepSettings(
        n_trials=3,
        n_jobs=1,
        study_name="fail",
        sampler="random",
        pruner="none",
        seed=0,
        search_space=str(space),
    )
    result = run_sweep(base, settings)
    study = optuna.load_study(study_name="fail", storage=make_storage(result.storage))
    by_lr = {t.number: (t.params["learning_rate"], t.state.name) for t in study.trials}
    assert {state for lr, state in by_lr.values() if lr > 1} == {"FAIL"}
    assert {state for lr, state in by_lr.values() if lr < 1} == {"COMPLETE"}
    assert {"FAIL", "COMPLETE"} == {state for _, state in by_lr.values()}
    children = {
        int(r.data.tags["optuna.trial_number"]): r
        for r in _runs("sweep-fail")
        if "optuna.trial_number" in r.data.tags
    }
    for number, (_, state) in by_lr.items():
        assert children[number].info.status == ("FAILED" if state == "FAIL" else "FINISHED")
        assert children[number].data.tags["optuna.trial_state"] == state
        if state == "FAIL":  # the reason, in Optuna and in MLflow
            reason = study.trials[number].user_attrs["fail_reason"]
            assert reason.startswith("TrainingDivergedError: training loss became") or "is nan" in reason, (
                reason
            )
            assert children[number].data.tags["fail_reason"] == reason


def test_rerunning_a_study_adds_trials(sst2_dir, tracking):
    base = micro_config(
        data_dir=str(sst2_dir),
        pruning_method="spt",
        epochs=2,
        end_sparsity=0.3,
        pruning_start_epoch=1,
        pruning_end_epoch=2,
        experiment_name="sweep-again",
    )
    settings = SweepSettings(n_trials=1, n_jobs=1, study_name="again", pruner="none", objective="window_mean")
    first = run_sweep(base, settings)
    second = run_sweep(base, settings)
    study = optuna.load_study(study_name="again", storage=make_storage(second.storage))
    assert len(study.trials) == 2 and first.storage == second.storage
    assert second.states == {"COMPLETE": 2}
    trial_runs = [r for r in _runs("sweep-again") if "optuna.trial_number" in r.data.tags]
    assert len(trial_runs) == 2
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in trial_runs}
    for trial in study.trials:  # the objective is the window mean of the trial's run
        assert trial.value == pytest.approx(by_number[trial.number].data.metrics["window_mean_eval_accuracy"])


def test_search_space_file_narrows(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(
        json.dumps(
            {
                "params": {
                    "spt_epsilon": {"type": "float", "low": 0.002, "high": 0.003},
                    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
                }
            }
        )
    )
    space = load_space(str(path), epochs=5)
    assert set(space) == set(default_space(5)) | {"learning_rate"}
    base = micro_config(epochs=5, pruning_method="spt")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        config = suggest_config(study.ask(), space, base)
        assert 0.002 <= config.spt_epsilon <= 0.003 and 1e-4 <= config.learning_rate <= 1e-3
        assert 1 <= config.pruning_start_epoch < config.pruning_end_epoch <= 5
        assert (
            config.sparsity_schedule in ("steps", "cubic", "geometric")
            and config.end_sparsity == base.end_sparsity
        )


@pytest.mark.parametrize(
    "text, suffix, message",
    [
        ("params:\n  colour: {type: float, low: 0, high: 1}\n", ".yaml", "unknown config field 'colour'"),
        (
            "params:\n  spt_epsilon: {type: gaussian}\n",
            ".yaml",
            "spt_epsilon needs a mapping with type one of",
        ),
        ("params:\n  spt_epsilon: {type: float, low: 0.1, high: 0.01}\n", ".yaml", "low 0.1 > high 0.01"),
        ("params:\n  spt_epsilon: {type: float, low: 0, high: 0.01, log: true}\n", ".yaml", "needs low > 0"),
        ("params: [1, 2\n", ".yaml", "is not valid YAML"),
        ('{"params": ', ".json", "is not valid JSON"),
        ("spt_epsilon: 0.1\n", ".yaml", "needs a top-level 'params' mapping"),
        (
            "params:\n  spt_explore_per_layer: {type: categorical, choices: []}\n",
            ".yaml",
            "non-empty list of choices",
        ),
    ],
)
def test_bad_search_space_files(tmp_path, text, suffix, message):
    path = tmp_path / f"space{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_space(str(path), epochs=5)


def test_bad_sweep_flags_exit_2(capsys, tmp_path):
    from gated_bert.cli import main

    cases = [
        (["--n-trials", "0"], "n_trials must be a positive integer, got 0"),
        (["--sampler", "grid"], "unknown sampler 'grid'; choose one of: tpe, random"),
        (["--pruner", "early"], "unknown pruner 'early'"),
        (["--search-space", str(tmp_path / "nope.yaml")], "search space file"),
        (["--n-jobs", "0"], "n_jobs must be a positive integer"),
        (
            ["--objective", "best"],
            "unknown objective 'best'; choose one of: final, best_at_target, window_mean",
        ),
    ]
    for flags, message in cases:
        with pytest.raises(SystemExit) as info:
            main(
                ["sweep", "--epochs", "3", "--pruning-method", "spt", "--output-root", str(tmp_path), *flags]
            )
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert info.value.code == 2 and err.startswith("Error: ") and message in err
    assert not (tmp_path / "optuna_journal.log").exists()


def test_pruned_trial_is_pruned_in_optuna_and_mlflow(sst2_dir, tracking):
    from gated_bert import tracking as mlflow_edge
    from gated_bert.sweep.objective import Objective

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    base = micro_config(
        data_dir=str(sst2_dir),
        pruning_method="spt",
        epochs=3,
        end_sparsity=0.5,
        pruning_start_epoch=1,
        pruning_end_epoch=3,
        experiment_name="sweep-prune",
        output_root=str(tracking / "out"),
    )
    space = tracking / "window.yaml"  # final sparsity at epoch 2 of 3: a trial is never pruned at its last
    space.write_text(
        "params:\n  pruning_start_epoch: {type: int, low: 1, high: 1}\n"
        "  pruning_end_epoch: {type: int, low: 2, high: 2}\n"
    )
    settings = SweepSettings(n_trials=1, study_name="prune", search_space=str(space))
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    with mlflow_edge.start_run(base, run_name="parent") as parent:
        objective = Objective(base, settings, parent.info.run_id, parent.info.experiment_id)
        study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "PRUNED"
    # epochs are reported from the final sparsity on: stopped after the first of them
    end = trial.params["pruning_end_epoch"]
    assert end == 2 and list(trial.intermediate_values) == [end]
    child = [r for r in _runs("sweep-prune") if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id][
        0
    ]
    assert child.info.status == "FINISHED" and child.data.tags["optuna.trial_state"] == "PRUNED"
    history = mlflow.MlflowClient().get_metric_history(child.info.run_id, "eval_accuracy")
    assert [m.step for m in history] == list(range(1, end + 1))
    # a pruned trial is over: its checkpoints are deleted (its model is in its run)
    assert list((tracking / "out").glob("checkpoints_*/*")) == []


@pytest.mark.slow
def test_a_killed_worker_loses_no_trial(sst2_dir, tmp_path):
    """kill -9 of a worker mid-trial: that trial FAIL and retried, the sweep still ends with its trials."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from optuna.storages.journal import JournalFileBackend

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = cli_env(uri)
    micro = MICRO_FLAGS + [
        "--vocab-size",
        "300",
        "--max-len",
        "32",
        "--batch-size",
        "16",
        "--learning-rate",
        "1e-3",
    ]
    cmd = [sys.executable, "-m", "gated_bert.cli", "sweep", "--n-trials", "4", "--n-jobs", "2"]
    cmd += ["--study-name", "ft", "--pruner", "none", *micro, "--epochs", "3", "--data-dir", str(sst2_dir)]
    cmd += ["--experiment-name", "sweep-ft", "--output-root", str(tmp_path / "out"), "--verbose", "0"]
    mlflow.set_tracking_uri(uri)
    mlflow.search_experiments()  # create the store here first: two first users of one sqlite file race
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    journal = tmp_path / "optuna_journal.log"
    killed, deadline = None, time.time() + 240
    while killed is None:
        assert proc.poll() is None and time.time() < deadline, "no trial ever ran"
        time.sleep(0.5)
        if not journal.exists():
            continue
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        if "ft" not in [s.study_name for s in optuna.get_all_study_summaries(storage)]:
            continue
        running = [
            t
            for t in optuna.load_study(study_name="ft", storage=storage).trials
            if t.state.name == "RUNNING" and "worker_pid" in t.user_attrs
        ]
        if not running or mlflow.get_experiment_by_name("sweep-ft") is None:
            continue
        started = {
            r.data.tags.get("optuna.trial_number") for r in _runs("sweep-ft") if r.info.status == "RUNNING"
        }
        training = [t for t in running if str(t.number) in started]  # its run exists: kill mid-training
        if training:
            killed = training[0]
            os.kill(killed.user_attrs["worker_pid"], signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name="ft", storage=make_storage(str(journal)))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and states.count("FAIL") == 1, states
    failed = study.trials[killed.number]
    assert failed.state.name == "FAIL" and "died" in failed.user_attrs["fail_reason"]
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE" and retries[0].params == killed.params
    runs = _runs("sweep-ft")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    killed_runs = [r for r in runs if r.data.tags.get("optuna.trial_number") == str(killed.number)]
    assert [r.info.status for r in killed_runs] == ["KILLED"] and killed_runs[0].data.tags[
        "optuna.trial_state"
    ] == "FAIL"
