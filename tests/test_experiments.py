"""`gated-bert experiments` / run_experiments.sh: flags, parallel jobs, failures, Ctrl-C, notebook."""

import os
import signal
import subprocess
import sys
import time

import mlflow
import numpy as np
import pandas as pd
import psutil
import pytest

from gated_bert.cli import main
from gated_bert.config import GatedBertConfig
from gated_bert.pruning.resolve import resolve
from tests.conftest import REPO, assert_png


@pytest.fixture
def captured_plan(monkeypatch):
    """Parse flags without running anything: capture the plan handed to the runner."""
    from gated_bert.experiments import runner

    plans = []

    def fake(plan, mode, terminal, echo=print):
        plans.append((plan, mode))
        raise SystemExit(0)

    monkeypatch.setattr(runner, "run_experiments", fake)
    return plans


def _parse(argv, captured_plan):
    with pytest.raises(SystemExit):
        main(["experiments", *argv])
    return captured_plan[-1]


def test_defaults_are_the_spec(captured_plan, capsys):
    from gated_bert.config import GatedBertConfig

    plan, mode = _parse([], captured_plan)
    defaults = GatedBertConfig()
    for config in plan.configs:  # every setting not given on the command line is the config's default
        assert config.replace(pruning_method=None, enable_pruning=True) == defaults
    assert plan.methods == ("random", "magnitude", "movement", "spt", "baseline") and not plan.parallel
    c = plan.configs[0].with_training_defaults()
    assert (c.epochs, c.batch_size, c.learning_rate, c.model_size, c.task, c.max_len) == (
        25,
        96,
        2e-5,
        "base",
        "sst2",
        128,
    )
    assert (c.start_sparsity, c.end_sparsity, c.pruning_start_epoch, c.pruning_end_epoch) == (
        0.0,
        0.99,
        4,
        23,
    )
    assert [cfg.pruning_method for cfg in plan.configs] == ["random", "magnitude", "movement", "spt", "none"]
    assert mode == "bars"  # no terminal: never prompt
    out = capsys.readouterr().out
    assert "Experiment configuration:" in out and "12 layers x 768 hidden" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["-e", "10", "-b", "64", "-m", "tiny"],
            dict(epochs=10, batch_size=64, model_size="tiny", pruning_end_epoch=10),
        ),
        (["-p", "baseline,spt", "-t", "mnli"], dict(task="mnli")),
        (
            ["-s", "0.1", "-f", "0.8", "-ps", "2", "-pe", "15"],
            dict(start_sparsity=0.1, end_sparsity=0.8, pruning_start_epoch=2, pruning_end_epoch=15),
        ),
        (
            [
                "--epochs",
                "20",
                "--batch-size",
                "48",
                "--model-size",
                "small",
                "--pruning-methods",
                "magnitude,movement",
                "--task",
                "sst2",
                "--start-sparsity",
                "0.05",
                "--end-sparsity",
                "0.9",
            ],
            dict(epochs=20, batch_size=48, model_size="small", start_sparsity=0.05, end_sparsity=0.9),
        ),
        (
            ["-ss", "10 50 90", "-se", "true", "-ml", "64", "-l", "3e-4"],
            dict(
                sparsity_steps=(10.0, 50.0, 90.0), spt_explore_per_layer=True, max_len=64, learning_rate=3e-4
            ),
        ),
    ],
)
def test_spec_examples_parse(argv, expected, captured_plan):
    plan, _ = _parse(argv, captured_plan)
    for config in plan.configs:
        if not config.enable_pruning:
            continue
        for key, value in expected.items():
            assert getattr(config, key) == value, key
    if "-p" in argv:
        assert plan.methods == ("baseline", "spt")


def test_schedule_and_scope_flags_reach_every_pruning_config(captured_plan):
    plan, _ = _parse(
        ["-p", "random,magnitude,spt", "--sparsity-schedule", "cubic", "--pruning-scope", "global"],
        captured_plan,
    )
    assert [resolve(c).sparsity_schedule for c in plan.configs] == ["cubic"] * 3
    assert [resolve(c).pruning_scope for c in plan.configs] == ["global"] * 3
    plan, _ = _parse(["-p", "magnitude,spt"], captured_plan)  # the defaults differ per method
    assert [(resolve(c).sparsity_schedule, resolve(c).pruning_scope) for c in plan.configs] == [
        ("linear", "per_layer"),
        ("steps", "global"),
    ]


def test_parallel_flags(captured_plan):
    plan, mode = _parse(
        ["-parallel", "-max-parallel-jobs", "2", "--output-mode", "logs", "-p", "baseline,spt,magnitude"],
        captured_plan,
    )
    assert plan.parallel and plan.max_parallel_jobs == 2 and mode == "logs"
    plan, _ = _parse(["-parallel"], captured_plan)
    assert plan.max_parallel_jobs == 5


def test_pruning_end_capped_with_notice(captured_plan, capsys):
    plan, _ = _parse(["-e", "5"], captured_plan)
    assert plan.configs[0].pruning_end_epoch == 5
    assert capsys.readouterr().err.count("pruning_end_epoch 23 > epochs 5: capped to 5") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["-e", "0"], "epochs must be a positive integer, got 0"),
        (["-e", "ten"], "'ten' is not a valid integer"),
        (["-b", "-4"], "batch_size must be a positive integer, got -4"),
        (["-l", "fast"], "'fast' is not a valid float"),
        (["-m", "huge"], "unknown model_size 'huge'"),
        (["-p", "baseline,prune"], "unknown pruning method 'prune' in -p/--pruning-methods"),
        (["-f", "1.5"], "end_sparsity must be in [0, 1), got 1.5"),
        (["-s", "-0.2"], "start_sparsity must be in [0, 1), got -0.2"),
        (["-t", "squad"], "unknown task 'squad'"),
        (["-se", "maybe"], "'maybe' is not one of 'true', 'false'"),
        (["-parallel", "-max-parallel-jobs", "0"], "-max-parallel-jobs must be a positive integer, got 0"),
        (["--output-mode", "fancy"], "'fancy' is not one of 'bars', 'logs', 'both'"),
        (["--sparsity-schedule", "quadratic"], "unknown sparsity_schedule 'quadratic'; choose one of"),
        (["--pruning-scope", "everywhere"], "unknown pruning_scope 'everywhere'; choose one of"),
    ],
)
def test_bad_flags_exit_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["experiments", "--output-root", str(tmp_path), *argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert info.value.code == 2 and len(err) == 1 and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_shell_script_help():
    done = subprocess.run([str(REPO / "run_experiments.sh"), "-h"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0
    for flag in (
        "-e, --epochs",
        "-ps, --pruning-start",
        "-ss, --sparsity-steps",
        "-se, --spt-explore",
        "-parallel",
        "-max-parallel-jobs",
        "--output-mode",
        "--data-dir",
        "--max-train-samples",
    ):
        assert flag in done.stdout


def _experiments(tmp, glue_dir, *extra, methods="baseline,magnitude", epochs="1", samples="200", popen=False):
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("MLFLOW_RUN_ID", None)
    cmd = [
        str(REPO / "run_experiments.sh"),
        "-parallel",
        "-e",
        epochs,
        "-b",
        "32",
        "-m",
        "tiny",
        "-p",
        methods,
        "-ps",
        "1",
        "-f",
        "0.5",
        "--data-dir",
        os.path.relpath(glue_dir, tmp),  # relative, as users type it: jobs run in their own folders
        "--max-train-samples",
        samples,
        "--output-root",
        str(tmp / "out"),
        *extra,
    ]
    if popen:
        return subprocess.Popen(
            cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)


def _runs(tmp):
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    return mlflow.search_runs(experiment_names=["sst2"], output_format="list")


@pytest.fixture(scope="module")
def bars_run(glue_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bars")
    return tmp, _experiments(tmp, glue_dir, "--output-mode", "bars", "--register-model", "gb-sst2")


@pytest.mark.slow
def test_parallel_bars_without_terminal(bars_run):
    tmp, done = bars_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[JOB 1] baseline" in done.stdout and "[JOB 2] magnitude" in done.stdout
    assert "100% (Epoch 1/1" in done.stdout
    out = tmp / "out"
    assert_png(out / "pruning_methods_comparison_dual_axis.png", 1000, 550)
    table = (out / "pruning_methods_comparison.csv").read_text().splitlines()
    assert (
        table[0] == "method,metric,final_metric,final_sparsity,best_metric,wall_seconds" and len(table) == 3
    )
    assert (out / "results_baseline_sst2").is_dir() and (out / "results_magnitude_sst2").is_dir()
    assert len(list((out / "experiment_logs").glob("*_sst2_*.log"))) >= 2
    runs = _runs(tmp)
    parents = [r for r in runs if r.data.tags.get("experiments") == "parent"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["method"] for r in children) == ["baseline", "magnitude"]
    # --register-model: both models registered; the better final accuracy is the champion
    client = mlflow.MlflowClient()
    versions = {v.run_id: v.version for v in client.search_model_versions("name = 'gb-sst2'")}
    assert set(versions) == {r.info.run_id for r in children}
    ranked = sorted(children, key=lambda r: r.data.metrics["final_eval_accuracy"], reverse=True)
    champion = client.get_model_version_by_alias("gb-sst2", "champion")
    challenger = client.get_model_version_by_alias("gb-sst2", "challenger")
    if ranked[0].data.metrics["final_eval_accuracy"] != ranked[1].data.metrics["final_eval_accuracy"]:
        assert champion.run_id == ranked[0].info.run_id
    assert {champion.run_id, challenger.run_id} == set(versions)
    assert all(r.info.status == "FINISHED" for r in runs)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parents[0].info.run_id, "comparison")}
    assert "comparison/pruning_methods_comparison_dual_axis.png" in artifacts


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["logs", "both"])
def test_parallel_log_modes_without_terminal(glue_dir, tmp_path, mode):
    done = _experiments(tmp_path, glue_dir, "--output-mode", mode, "--experiment-name", f"side_{mode}")
    assert done.returncode == 0, done.stdout[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=[f"side_{mode}"], output_format="list")
    assert sorted(r.data.tags.get("method", "parent") for r in runs) == ["baseline", "magnitude", "parent"]
    assert "[baseline] " in done.stdout and "[magnitude] " in done.stdout
    assert ("[JOB 1] baseline   [" in done.stdout) == (mode == "both")
    assert_png(tmp_path / "out" / "pruning_methods_comparison_dual_axis.png", 1000, 550)


@pytest.mark.slow
def test_failing_job_is_reported_others_complete(glue_dir, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results_magnitude_sst2").write_text("a file where the results folder should be")
    done = _experiments(tmp_path, glue_dir)
    assert done.returncode == 1
    assert "[JOB 2] magnitude: FAILED with exit code 2" in done.stdout  # bad output folder: exit 2
    assert (
        "    | Error: cannot create" in done.stdout and "(File exists)" in done.stdout
    )  # the tail of its log
    assert "[JOB 1] baseline: finished" in done.stdout
    assert "Error: job(s) failed: magnitude" in done.stderr
    assert (tmp_path / "out" / "results_baseline_sst2").is_dir()


@pytest.mark.slow
def test_sigint_stops_every_job_and_leaves_no_running_run(glue_dir, tmp_path):
    proc = _experiments(tmp_path, glue_dir, "--output-mode", "bars", epochs="3", samples="3000", popen=True)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 120
    jobs_dir = tmp_path / "out" / "experiment_jobs"
    while time.time() < deadline:
        progress = list(jobs_dir.glob("*/progress.json")) if jobs_dir.exists() else []
        if len(progress) == 2 and all('"step": 0' not in p.read_text() for p in progress):
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jobs never started training")
    children = parent.children(recursive=True)
    assert len(children) >= 2
    os.kill(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-2000:]
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    runs = _runs(tmp_path)
    assert runs and not [r for r in runs if r.info.status == "RUNNING"]
    assert {r.info.status for r in runs} == {"KILLED"}


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(bars_run, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    tmp, done = bars_run
    assert done.returncode == 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp}/mlflow.db")
    monkeypatch.setenv("GATED_BERT_EXPERIMENT", "sst2")
    notebook = nbformat.read(REPO / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}
    ).execute()
    outputs = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "2 finished training runs in experiment 'sst2'" in outputs
    assert "magnitude" in outputs and "baseline" in outputs
    images = [
        o
        for cell in notebook.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if "image/png" in o.get("data", {})
    ]
    assert len(images) == 3  # per epoch, per layer, over seeds and sparsities
    assert "final_mean" in outputs and "window_mean_std" in outputs


def test_compare_from_results_dirs(tmp_path):
    from gated_bert.compare import comparison_table, curves_from_results

    for method, values in (("baseline", [0.6, 0.7]), ("spt", [0.55, 0.65])):
        folder = tmp_path / f"results_{method}_sst2"
        folder.mkdir()
        stamp = f"{method}_20260101_000000_000001"
        (folder / f"results_{stamp}.csv").write_text(
            "epoch,eval_accuracy,sparsity\n"
            + "".join(f"{i + 1},{v},{0.5 * i}\n" for i, v in enumerate(values))
        )
        (folder / f"metadata_{stamp}.json").write_text(
            '{"main_metric": "eval_accuracy", "timings": {"fit_seconds": 12.5}}'
        )
    curves = curves_from_results(sorted(tmp_path.glob("results_*")))
    table = comparison_table(curves)
    assert table["method"].tolist() == ["baseline", "spt"]
    assert table["final_metric"].tolist() == [0.7, 0.65] and table["best_metric"].tolist() == [0.7, 0.65]
    assert table["final_sparsity"].tolist() == [0.5, 0.5] and table["wall_seconds"].tolist() == [12.5, 12.5]
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "plot_comparison.py"),
            "--root",
            str(tmp_path),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "pruning_methods_comparison_dual_axis.png", 1000, 550)


def test_seeds_and_end_sparsities_make_a_grid(captured_plan, capsys):
    plan, _ = _parse(
        ["-p", "random,magnitude,baseline", "--seeds", "1,2,3", "--end-sparsities", "0.5,0.9", "-f", "0.3"],
        captured_plan,
    )
    assert plan.is_grid and plan.seeds == (1, 2, 3) and plan.end_sparsities == (0.5, 0.9)
    assert len(plan.configs) == 2 * 2 * 3 + 3  # the baseline prunes nothing: once per seed
    assert plan.labels[:3] == ("random_0.5_seed1", "random_0.5_seed2", "random_0.5_seed3")
    pruned = [(c.pruning_method, c.end_sparsity, c.seed) for c in plan.configs if c.enable_pruning]
    assert sorted(pruned) == sorted(
        (m, s, seed) for m in ("random", "magnitude") for s in (0.5, 0.9) for seed in (1, 2, 3)
    )
    assert {c.end_sparsity for c in plan.configs if c.enable_pruning} == {0.5, 0.9}  # wins over -f
    assert sorted(c.seed for c in plan.configs if not c.enable_pruning) == [1, 2, 3]
    with pytest.raises(SystemExit) as info:
        main(["experiments", "--seeds", "1,x"])
    assert (
        info.value.code == 2
        and "--seeds must be a comma-separated list of ints, got '1,x'" in capsys.readouterr().err
    )


def test_undistilled_rows_and_teacher_slice(captured_plan, capsys):
    argv = [
        "-p",
        "random,magnitude",
        "--seeds",
        "1,2",
        "--end-sparsities",
        "0.5,0.9",
        "--max-train-samples",
        "300",
    ]
    plan, _ = _parse(
        [*argv, "--teacher", "auto", "--undistilled-sparsities", "0.9", "--teacher-train-samples", "900"],
        captured_plan,
    )
    # the dense teachers (one per seed), 2 methods x 2 sparsities x 2 seeds distilled, 2 x 2 without
    assert len(plan.configs) == 2 + 8 + 4 and len(plan.distil) == len(plan.configs)
    jobs = dict(zip(plan.labels, zip(plan.configs, plan.distil)))
    dense, dense_distil = jobs["baseline_seed1"]
    assert not dense.enable_pruning and not dense_distil and dense.max_train_samples == 900
    plain, plain_distil = jobs["magnitude_0.9_seed2_undistilled"]
    assert (plain.end_sparsity, plain.seed, plain.teacher, plain_distil) == (0.9, 2, None, False)
    assert plain.max_train_samples == 300 and jobs["magnitude_0.9_seed2"][1] is True
    assert sum(1 for label in plan.labels if label.endswith("_undistilled")) == 4
    for extra, message in (
        (["--undistilled-sparsities", "0.9"], "give --teacher (RUN_ID, FOLDER or auto) too"),
        (["--teacher-train-samples", "900"], "--teacher-train-samples 900 sizes the teachers"),
        (["--teacher", "auto", "--teacher-train-samples", "0"], "must be a positive integer, got 0"),
        (["--teacher", "auto", "--undistilled-sparsities", "0.9,x"], "--undistilled-sparsities must be"),
    ):
        with pytest.raises(SystemExit) as info:
            main(["experiments", *argv, *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and message in err[0], err


def test_distillation_and_experiment_flags_reach_every_job(captured_plan):
    argv = ["-p", "random,spt", "--teacher", "0123456789abcdef0123456789abcdef", "--distill-alpha", "0.25"]
    plan, _ = _parse([*argv, "--distill-temperature", "4", "--experiment-name", "grid"], captured_plan)
    assert {(c.distill_alpha, c.distill_temperature, c.experiment_name) for c in plan.configs} == {
        (0.25, 4.0, "grid")
    }


def test_grid_table_keeps_distilled_and_undistilled_apart(tmp_path):
    from gated_bert import grid_compare

    values = {  # (method, distilled, seed) -> window mean and final
        ("random", True, 1): 0.60,
        ("random", True, 2): 0.62,
        ("magnitude", True, 1): 0.70,
        ("magnitude", True, 2): 0.75,
        ("random", False, 1): 0.50,
        ("random", False, 2): 0.56,
        ("magnitude", False, 1): 0.58,
        ("magnitude", False, 2): 0.60,
    }
    rows = pd.DataFrame(
        [
            {"method": m, "end_sparsity": 0.9, "seed": seed, "distilled": d, "metric": "eval_accuracy"}
            | {"final": v, "best_at_target": v, "window_mean": v}
            for (m, d, seed), v in values.items()
        ]
    )
    table = grid_compare.grid_table(rows).set_index(["method", "distilled"])
    assert len(table) == 4 and (table["n"] == 2).all()
    # each is paired with random of its own kind: distilled +0.10 and +0.13, undistilled +0.08 and +0.04
    assert table.loc[("magnitude", True), "window_mean_vs_random_mean"] == pytest.approx(0.115)
    assert table.loc[("magnitude", False), "window_mean_vs_random_mean"] == pytest.approx(0.06)
    assert table.loc[("magnitude", False), "final_mean"] == pytest.approx(0.59)
    grid_compare.plot_metric_vs_sparsity(table.reset_index(), "accuracy", tmp_path / "g.png", "t")
    assert_png(tmp_path / "g.png", 1200, 350)


def test_grid_table_and_plot(tmp_path):
    import pandas as pd

    from gated_bert import grid_compare

    rows = pd.DataFrame(
        [
            {
                "method": m,
                "end_sparsity": s,
                "seed": seed,
                "metric": "eval_accuracy",
                "final": base + 0.01 * seed,
                "best_at_target": base + 0.02,
                "window_mean": base - 0.05,
            }
            for m, s, base in (
                ("magnitude", 0.9, 0.75),
                ("random", 0.9, 0.6),
                ("magnitude", 0.5, 0.78),
                ("baseline", 0.0, 0.8),
            )
            for seed in (1, 2, 3)
        ]
    )
    table = grid_compare.grid_table(rows)
    magnitude = table[(table["method"] == "magnitude") & (table["end_sparsity"] == 0.9)].iloc[0]
    assert magnitude["n"] == 3 and magnitude["final_mean"] == pytest.approx(0.77)
    assert magnitude["final_std"] == pytest.approx(0.01) and magnitude["window_mean_mean"] == pytest.approx(
        0.70
    )
    # paired with random's run of the same seed: finals differ by 0.15 every seed, window means too
    assert magnitude["n_paired"] == 3 and magnitude["final_vs_random_mean"] == pytest.approx(0.15)
    assert magnitude["final_vs_random_std"] == pytest.approx(0.0, abs=1e-12)
    assert magnitude["window_mean_vs_random_mean"] == pytest.approx(0.15)
    assert table[table["method"] == "random"]["n_paired"].isna().all()
    assert np.isnan(table[table["method"] == "magnitude"]["n_paired"]).tolist() == [
        True,
        False,
    ]  # 0.5: no random
    grid_compare.plot_metric_vs_sparsity(table, "accuracy", tmp_path / "grid.png", "t")
    assert_png(tmp_path / "grid.png", 1200, 350)  # two panels: final and window mean
    table["window_mean_mean"] = float("nan")  # runs without a window: the final panel only
    grid_compare.plot_metric_vs_sparsity(table, "accuracy", tmp_path / "final_only.png", "t")
    assert_png(tmp_path / "final_only.png", 600, 350)
    from matplotlib.image import imread

    assert imread(tmp_path / "final_only.png").shape[1] < 1000


def test_grid_plot_of_one_end_sparsity_has_an_x_span(tmp_path):
    import warnings

    from gated_bert import grid_compare

    rows = pd.DataFrame(
        [
            {"method": m, "end_sparsity": 0.9, "seed": seed, "metric": "eval_accuracy", "final": v}
            | {"best_at_target": v, "window_mean": v}
            for m, v in (("random", 0.7), ("spt", 0.8))
            for seed in (1, 2)
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of identical x limits without the span
        figure_path = tmp_path / "one.png"
        grid_compare.plot_metric_vs_sparsity(grid_compare.grid_table(rows), "accuracy", figure_path, "t")
    assert_png(figure_path, 600, 350)


def test_grid_table_pairs_each_method_with_random_of_the_same_seed():
    from gated_bert import grid_compare

    window = {("random", 1): 0.60, ("random", 2): 0.70, ("spt", 1): 0.65, ("spt", 2): 0.80, ("spt", 3): 0.9}
    rows = pd.DataFrame(
        [
            {"method": m, "end_sparsity": 0.9, "seed": seed, "metric": "eval_accuracy", "final": v}
            | {"best_at_target": v, "window_mean": v}
            for (m, seed), v in window.items()
        ]
    )
    spt = grid_compare.grid_table(rows).set_index("method").loc["spt"]
    # seeds 1 and 2 pair (+0.05, +0.10); seed 3 has no random run; the unpaired means differ by 0.133
    assert (spt["n"], spt["n_paired"]) == (3, 2)
    assert spt["window_mean_vs_random_mean"] == pytest.approx(0.075)
    assert spt["window_mean_vs_random_std"] == pytest.approx(np.std([0.05, 0.10], ddof=1))
    assert spt["window_mean_mean"] - 0.65 == pytest.approx(0.1333, abs=1e-4)


def _logged_run(parent_id, method, seed, window, status="FINISHED"):
    """A training run's tags, task and summaries, as `gated-bert train` logs them, under `parent_id`."""
    with mlflow.start_run(run_name=f"{method}_sst2", nested=True) as run:
        mlflow.set_tags({"method": method, "seed": str(seed), "end_sparsity": "0.9", "distilled": "true"})
        mlflow.set_tag("mlflow.parentRunId", parent_id)
        mlflow.log_param("task", "sst2")
        names = ("final_eval_accuracy", "best_eval_accuracy_at_target", "window_mean_eval_accuracy")
        mlflow.log_metrics(dict.fromkeys(names, window))
    mlflow.MlflowClient().set_terminated(run.info.run_id, status=status)


def test_compare_grid_joins_the_seeds_of_several_parent_runs(tracking, capsys):
    mlflow.set_experiment("sst2")
    parents = []
    for seeds in ((1,), (2, 3)):  # two `gated-bert experiments` invocations, one grid
        with mlflow.start_run(run_name="experiments") as parent:
            parents.append(parent.info.run_id)
        for seed in seeds:
            _logged_run(parents[-1], "random", seed, 0.60 + 0.05 * seed)
            _logged_run(parents[-1], "magnitude", seed, 0.60 + 0.05 * seed + 0.01 * seed)
    _logged_run(parents[-1], "magnitude", 4, 0.99, status="KILLED")  # left out: not finished
    argv = ["compare", "--grid", "--output-dir", str(tracking / "out")]
    main([*argv, *[f"--parent-run-id={p}" for p in parents]])
    table = pd.read_csv(tracking / "out" / "pruning_grid_comparison.csv").set_index("method")
    magnitude = table.loc["magnitude"]
    assert (magnitude["n"], magnitude["n_paired"]) == (3, 3)
    assert magnitude["window_mean_vs_random_mean"] == pytest.approx(0.02)  # +0.01, +0.02, +0.03
    assert magnitude["window_mean_vs_random_std"] == pytest.approx(0.01)
    assert table.loc["random", "window_mean_mean"] == pytest.approx(0.70)
    assert_png(tracking / "out" / "pruning_grid_metric_vs_sparsity.png", 600, 350)
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:  # a results folder is no MLflow run
        main(["compare", "--grid", str(tracking)])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1 and "--grid compares MLflow runs" in err


@pytest.mark.slow
def test_grid_over_seeds_and_sparsities_end_to_end(glue_dir, tmp_path):
    done = _experiments(
        tmp_path,
        glue_dir,
        "--output-mode",
        "logs",
        "--seeds",
        "1,2",
        "--end-sparsities",
        "0.5,0.9",
        methods="magnitude,baseline",
        epochs="2",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = _runs(tmp_path)
    parent = next(r for r in runs if r.data.tags.get("experiments") == "parent")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and {r.info.status for r in children} == {"FINISHED"}
    cells = sorted(
        (r.data.tags["method"], r.data.tags["end_sparsity"], r.data.tags["seed"]) for r in children
    )
    expected = [("magnitude", s, str(seed)) for s in ("0.5", "0.9") for seed in (1, 2)]
    assert cells == sorted(expected + [("baseline", "0", "1"), ("baseline", "0", "2")])
    for run in children:
        assert {"window_mean_eval_accuracy", "best_eval_accuracy_at_target"} <= set(run.data.metrics)
    table = pd.read_csv(tmp_path / "out" / "pruning_grid_comparison.csv")
    assert len(table) == 3 and set(table["n"]) == {2}
    magnitude = [
        r for r in children if r.data.tags["method"] == "magnitude" and r.data.tags["end_sparsity"] == "0.9"
    ]
    row = table[(table["method"] == "magnitude") & (table["end_sparsity"] == 0.9)].iloc[0]
    finals = [r.data.metrics["final_eval_accuracy"] for r in magnitude]
    assert row["final_mean"] == pytest.approx(np.mean(finals)) and row["final_std"] == pytest.approx(
        np.std(finals, ddof=1)
    )
    assert_png(tmp_path / "out" / "pruning_grid_metric_vs_sparsity.png", 600, 350)
    artifacts = {f.path for f in mlflow.MlflowClient().list_artifacts(parent.info.run_id, "comparison")}
    assert artifacts == {
        "comparison/pruning_grid_comparison.csv",
        "comparison/pruning_grid_metric_vs_sparsity.png",
    }


def test_jobs_get_absolute_local_paths_and_keep_ids(tmp_path, monkeypatch):
    from gated_bert.experiments.jobs import with_absolute_paths

    monkeypatch.chdir(tmp_path)
    for name in ("ckpt", "glue", "teacher_model"):
        (tmp_path / name).mkdir()
    (tmp_path / "vocab.txt").write_text("[PAD]\n")
    config = GatedBertConfig(
        init_from="ckpt", data_dir="./glue", teacher="teacher_model", tokenizer="vocab.txt"
    )
    moved = with_absolute_paths(config)
    assert (moved.init_from, moved.data_dir, moved.teacher, moved.tokenizer) == (
        str(tmp_path / "ckpt"),
        str(tmp_path / "glue"),
        str(tmp_path / "teacher_model"),
        str(tmp_path / "vocab.txt"),
    )
    ids = GatedBertConfig(init_from="bert-base-uncased", teacher="0123456789abcdef0123456789abcdef")
    assert with_absolute_paths(ids) == ids
