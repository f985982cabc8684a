"""MLflow at the edge: runs, params, per-epoch metrics, artifacts and the model.

Nothing below this module imports mlflow. The tracking URI comes from
MLFLOW_TRACKING_URI, else MLflow's own default (the embedded sqlite store
`mlflow.db` in the working directory).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import threading
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

import gated_bert
from gated_bert.config import GatedBertConfig
from gated_bert.tasks import TASKS

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's advice for other model styles; our signature is given explicitly.
warnings.filterwarnings("ignore", message=".*An input example was not provided")
logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)

MODEL_NAME = "model"
_REQUIREMENTS = [
    "tensorflow==2.21.*",
    "keras==3.15.*",
    "tokenizers==0.23.*",
    "numpy",
    "pandas",
    "mlflow==3.17.2",
]


_interrupted = threading.Event()


def _on_interrupt(signum, frame):
    """SIGINT/SIGTERM: remember it, then interrupt as Python does by default.

    Libraries sometimes turn a KeyboardInterrupt raised inside them into their
    own error; the flag still lets the run end KILLED rather than FAILED.
    """
    _interrupted.set()
    raise KeyboardInterrupt


def _watch_interrupts() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) in (signal.default_int_handler, signal.SIG_DFL):
                signal.signal(signum, _on_interrupt)


@contextlib.contextmanager
def start_run(
    config: GatedBertConfig,
    run_name: str | None = None,
    nested: bool = False,
    tags=None,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    finished_on: tuple[type[BaseException], ...] = (),
):
    """An MLflow run that ends FINISHED, FAILED (error) or KILLED (Ctrl-C/SIGTERM).

    Under `mlflow run` (MLFLOW_RUN_ID set) the run that MLflow created is used,
    in the experiment given to `mlflow run` (--experiment-name). With
    `parent_run_id` (another process's run) the run is created as its child in
    `experiment_id`. Exceptions in `finished_on` (e.g. a pruned trial) end the
    run FINISHED and propagate.
    """
    tags = dict(tags or {})
    _watch_interrupts()
    before = mlflow.active_run()
    try:
        run = _open_run(config, run_name, nested, tags, parent_run_id, experiment_id)
        yield run
    except finished_on:
        _end_own_run(before, "FINISHED")
        raise
    except (KeyboardInterrupt, SystemExit):
        _end_own_run(before, "KILLED")
        raise
    except BaseException:
        _end_own_run(before, "KILLED" if _interrupted.is_set() else "FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def _open_run(config, run_name, nested, tags, parent_run_id, experiment_id):
    launched = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested and mlflow.active_run() is None
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
        active = mlflow.active_run()  # in-process parent (n_jobs=1 tests, notebooks)
        return mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, tags=tags, nested=active is not None
        )
    if launched:
        run = mlflow.start_run(tags=tags)
        if run_name:
            mlflow.set_tag("mlflow.runName", run_name)
        return run
    mlflow.set_experiment(config.effective_experiment_name)
    return mlflow.start_run(run_name=run_name, nested=nested, tags=tags)


def _end_own_run(before, status: str) -> None:
    """End the run this context started, even if it failed half-way through starting."""
    current = mlflow.active_run()
    if current is not None and (before is None or current.info.run_id != before.info.run_id):
        mlflow.end_run(status=status)


def log_params(params: dict) -> None:
    mlflow.log_params({k: "" if v is None else v for k, v in params.items()})


def child_runs(parent_run_id: str) -> list:
    """Runs whose parent is `parent_run_id`, oldest first."""
    parent = mlflow.get_run(parent_run_id)
    runs = mlflow.search_runs(
        [parent.info.experiment_id],
        output_format="list",
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
    )
    return sorted(runs, key=lambda r: r.info.start_time)


def kill_running_children(parent_run_id: str) -> None:
    """A child process killed hard cannot end its run: mark what is still RUNNING as KILLED."""
    client = mlflow.MlflowClient()
    for run in child_runs(parent_run_id):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="KILLED")


def tag_trial_run(experiment_id: str, tags: dict[str, str], state: str) -> None:
    """Tag the run of a trial (found by its study and trial tags) with its Optuna state."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = mlflow.search_runs([experiment_id], filter_string=query, output_format="list")
    for run in runs:
        mlflow.MlflowClient().set_tag(run.info.run_id, "optuna.trial_state", state)


def log_config(config: GatedBertConfig) -> None:
    """Log the resolved config as params.

    Params that `mlflow run` already logged from -P keep their raw value; where
    the resolved value differs (auto, capped, reformatted) it goes under
    `resolved.<name>`, since MLflow params cannot change.
    """
    existing = mlflow.active_run().data.params
    params = {}
    for key, value in config.resolved_dict().items():
        text = "" if value is None else json.dumps(value) if isinstance(value, list) else str(value)
        if key not in existing:
            params[key] = text
        elif existing[key] != text:
            params[f"resolved.{key}"] = text
    mlflow.log_params(params)


def log_epoch(row: dict[str, float]) -> None:
    metrics = {k: v for k, v in row.items() if k != "epoch" and math.isfinite(v)}
    mlflow.log_metrics(metrics, step=int(row["epoch"]))


def log_artifacts(directory: Path, files: list[Path]) -> None:
    for path in files:
        if Path(path).exists():
            mlflow.log_artifact(str(path), artifact_path=directory)


# MLflow warns at class creation that predict lacks type hints; our signature is explicit.
# (MLflow forces that warning on with its own filter, so it is recorded and dropped.)
with warnings.catch_warnings(record=True):

    class GatedBertPyfunc(mlflow.pyfunc.PythonModel):
        """Serves a trained classifier on text: DataFrame of text columns -> predictions.

        Input columns are the task's hub columns (e.g. `sentence`, or `sentence1`
        and `sentence2`). Output: class ids, or scores for stsb.
        """

        def load_context(self, context):
            import keras
            from tokenizers import Tokenizer

            from gated_bert.data.tokenizer import prepare
            from gated_bert.model import CUSTOM_OBJECTS

            self.config = GatedBertConfig.from_json(Path(context.artifacts["config"]).read_text())
            self.task = TASKS[self.config.task]
            self.classifier = keras.saving.load_model(
                context.artifacts["model"], custom_objects=CUSTOM_OBJECTS
            )
            self.tokenizer = prepare(Tokenizer.from_file(context.artifacts["tokenizer"]), self.config.max_len)

        def predict(self, context, model_input, params=None):
            from gated_bert.inference import predict_outputs
            from gated_bert.metrics import predictions_from_outputs

            frame = pd.DataFrame(model_input)
            col_a, col_b = self.task.hub_columns
            outputs = predict_outputs(
                self.classifier,
                self.tokenizer,
                frame[col_a].astype(str).tolist(),
                frame[col_b].astype(str).tolist() if col_b else None,
            )
            return predictions_from_outputs(self.task, outputs)


def log_model(model_path: Path, tokenizer_path: Path, config_path: Path, config: GatedBertConfig):
    task = TASKS[config.task]
    inputs = Schema([ColSpec("string", c) for c in task.hub_columns if c])
    outputs = Schema([ColSpec("double" if task.is_regression else "long")])
    package_dir = Path(gated_bert.__file__).parent
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=GatedBertPyfunc(),
        artifacts={"model": str(model_path), "tokenizer": str(tokenizer_path), "config": str(config_path)},
        code_paths=[str(package_dir)],
        pip_requirements=_REQUIREMENTS,
        signature=ModelSignature(inputs=inputs, outputs=outputs),
    )


def log_summary(values: dict[str, float]) -> None:
    """Run-level metrics (no step): final_* values and timings."""
    mlflow.log_metrics({k: v for k, v in values.items() if np.isfinite(v)})
