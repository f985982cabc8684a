"""Sweeps across machines, for real: PostgreSQL study storage and an MLflow tracking server.

The services come from `scripts/dev-services.sh start` (CI starts them); the tests find them
through GATED_BERT_TEST_POSTGRES and GATED_BERT_TEST_MLFLOW, are skipped where those are not
set, and fail where they are set but the services do not answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

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


def _sweep_command(data_dir) -> list[str]:
    """`gated-bert sweep` with the tests' small budget, on `data_dir`."""
    return [sys.executable, "-m", "gated_bert.cli", "sweep", *SWEEP, "--data-dir", str(data_dir)]


def _sweep(services: Services, home, study: str, experiment: str, data_dir, n_trials: int = 3):
    home.mkdir(parents=True, exist_ok=True)
    command = [*_sweep_command(data_dir), "--study-name", study, "--n-trials", str(n_trials)]
    command += ["--experiment-name", experiment, "--output-root", str(home / "out")]
    return subprocess.Popen(
        command,
        cwd=home,
        env=dict(_machine_env(home, services.mlflow), GATED_BERT_STORAGE=services.postgres),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read()


SCRIPT = ["bash", str(REPO / "scripts" / "dev-services.sh")]


@contextlib.contextmanager
def _services_on(host, folder):
    """`scripts/dev-services.sh start` on `host` (a network namespace), its exports as a dict."""
    env = dict(
        os.environ,
        GATED_BERT_SERVICES_DIR=str(folder),
        GATED_BERT_SERVICES_HOST=host.address,
        GATED_BERT_SERVICES_NETNS=host.namespace,
        PYTHON=sys.executable,
    )
    try:
        started = subprocess.run([*SCRIPT, "start"], env=env, capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stderr[-3000:]
        exports = dict(
            shlex.split(line[len("export ") :])[0].split("=", 1) for line in started.stdout.splitlines()
        )
        exports["dump"] = lambda: (
            subprocess.run([*SCRIPT, "dump"], env=env, capture_output=True, check=True).stdout
        )
        yield exports
    finally:
        subprocess.run([*SCRIPT, "stop"], env=env, capture_output=True, timeout=120)


def _status(host, *curl_args: str) -> str:
    done = subprocess.run(
        host.command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *curl_args),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


def _written(paths, exclude=()) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file under `paths`, but those under `exclude`."""
    found = []
    for root in paths:
        for path in Path(root).rglob("*"):
            if path.is_file() and not any(path.is_relative_to(e) for e in exclude):
                found.append((str(path), path.read_bytes()))
    return found


@pytest.mark.slow
def test_two_hosts_share_one_study_through_authenticated_services(tmp_path, data_dir, monkeypatch):
    """Services on one network namespace, sweeps on two others, an anonymous client on a fourth:
    one study, one parent run, 401 for the anonymous client, no password anywhere."""
    from tests import netns

    problem = netns.unavailable()
    if problem is not None:
        if os.environ.get("GATED_BERT_REQUIRE_SERVICES"):
            pytest.fail(f"GATED_BERT_REQUIRE_SERVICES is set but {problem}")
        pytest.skip(problem)
    import mlflow
    import optuna

    folder = Path(tempfile.mkdtemp(prefix="gated-bert-hosts-"))  # the postgres user must reach it
    folder.chmod(0o755)
    study, experiment = f"two-hosts-{uuid.uuid4().hex[:8]}", f"sweep-{uuid.uuid4().hex[:8]}"
    try:
        with (
            netns.lan("server", "a", "b", "anonymous") as hosts,
            _services_on(hosts["server"], folder / "s") as svc,
        ):
            server, storage = svc["GATED_BERT_TEST_MLFLOW"], svc["GATED_BERT_TEST_POSTGRES"]
            assert server.startswith(f"http://{hosts['server'].address}:") and "sslmode=require" in storage
            secrets = {
                "database": urllib.parse.urlsplit(storage).password,
                "worker": svc["MLFLOW_TRACKING_PASSWORD"],
                "admin": (folder / "s" / "secrets" / "admin_password").read_text().strip(),
            }
            anonymous = hosts["anonymous"]
            assert _status(anonymous, f"{server}/api/2.0/mlflow/experiments/search?max_results=5") == "401"
            create = ["-X", "POST", "-H", "Content-Type: application/json", "-d", '{"name": "intruder"}']
            assert _status(anonymous, *create, f"{server}/api/2.0/mlflow/experiments/create") == "401"

            def worker(name, password=secrets["worker"]):
                home = tmp_path / name
                home.mkdir()
                env = _machine_env(home, server)
                env.update(
                    GATED_BERT_STORAGE=storage, MLFLOW_TRACKING_USERNAME=svc["MLFLOW_TRACKING_USERNAME"]
                )
                if name == "b":  # the database password in a libpq password file, not in the URL
                    parts = urllib.parse.urlsplit(storage)
                    passfile = home / "pgpass"
                    passfile.write_text(f"*:*:*:{parts.username}:{parts.password}\n")
                    passfile.chmod(0o600)
                    env["PGPASSFILE"] = str(passfile)
                    env["GATED_BERT_STORAGE"] = storage.replace(f":{parts.password}@", "@")
                env["MLFLOW_TRACKING_PASSWORD"] = password
                command = [
                    *_sweep_command(data_dir),
                    "--study-name",
                    study,
                    "--n-trials",
                    "2",
                    "--n-jobs",
                    "1",
                ]
                command += ["--experiment-name", experiment, "--output-root", str(home / "out")]
                return subprocess.Popen(
                    hosts[name].command(*command),
                    cwd=home,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )

            started = time.time()
            intruder = worker("b", password="not-the-password")  # b first, with a wrong password
            out, _ = intruder.communicate(timeout=60)
            errors = [line for line in out.splitlines() if line.startswith("Error")]
            assert intruder.returncode == 2 and len(errors) == 1 and "Traceback" not in out, out[-2000:]
            assert "HTTP 401" in errors[0] and "not-the-password" not in out
            assert time.time() - started < 10
            shutil.rmtree(tmp_path / "b")

            machines = [worker("a"), worker("b")]
            shown = []
            while any(m.poll() is None for m in machines):  # `ps -ef` while the sweep runs
                listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
                shown += [
                    f"{name}: {line}"
                    for line in listing.splitlines()
                    for name, secret in secrets.items()
                    if secret in line
                ]
                time.sleep(0.5)
            outputs = [m.communicate()[0] for m in machines]
            assert [m.returncode for m in machines] == [0, 0], [o[-3000:] for o in outputs]
            assert not shown, shown[:3]

            trials = optuna.load_study(study_name=study, storage=storage).trials
            assert len(trials) == 4 and {t.state.name for t in trials} == {"COMPLETE"}
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", svc["MLFLOW_TRACKING_USERNAME"])
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secrets["worker"])
            client = mlflow.MlflowClient(server)
            experiment_id = client.get_experiment_by_name(experiment).experiment_id
            runs = client.search_runs([experiment_id], max_results=100)
            parents = [r for r in runs if r.data.tags.get("sweep") == "parent"]
            assert len(parents) == 1, [r.info.run_name for r in runs]
            parent = parents[0]
            children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
            assert len(runs) == 5 and len(children) == 4
            assert {r.info.status for r in runs} == {"FINISHED"}
            assert len({r.data.tags["gated_bert.sweep_invocation"] for r in children}) == 2
            assert parent.data.metrics["trials_complete"] == 4  # the last invocation to end saw all four
            child = children[0]
            assert child.info.artifact_uri.startswith(
                "mlflow-artifacts:"
            )  # through the server, no shared disk
            config = json.loads(
                Path(
                    client.download_artifacts(child.info.run_id, "run_config.json", str(tmp_path))
                ).read_text()
            )
            assert config["pruning_method"] == "magnitude" and config["end_sparsity"] == 0.5

            report = subprocess.run(
                [sys.executable, "-m", "gated_bert.cli", "sweep-report", "--study-name", study],
                cwd=tmp_path,
                env=dict(_machine_env(tmp_path / "c", server), GATED_BERT_STORAGE=storage),
                capture_output=True,
                text=True,
            )
            assert report.returncode == 0 and f"sweep run {parent.info.run_id}" in report.stdout, (
                report.stderr[-2000:]
            )

            # everything the sweep wrote: its output, both homes, the server's log and artifact store,
            # and both databases (MLflow's and the study's), but the services' own secrets files
            services = folder / "s"
            secret_files = [
                services / "env",
                services / "secrets",
                services / "pg",
                tmp_path / "b" / "pgpass",
            ]
            written = _written([tmp_path, services], exclude=secret_files)
            written += [
                ("stdout", "".join(outputs + [report.stdout, report.stderr]).encode()),
                ("dump", svc["dump"]()),
            ]
            assert len(written) > 20 and any(p.endswith("run_config.json") for p, _ in written)
            leaks = [
                (path, name)
                for path, data in written
                for name, secret in secrets.items()
                if secret.encode() in data
            ]
            assert not leaks, leaks[:5]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_wrong_password_is_one_line_exit_2_within_seconds(services, tmp_path, data_dir):
    wrong = services.postgres.replace(f":{services.password}@", ":not-the-password@")
    started = time.time()
    done = subprocess.run(
        [*_sweep_command(data_dir), "--storage", wrong, "--n-trials", "1"],
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


def test_a_user_without_permission_on_the_experiment_is_one_line_exit_2(services, tmp_path, data_dir):
    """The admin's experiment is not the workers': training into it stops before any run, HTTP 403."""
    import base64

    admin = (Path(os.environ["GATED_BERT_SERVICES_DIR"]) / "secrets" / "admin_password").read_text().strip()
    name = f"admin-only-{uuid.uuid4().hex[:8]}"

    def as_admin(endpoint: str, body: dict) -> dict:
        request = urllib.request.Request(
            f"{services.mlflow}/api/2.0/mlflow/{endpoint}",
            data=json.dumps(body).encode(),
            headers={
                "Authorization": "Basic " + base64.b64encode(f"admin:{admin}".encode()).decode(),
                "Content-Type": "application/json",
            },
        )
        return json.loads(urllib.request.urlopen(request, timeout=30).read())

    experiment_id = as_admin("experiments/create", {"name": name})["experiment_id"]
    command = [sys.executable, "-m", "gated_bert.cli", "train", "--model-size", "tiny", "--epochs", "1"]
    command += ["--max-train-samples", "64", "--max-eval-samples", "32", "--data-dir", str(data_dir)]
    command += ["--experiment-name", name, "--output-root", str(tmp_path / "out"), "--verbose", "0"]
    done = subprocess.run(
        command, cwd=tmp_path, env=_machine_env(tmp_path, services.mlflow), capture_output=True, text=True
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert f"experiment {name!r}" in errors[0] and "HTTP 403" in errors[0]
    assert os.environ["MLFLOW_TRACKING_USERNAME"] in errors[0]
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert as_admin("runs/search", {"experiment_ids": [experiment_id]}).get("runs", []) == []


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
    from mlflow.exceptions import MlflowException

    script = ["bash", str(REPO / "scripts" / "dev-services.sh")]
    study, experiment = f"lost-{uuid.uuid4().hex[:8]}", f"lost-{uuid.uuid4().hex[:8]}"
    sweep = _sweep(services, tmp_path / "a", study, experiment, data_dir, n_trials=2)
    client = mlflow.MlflowClient(services.mlflow)
    deadline = time.time() + 300
    while True:  # the first trial is training: its first epoch is logged
        try:
            found = client.get_experiment_by_name(experiment)
        except MlflowException as err:  # created, its creator's permission not yet
            if err.error_code != "PERMISSION_DENIED":  # granted (MLflow grants it just after)
                raise
            found = None
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
