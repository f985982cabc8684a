"""Sweeps across machines, for real: PostgreSQL study storage and an MLflow tracking server.

The services come from `scripts/dev-services.sh start` (CI starts them); the tests find them
through GATED_BERT_TEST_POSTGRES and GATED_BERT_TEST_MLFLOW, are skipped where those are not
set, and fail where they are set but the services do not answer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

from tests.conftest import REPO, real_glue_dir, write_sst2


@dataclass(frozen=True)
class Services:
    postgres: str  # Optuna storage URL, password included
    mlflow: str  # tracking server URL

    @property
    def password(self) -> str:
        return urllib.parse.urlsplit(self.postgres).password


@pytest.fixture(scope="session")
def services() -> Services:
    postgres, server = os.environ.get("GATED_BERT_TEST_POSTGRES"), os.environ.get("GATED_BERT_TEST_MLFLOW")
    if not postgres or not server:
        if os.environ.get("GATED_BERT_REQUIRE_SERVICES"):
            pytest.fail("GATED_BERT_REQUIRE_SERVICES is set but GATED_BERT_TEST_POSTGRES/_MLFLOW are not")
        pytest.skip('no services: run eval "$(scripts/dev-services.sh start)" first (CI does)')
    from gated_bert import stores

    problem = stores.database_problem(postgres) or stores.http_problem(server)
    assert problem is None, f"GATED_BERT_TEST_* is set but a service does not answer: {problem}"
    return Services(postgres, server)


@pytest.fixture()
def data_dir(tmp_path):
    real = real_glue_dir()
    return real if real is not None else write_sst2(tmp_path / "glue")


def _machine_env(home, server: str) -> dict[str, str]:
    """Another machine: its own home and caches; only the database and the server are shared."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=server, TF_CPP_MIN_LOG_LEVEL="3", HOME=str(home))
    env["GATED_BERT_CACHE"] = str(home / "cache")
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    return env


SWEEP = ["--model-size", "tiny", "--epochs", "2", "--batch-size", "32", "--learning-rate", "1e-4"]
SWEEP += ["--max-train-samples", "200", "--max-eval-samples", "100", "--pruning-method", "magnitude"]
SWEEP += ["--pruning-start-epoch", "1", "--end-sparsity", "0.5", "--pruner", "none", "--verbose", "0"]


def _sweep(services: Services, home, study: str, experiment: str, data_dir, n_trials: int = 3):
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "gated_bert.cli", "sweep", *SWEEP, "--data-dir", str(data_dir)]
    command += ["--storage", services.postgres, "--study-name", study, "--n-trials", str(n_trials)]
    command += ["--experiment-name", experiment, "--output-root", str(home / "out")]
    return subprocess.Popen(
        command,
        cwd=home,
        env=_machine_env(home, services.mlflow),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read()


@pytest.mark.slow
def test_two_machines_share_one_study_and_one_parent_run(services, tmp_path, data_dir):
    import mlflow
    import optuna

    study, experiment = f"two-machines-{uuid.uuid4().hex[:8]}", f"sweep-{uuid.uuid4().hex[:8]}"
    machines = [_sweep(services, tmp_path / name, study, experiment, data_dir) for name in ("a", "b")]
    for machine in machines:
        out, _ = machine.communicate(timeout=900)
        assert machine.returncode == 0, out[-3000:]
        assert services.password not in out

    trials = optuna.load_study(study_name=study, storage=services.postgres).trials
    assert len(trials) == 6 and {t.state.name for t in trials} == {"COMPLETE"}

    client = mlflow.MlflowClient(services.mlflow)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 7 and len(children) == 6  # one run per trial, nothing else nested
    assert {r.info.status for r in children} == {"FINISHED"}
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == list(range(6))
    assert len({r.data.tags["gated_bert.sweep_invocation"] for r in children}) == 2
    assert parent.data.metrics["trials_complete"] == 6  # the last invocation to end saw all six

    for run in runs:  # no password in any param or tag
        values = [*run.data.params.values(), *run.data.tags.values()]
        assert not [v for v in values if services.password in v], run.info.run_name

    child = children[0]
    assert child.info.artifact_uri.startswith("mlflow-artifacts:")  # through the server, no shared disk
    listed = json.loads(_get(f"{services.mlflow}/api/2.0/mlflow/artifacts/list?run_id={child.info.run_id}"))
    assert "run_config.json" in {f["path"] for f in listed["files"]}
    path = child.info.artifact_uri.split("mlflow-artifacts:/", 1)[1]
    config = json.loads(_get(f"{services.mlflow}/api/2.0/mlflow-artifacts/artifacts/{path}/run_config.json"))
    assert config["pruning_method"] == "magnitude" and config["end_sparsity"] == 0.5

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gated_bert.cli",
            "sweep-report",
            "--study-name",
            study,
            "--storage",
            services.postgres,
        ],
        cwd=tmp_path,
        env=_machine_env(tmp_path / "c", services.mlflow),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and f"sweep run {parent.info.run_id}" in done.stdout, done.stderr[-2000:]
    assert services.password not in done.stdout + done.stderr


def test_wrong_password_is_one_line_exit_2_within_seconds(services, tmp_path, data_dir):
    wrong = services.postgres.replace(f":{services.password}@", ":not-the-password@")
    started = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gated_bert.cli",
            "sweep",
            *SWEEP,
            "--data-dir",
            str(data_dir),
            "--storage",
            wrong,
            "--n-trials",
            "1",
        ],
        cwd=tmp_path,
        env=_machine_env(tmp_path, services.mlflow),
        capture_output=True,
        text=True,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr
    assert "password authentication failed" in errors[0] and "not-the-password" not in done.stderr
    assert time.time() - started < 60
    assert not (tmp_path / "out").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_lists_the_studies(services, tmp_path):
    import optuna

    name = f"dashboard-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=services.postgres)
    port = _free_port()
    dashboard = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "optuna-dashboard"),
            services.postgres,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                studies = json.loads(_get(f"http://127.0.0.1:{port}/api/studies"))["study_summaries"]
                break
            except OSError:
                assert dashboard.poll() is None and time.time() < deadline, "optuna-dashboard did not start"
                time.sleep(0.5)
        assert name in {study["study_name"] for study in studies}
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_services_script_usage():
    done = subprocess.run(["bash", str(REPO / "scripts" / "dev-services.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr


@pytest.mark.slow
def test_lost_database_connection_fails_the_running_trial_and_never_hangs(services, tmp_path, data_dir):
    """The database stops for a few seconds while a trial trains: that trial fails, saying why,
    and the sweep goes on and ends."""
    import mlflow
    import optuna

    script = ["bash", str(REPO / "scripts" / "dev-services.sh")]
    study, experiment = f"lost-{uuid.uuid4().hex[:8]}", f"lost-{uuid.uuid4().hex[:8]}"
    sweep = _sweep(services, tmp_path / "a", study, experiment, data_dir, n_trials=2)
    client = mlflow.MlflowClient(services.mlflow)
    deadline = time.time() + 300
    while True:  # the first trial is training: its first epoch is logged
        found = client.get_experiment_by_name(experiment)
        runs = client.search_runs([found.experiment_id]) if found else []
        if any("train_loss" in r.data.metrics and "optuna.trial_number" in r.data.tags for r in runs):
            break
        assert sweep.poll() is None and time.time() < deadline, sweep.stdout.read()[-3000:]
        time.sleep(0.2)
    subprocess.run([*script, "pg-stop"], check=True, capture_output=True)
    time.sleep(5)
    subprocess.run([*script, "pg-start"], check=True, capture_output=True)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:]

    trials = optuna.load_study(study_name=study, storage=services.postgres).trials
    assert len(trials) == 2 and {t.state.name for t in trials} <= {"COMPLETE", "FAIL"}
    for trial in trials:
        if trial.state.name == "FAIL":
            assert "lost the connection to the study's database" in trial.user_attrs["fail_reason"]
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}
