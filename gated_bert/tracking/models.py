"""Logging a trained model (Keras file, tokenizer, config) as an MLflow pyfunc model."""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import mlflow
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

import gated_bert
from gated_bert import inference
from gated_bert.config import GatedBertConfig
from gated_bert.tasks import TASKS
from gated_bert.tracking.pyfunc import GatedBertPyfunc

MODEL_NAME = "model"
REQUIREMENTS = [
    "tensorflow==2.21.*",
    "keras==3.15.*",
    "tokenizers==0.23.*",
    "numpy",
    "pandas",
    "mlflow==3.17.2",
]


@contextlib.contextmanager
def _quiet_model_logging():
    """Silence MLflow's advice for other model styles while logging (restored after)."""
    logger = logging.getLogger("mlflow.pyfunc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*An input example was not provided")
            yield
    finally:
        logger.setLevel(level)


def _pyfunc_arguments(model_path: Path, tokenizer_path: Path, config_path: Path, config: GatedBertConfig):
    task = TASKS[config.task]
    inputs = Schema([ColSpec("string", c) for c in inference.input_columns(task)])
    outputs = Schema([ColSpec(kind, name) for name, kind in inference.output_columns(task)])
    return dict(
        python_model=GatedBertPyfunc(),
        artifacts={"model": str(model_path), "tokenizer": str(tokenizer_path), "config": str(config_path)},
        code_paths=[str(Path(gated_bert.__file__).parent)],
        pip_requirements=REQUIREMENTS,
        signature=ModelSignature(inputs=inputs, outputs=outputs),
        input_example=inference.example_input(task),
    )


def log_model(
    model_path: Path, tokenizer_path: Path, config_path: Path, config: GatedBertConfig, name: str = MODEL_NAME
):
    """Log the model under `name` of the active run, with an explicit signature and an input
    example; registered as `config.register_model` if set. `model_path` is a Keras file or a
    compact export's `.npz` (see `gated_bert.export`)."""
    arguments = _pyfunc_arguments(model_path, tokenizer_path, config_path, config)
    register = config.register_model if name == MODEL_NAME else None
    with _quiet_model_logging():
        return mlflow.pyfunc.log_model(name=name, registered_model_name=register, **arguments)


def save_model_dir(directory: Path, model_path: Path, tokenizer_path: Path, config_path: Path, config):
    """Write an MLflow pyfunc model directory (`mlflow.pyfunc.load_model(directory)`)."""
    arguments = _pyfunc_arguments(model_path, tokenizer_path, config_path, config)
    with _quiet_model_logging():
        mlflow.pyfunc.save_model(path=str(directory), **arguments)


def model_files(run_id: str, destination: Path) -> tuple[Path, Path, Path]:
    """Download run `run_id`'s logged model; (model.keras, tokenizer.json, config.json)."""
    from gated_bert.errors import DataError

    try:
        local = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{MODEL_NAME}", dst_path=str(destination))
    except mlflow.exceptions.MlflowException as err:
        raise DataError(
            f"run {run_id} has no logged model ({' '.join(str(err).split())[:160]}); export a FINISHED "
            "training run"
        ) from None
    found = {p.name: p for p in Path(local).rglob("*") if p.is_file()}
    missing = [n for n in ("model.keras", "tokenizer.json", "config.json") if n not in found]
    if missing:
        raise DataError(f"run {run_id}'s model lacks {missing}; it was not logged by gated-bert")
    return found["model.keras"], found["tokenizer.json"], found["config.json"]


@contextlib.contextmanager
def reopened_run(run_id: str):
    """Log more to an ended run; its status stays what it was."""
    status = mlflow.MlflowClient().get_run(run_id).info.status
    mlflow.start_run(run_id=run_id)
    try:
        yield
    finally:
        mlflow.end_run(status=status)


ALIASES = ("champion", "challenger")


def alias_best_versions(model_name: str, run_ids: list[str], metric: str) -> dict[str, str]:
    """Give the registered versions of `run_ids` the aliases champion (highest `metric`) and
    challenger (second); returns alias -> version."""
    client = mlflow.MlflowClient()
    versions = {v.run_id: v.version for v in client.search_model_versions(f"name = '{model_name}'")}
    scored = [
        (client.get_run(run_id).data.metrics.get(metric, float("-inf")), run_id)
        for run_id in run_ids
        if run_id in versions
    ]
    ranked = [run_id for _, run_id in sorted(scored, reverse=True)]
    out = {}
    for alias, run_id in zip(ALIASES, ranked):
        client.set_registered_model_alias(model_name, alias, versions[run_id])
        out[alias] = versions[run_id]
    return out
