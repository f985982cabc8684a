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


def log_model(model_path: Path, tokenizer_path: Path, config_path: Path, config: GatedBertConfig):
    """Log the model under `model/` of the active run, with an explicit signature and an input
    example; registered as `config.register_model` if set."""
    task = TASKS[config.task]
    inputs = Schema([ColSpec("string", c) for c in inference.input_columns(task)])
    outputs = Schema([ColSpec(kind, name) for name, kind in inference.output_columns(task)])
    package_dir = Path(gated_bert.__file__).parent
    with _quiet_model_logging():
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=GatedBertPyfunc(),
            artifacts={
                "model": str(model_path),
                "tokenizer": str(tokenizer_path),
                "config": str(config_path),
            },
            code_paths=[str(package_dir)],
            pip_requirements=REQUIREMENTS,
            signature=ModelSignature(inputs=inputs, outputs=outputs),
            input_example=inference.example_input(task),
            registered_model_name=config.register_model,
        )
