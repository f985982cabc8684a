"""Bad input on the command line: one line on stderr, exit code 2, nothing written."""

import os
import subprocess
import sys

import pytest

from gated_bert.cli import main
from tests.conftest import REPO, write_sst2

FLAG_CASES = [
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--epochs", "x"], "'x' is not a valid integer"),
    (["--batch-size", "-1"], "batch_size must be a positive integer, got -1"),
    (["--learning-rate", "abc"], "'abc' is not a valid float"),
    (["--learning-rate", "-1"], "learning_rate must be a positive number, got -1.0"),
    (["--model-size", "huge"], "unknown model_size 'huge'"),
    (["--task", "foo"], "unknown task 'foo'"),
    (["--pruning-method", "lottery"], "unknown pruning_method 'lottery'"),
    (["--end-sparsity", "1.2"], "end_sparsity must be in [0, 1), got 1.2"),
    (["--start-sparsity", "-0.1"], "start_sparsity must be in [0, 1), got -0.1"),
    (
        ["--start-sparsity", "0.5", "--end-sparsity", "0.3"],
        "start_sparsity (0.5) must be <= end_sparsity (0.3)",
    ),
    (["--pruning-start-epoch", "0"], "pruning_start_epoch must be a positive integer, got 0"),
    (
        ["--pruning-start-epoch", "9", "--pruning-end-epoch", "3"],
        "pruning_start_epoch (9) must be <= pruning_end_epoch (3)",
    ),
    (["--sparsity-steps", "10 5"], "sparsity_steps must be strictly increasing, got 10.0 then 5.0"),
    (["--sparsity-steps", "a b"], "is not a list of numbers like '10 25 50 90'"),
    (["--sparsity-steps", "0 50"], "sparsity_steps values must be within (0, 100) percent, got 0.0"),
    (["--spt-explore-per-layer", "maybe"], "'maybe' is not a valid boolean"),
    (["--spt-epsilon", "2"], "spt_epsilon must be in (0, 0.5], got 2.0"),
    (["--spt-epsilon", "lots"], "'lots' is not a valid float (or 'auto')"),
    (["--spt-reward-alpha", "0"], "spt_reward_alpha must be in (0, 1], got 0.0"),
    (["--movement-schedule", "exp"], "unknown movement_schedule 'exp'"),
    (["--d-model", "100", "--num-heads", "3"], "d_model (100) must be divisible by num_heads (3)"),
    (["--max-len", "2"], "max_len must be between 4 and 4096, got 2"),
    (["--dropout-rate", "1.5"], "dropout_rate must be in [0, 1), got 1.5"),
    (["--verbose", "7"], "verbose must be 0, 1 or 2, got 7"),
    (["--no-such-flag", "1"], "No such option '--no-such-flag'. (see 'gated-bert train --help')"),
    (["--num-layers", "abc"], "'abc' is not a valid int (or 'auto')"),
    (["--seed", "-1"], "seed must be a non-negative integer, got -1"),
    (["--max-train-samples", "0"], "max_train_samples must be a positive integer, got 0"),
    (["--pruning-scope", "rows"], "unknown pruning_scope 'rows'"),
    (["--weight-decay", "2"], "weight_decay must be in [0, 1), got 2.0"),
]


def _run_main(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("flags, message", FLAG_CASES, ids=[" ".join(f) for f, _ in FLAG_CASES])
def test_bad_flags(flags, message, capsys, tmp_path):
    code, err = _run_main(["train", "--output-root", str(tmp_path), *flags], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("Warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []


def _bad_data(root):
    write_sst2(root)
    (root / "SST-2" / "dev.tsv").write_text("sentence\tlabel\nfine\t1\nodd\tmaybe\n")


def _ragged(root):
    write_sst2(root)
    (root / "SST-2" / "train.tsv").write_text("sentence\tlabel\na\t1\nb\t0\tx\n")


def _with(relative: str, content: bytes):
    def setup(root):
        write_sst2(root)
        (root / relative).write_bytes(content)

    return setup


DATA_CASES = [
    (lambda root: None, ["--data-dir", "{root}/missing"], "data directory '{root}/missing' does not exist"),
    (lambda root: root.mkdir(exist_ok=True), ["--data-dir", "{root}"], "no SST-2/ folder in '{root}'"),
    (_bad_data, ["--data-dir", "{root}"], "dev.tsv' line 3: unknown label 'maybe' for sst2"),
    (_ragged, ["--data-dir", "{root}"], "malformed TSV"),
    (lambda root: write_sst2(root), ["--data-dir", "{root}", "--task", "rte"], "no RTE/ folder in"),
    (
        lambda root: write_sst2(root),
        ["--data-dir", "{root}", "--tokenizer", "{root}/nope/vocab.txt"],
        "tokenizer vocabulary '{root}/nope/vocab.txt' does not exist",
    ),
    (
        lambda root: write_sst2(root),
        ["--data-dir", "{root}", "--tokenizer", "{root}/tok.json"],
        "tokenizer file '{root}/tok.json' does not exist",
    ),
    (
        _with("tok.json", b'{"not": "a tokenizer"}'),
        ["--data-dir", "{root}", "--tokenizer", "{root}/tok.json"],
        "cannot read tokenizer '{root}/tok.json'",
    ),
    (
        _with("vocab.txt", b"hello\nworld\n"),
        ["--data-dir", "{root}", "--tokenizer", "{root}/vocab.txt"],
        "cannot read tokenizer vocabulary '{root}/vocab.txt' (sep_token not found in the vocabulary)",
    ),
    (
        _with("vocab.txt", b"\xff\xfe\x00"),
        ["--data-dir", "{root}", "--tokenizer", "{root}/vocab.txt"],
        "cannot read tokenizer vocabulary '{root}/vocab.txt'",
    ),
    (
        _with("afile", b"x"),
        ["--data-dir", "{root}/afile"],
        "data directory '{root}/afile' is a file, not a folder",
    ),
    (
        _with("SST-2/train.tsv", b"text\tlabel\nhello\t1\n"),
        ["--data-dir", "{root}"],
        "lacks column(s) ['sentence'] for sst2; header has ['text', 'label']",
    ),
    (
        _with("SST-2/dev.tsv", b"\xff\xfe\x00bad"),
        ["--data-dir", "{root}"],
        "dev.tsv' is not UTF-8 text",
    ),
]


@pytest.mark.parametrize("setup, flags, message", DATA_CASES, ids=range(len(DATA_CASES)))
def test_bad_data_inputs(setup, flags, message, capsys, tmp_path):
    root = tmp_path / "glue"
    setup(root)
    out = tmp_path / "out"
    out.mkdir()
    argv = [
        "train",
        "--output-root",
        str(out),
        "--model-size",
        "tiny",
        "--epochs",
        "1",
        "--pruning-method",
        "none",
    ]
    code, err = _run_main(argv + [f.format(root=root) for f in flags], capsys)
    assert code == 2
    assert err.startswith("Error: ") and len(err.splitlines()) == 1
    assert message.format(root=root) in err
    assert list(out.iterdir()) == []  # no half-written run


def test_environment_value_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("BENCHMARK_EPOCHS", "ten")
    code, err = _run_main(["train", "--output-root", str(tmp_path)], capsys)
    assert code == 2 and err == "Error: environment variable BENCHMARK_EPOCHS must be an integer, got 'ten'"


def test_real_process_exit_code_and_help():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    bad = subprocess.run(
        [sys.executable, "-m", "gated_bert.cli", "train", "--end-sparsity", "1.5"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "Error: end_sparsity must be in [0, 1), got 1.5"
    assert "Traceback" not in bad.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "gated_bert.cli", "train", "--help"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert helped.returncode == 0
    for option in (
        "--model-size",
        "--end-sparsity",
        "--pruning-start-epoch",
        "--data-dir",
        "--spt-epsilon",
        "--movement-pruning-frequency-steps",
        "--sparsity-steps",
    ):
        assert option in helped.stdout
    text = " ".join(helped.stdout.split())
    assert "[default: 0.99]" in text and "(default: 96 from scratch, 32 with init_from)" in text
    assert "Default: spt; with init_from, none" in text


def test_bad_data_in_a_real_process_prints_one_line_and_no_tensorflow_log(tmp_path):
    """TensorFlow's C++ start-up lines (oneDNN, cuda drivers, absl) never reach the terminal, even
    without TF_CPP_MIN_LOG_LEVEL: the error is the only line."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/m.db"
    for flags, message in (
        (["--data-dir", str(tmp_path / "missing")], "does not exist; pass --data-dir"),
        (["--data-dir", str(tmp_path), "--init-from", str(tmp_path / "nothing")], "no such folder"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "gated_bert.cli", "train", "--output-root", str(tmp_path), *flags],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], done.stderr


def _parsed_config(argv, monkeypatch):
    """The config `gated-bert train ARGV` would train, captured instead of training."""
    from gated_bert import run

    seen = []

    def capture(config, **kwargs):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(run, "train", capture)
    with pytest.raises(SystemExit):
        main(["train", *argv])
    return seen[-1]


def test_cli_options_parse_to_config(monkeypatch):
    from gated_bert.config import GatedBertConfig

    assert _parsed_config([], monkeypatch) == GatedBertConfig()
    config = _parsed_config(
        [
            "--model-size",
            "tiny",
            "--sparsity-steps",
            "10,50",  # commas or spaces
            "--spt-explore-per-layer",
            "yes",  # click's booleans
            "--spt-epsilon",
            "auto",  # optional fields take auto
            "--max-train-samples",
            "none",
            "--epochs",
            "10",
            "--pruning-method",
            "random",
        ],
        monkeypatch,
    )
    expected = GatedBertConfig(
        model_size="tiny",
        sparsity_steps=(10.0, 50.0),
        spt_explore_per_layer=True,
        epochs=10,
        pruning_method="random",
    )
    assert config == expected
    assert config.spt_epsilon is None and config.effective_spt_epsilon == 0.01
    assert config.pruning_end_epoch == 10  # capped from the default 23
    monkeypatch.setenv("BENCHMARK_EPOCHS", "3")
    assert _parsed_config(["--epochs", "10"], monkeypatch).epochs == 3  # the environment wins


@pytest.mark.parametrize("which", ["train.tsv", "dev.tsv"])
def test_empty_split_is_one_line_exit_2_before_any_output(which, tmp_path, capsys, monkeypatch):
    glue = write_sst2(tmp_path / "glue")
    (glue / "SST-2" / which).write_text("sentence\tlabel\n")  # the header only
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    out = tmp_path / "out"
    argv = ["train", "--data-dir", str(glue), "--output-root", str(out), "--pruning-method", "none"]
    code, err = _run_main(argv, capsys)
    split = "train" if which == "train.tsv" else "dev"
    assert code == 2 and err.count("\n") == 0
    assert f"{glue / 'SST-2' / which}: the {split} split has no examples" in err
    assert not out.exists() and not (tmp_path / "m.db").exists()


def test_output_root_that_cannot_be_created(tmp_path, capsys, monkeypatch):
    glue = write_sst2(tmp_path / "glue")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    code, err = _run_main(["train", "--data-dir", str(glue), "--output-root", str(blocker / "out")], capsys)
    assert code == 2 and err.startswith("Error: cannot create") and "pass a writable --output-root" in err
    assert err.count("\n") == 0 and not (tmp_path / "m.db").exists()


def test_storage_without_driver_or_server_names_the_url_without_password(tmp_path, capsys, monkeypatch):
    glue = write_sst2(tmp_path / "glue")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    url = "postgresql://gb:s3cret@127.0.0.1:1/optuna"  # no driver here, or (with the extra) no server
    code, err = _run_main(["sweep", "--storage", url, "--data-dir", str(glue), "--epochs", "2"], capsys)
    err = [line for line in err.splitlines() if line.startswith("Error")]
    assert code == 2 and len(err) == 1
    assert "--storage postgresql://gb:***@127.0.0.1:1/optuna" in err[0] and "s3cret" not in err[0]


STORE_CASES = [
    ("http://gb:s3cret@127.0.0.1:9", "cannot reach the MLflow tracking server http://gb:***@127.0.0.1:9"),
    (
        "postgresql://gb:s3cret@127.0.0.1:9/mlflow",
        "cannot open the MLflow tracking store postgresql://gb:***@",
    ),
    ("foo://bar", "cannot open the MLflow tracking store foo://bar"),
]


@pytest.mark.parametrize("command", ["train", "sweep", "experiments"])
@pytest.mark.parametrize("uri, message", STORE_CASES, ids=["http", "postgresql", "scheme"])
def test_unusable_tracking_store_is_one_line_exit_2_within_seconds(
    command, uri, message, tmp_path, capsys, monkeypatch
):
    import time

    glue = write_sst2(tmp_path / "glue")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    out = tmp_path / "out"
    argv = [command, "--data-dir", str(glue), "--output-root", str(out), "--epochs", "2"]
    started = time.time()
    code, err = _run_main(argv, capsys)
    err = [line for line in err.splitlines() if line.startswith("Error")]
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert "s3cret" not in err[0]
    assert time.time() - started < 60  # MLflow alone retries for minutes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glue"]  # no output, no journal, no store


@pytest.mark.parametrize(
    "storage, message",
    [
        ("{tmp}/no/such/folder/journal.log", "folder '{tmp}/no/such/folder' does not exist"),
        ("postgresql:/nohost", "does not exist; give a journal file in an existing folder or a database URL"),
        ("nosuchdb://x/y", "--storage nosuchdb://x/y: cannot open the database (NoSuchModuleError"),
    ],
)
def test_bad_storage_is_one_line_exit_2(storage, message, tmp_path, capsys, monkeypatch):
    glue = write_sst2(tmp_path / "glue")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/m.db")
    argv = ["sweep", "--storage", storage.format(tmp=tmp_path), "--data-dir", str(glue), "--epochs", "2"]
    code, err = _run_main([*argv, "--output-root", str(tmp_path / "out")], capsys)
    err = [line for line in err.splitlines() if line.startswith("Error")]
    assert code == 2 and len(err) == 1 and message.format(tmp=tmp_path) in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["glue"]


def test_stale_runs_are_listed_and_marked_killed(tmp_path, capsys, monkeypatch):
    import subprocess as sp

    import mlflow

    uri = f"sqlite:///{tmp_path}/m.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    gone = sp.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer exists
    import socket

    client = mlflow.MlflowClient()
    experiment = client.create_experiment("stale")
    dead = client.create_run(
        experiment, tags={"gated_bert.pid": str(gone.pid), "gated_bert.host": socket.gethostname()}
    )
    alive = client.create_run(
        experiment, tags={"gated_bert.pid": str(os.getpid()), "gated_bert.host": socket.gethostname()}
    )
    main(["runs", "--stale"])
    out = capsys.readouterr().out
    assert dead.info.run_id in out and alive.info.run_id not in out and "1 stale run(s)" in out
    assert client.get_run(dead.info.run_id).info.status == "RUNNING"
    main(["runs", "--stale", "--mark-killed"])
    assert f"{dead.info.run_id}" in capsys.readouterr().out
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"


OPEN_AND_LOG = """
import sys, time
import mlflow
from gated_bert.tracking.runs import open_sqlite_store
uri, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
open_sqlite_store(uri)
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("sst2")
with mlflow.start_run():
    mlflow.log_param("a", 1)
"""


def test_runs_started_together_in_a_fresh_folder_share_the_new_store(tmp_path):
    """Four processes opening a new sqlite store at the same moment: without the lock 0-1 survived
    (alembic 'expected to match one row', 'duplicate column name')."""
    import time

    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("MLFLOW_RUN_ID", None)
    start = time.time() + 8  # after every interpreter has imported mlflow
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_LOG, uri, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[-800:] for o in outputs]
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("sst2")
    assert len(client.search_runs([experiment.experiment_id])) == 4


def test_sqlite_store_in_a_missing_folder_is_one_line(tmp_path):
    from gated_bert.errors import DataError
    from gated_bert.tracking.runs import open_sqlite_store

    with pytest.raises(DataError, match=r"does not exist\); fix it or set MLFLOW_TRACKING_URI"):
        open_sqlite_store(f"sqlite:///{tmp_path}/no/such/mlflow.db")
    assert list(tmp_path.iterdir()) == []


def test_tracking_server_credentials_are_checked_in_one_line_before_tensorflow(monkeypatch):
    """A server that asks for credentials (401) or refuses them: one line naming what to set."""
    import http.server
    import threading

    from gated_bert import stores

    class Server(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            import base64

            given = self.headers.get("Authorization", "").removeprefix("Basic ")
            user = base64.b64decode(given).decode() if given else None
            statuses = {"u:right": 200, "u:no-permission": 403}
            status = 200 if self.path == "/health" else statuses.get(user, 401)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        assert "asks for credentials (HTTP 401)" in stores.credentials_problem(url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "u")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-secret")
        problem = stores.credentials_problem(url)
        assert "refused user 'u' (HTTP 401" in problem and "hunter2" not in problem
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "no-permission")
        assert "may not read experiments (HTTP 403)" in stores.credentials_problem(url)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "right")
        assert stores.credentials_problem(url) is None
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-secret")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        done = subprocess.run(
            [sys.executable, "-m", "gated_bert.cli", "train", "--task", "sst2"],
            capture_output=True,
            text=True,
            env=dict(os.environ),
        )
        assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
        assert done.stderr.startswith("Error: MLflow tracking server") and "HTTP 401" in done.stderr
    finally:
        server.shutdown()


@pytest.mark.parametrize("refusals", [1, 3, 4])
def test_an_experiment_refused_for_a_moment_is_tried_again(monkeypatch, refusals):
    """MLflow's auth app grants an experiment's creator its permission just after creating it, so
    a second worker of the same user can be refused (HTTP 403) for a moment: the run tries again
    (3 times) and names the refusal in one line only when it stays."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, PERMISSION_DENIED

    from gated_bert.errors import DataError
    from gated_bert.tracking import runs

    calls, waits = [], []

    def set_experiment(name):
        calls.append(name)
        if len(calls) <= refusals:
            raise MlflowException("Permission denied", error_code=PERMISSION_DENIED)
        return "experiment"

    monkeypatch.setattr(mlflow, "set_experiment", set_experiment)
    monkeypatch.setattr(runs.time, "sleep", waits.append)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "worker")
    if refusals <= len(runs.REFUSAL_RETRY_SECONDS):
        runs._set_experiment("sst2")
        assert calls == ["sst2"] * (refusals + 1)
        assert waits == list(runs.REFUSAL_RETRY_SECONDS[:refusals])
    else:
        with pytest.raises(DataError, match="experiment 'sst2': the tracking server does not let 'worker'"):
            runs._set_experiment("sst2")
        assert len(calls) == 4 and waits == list(runs.REFUSAL_RETRY_SECONDS)
    monkeypatch.setattr(
        mlflow,
        "set_experiment",
        lambda name: (_ for _ in ()).throw(MlflowException("boom", error_code=INTERNAL_ERROR)),
    )
    with pytest.raises(MlflowException, match="boom"):  # not a refusal: raised as it is, untried
        runs._set_experiment("sst2")
