"""Shared fixtures: the real GLUE folder, tiny configs and generated GLUE files."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest


def pytest_configure(config):
    """Ctrl-C tests need SIGINT to interrupt: a suite started in the background by a shell without
    job control inherits SIGINT ignored (and so would every process it starts)."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def real_glue_dir() -> Path | None:
    for candidate in (
        os.environ.get("GLUE_DIR"),
        REPO.parent / "shared" / "glue",
        REPO / ".." / "shared" / "glue",
    ):
        if candidate and (Path(candidate) / "SST-2" / "train.tsv").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    path = real_glue_dir()
    if path is None:
        pytest.skip("real GLUE data not found: set GLUE_DIR or put it at ../shared/glue")
    return path


def _tree_status() -> str | None:
    """`git status` of the checkout, ignored files included (None outside a git checkout)."""
    import subprocess

    done = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return None
    skip = (".venv/", ".pytest_cache/", ".ruff_cache/", "__pycache__/", ".egg-info/")
    return "\n".join(line for line in done.stdout.splitlines() if not any(s in line for s in skip))


@pytest.fixture(scope="session", autouse=True)
def _working_tree_unchanged():
    """Tests write only under their temporary folders: the checkout is the same after the suite."""
    before = _tree_status()
    yield
    after = _tree_status()
    if before is not None:
        assert after == before, f"the test suite changed the working tree:\n{after}"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, tmp_path, monkeypatch):
    # Every test runs in its own folder: relative outputs (results_*, mlflow.db, mlruns) land there,
    # and the working tree is unchanged after the suite.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATED_BERT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    for name in ("BENCHMARK_EPOCHS", "VERBOSE", "GLUE_DIR", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    # In-process command-line calls install `interrupts.interrupt_once`, which disarms itself on
    # the first signal (a command-line process then exits); the next test starts from the same
    # handlers as this one.
    saved = {each: signal.getsignal(each) for each in (signal.SIGINT, signal.SIGTERM)}
    yield
    for each, handler in saved.items():
        signal.signal(each, handler)


@pytest.fixture(autouse=True)
def _tracking_uri_restored():
    # `mlflow.set_tracking_uri` outlives the test that called it and outranks MLFLOW_TRACKING_URI:
    # without this, a later test's store (from its environment) would be ignored.
    import mlflow

    saved = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    mlflow.set_tracking_uri(None)
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A sqlite MLflow store in the test's folder, for this process and its children; the folder."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return tmp_path


def micro_config(**overrides):
    """A config small enough to train in seconds (2 layers, hidden 16)."""
    from gated_bert.config import GatedBertConfig

    values = dict(
        model_size="tiny",
        num_layers=2,
        d_model=16,
        num_heads=2,
        dff=32,
        vocab_size=300,
        max_len=32,
        task="sst2",
        epochs=2,
        batch_size=16,
        learning_rate=1e-3,
        verbose=0,
        pruning_method="none",
    )
    values.update(overrides)
    return GatedBertConfig(**values)


WORDS_POS = ["good", "great", "fine", "lovely", "superb"]
WORDS_NEG = ["bad", "awful", "poor", "dull", "terrible"]
FILLER = ["the", "movie", "was", "a", "plot", "story", "and", "very", "quite", "film"]


def synthetic_sentence(rng: random.Random, label: int) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
    words.insert(rng.randrange(len(words) + 1), rng.choice(WORDS_POS if label else WORDS_NEG))
    return " ".join(words)


def write_sst2(root: Path, n_train: int = 320, n_dev: int = 64, seed: int = 0) -> Path:
    """A learnable SST-2-layout folder: label 1 iff a positive word occurs."""
    rng = random.Random(seed)
    folder = root / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        rows = ["sentence\tlabel"]
        for i in range(n):
            label = i % 2
            rows.append(f"{synthetic_sentence(rng, label)}\t{label}")
        (folder / name).write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def sst2_dir(tmp_path) -> Path:
    return write_sst2(tmp_path / "glue")


def assert_png(path: Path, min_width: int = 300, min_height: int = 200) -> None:
    """`path` is a real plot: a PNG of at least this size that is not a blank canvas."""
    from matplotlib.image import imread

    assert path.is_file(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = imread(path)
    assert pixels.shape[0] >= min_height and pixels.shape[1] >= min_width, pixels.shape
    assert pixels[..., :3].std() > 0.05, "the image is blank"


# A model small enough to train in seconds, as command-line flags (2 layers x hidden 16 in micro_config).
MICRO_FLAGS = [
    "--model-size",
    "tiny",
    "--num-layers",
    "1",
    "--d-model",
    "16",
    "--num-heads",
    "2",
    "--dff",
    "32",
]


def cli_env(tracking_uri: str) -> dict[str, str]:
    """Environment of a gated-bert subprocess: its own tracking store, quiet TF, no inherited run."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, TF_CPP_MIN_LOG_LEVEL="3")
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)  # mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID
    return env
