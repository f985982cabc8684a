"""`train(config)`: one tracked training run, from data to MLflow model.

The CLI, the MLproject entry point, sweeps and tests all call this.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gated_bert.config import GatedBertConfig

log = logging.getLogger("gated_bert")


@dataclass
class RunResult:
    rows: list[dict[str, float]]
    run_id: str
    results_dir: Path
    final: dict[str, float]


def configure_logging(verbose: int) -> None:
    level = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}[verbose]
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=level)
    log.setLevel(level)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "mlflow", "tokenizers", "numpy", "gated-bert"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


def train(
    config: GatedBertConfig,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, str] | None = None,
    on_epoch_end=None,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    finished_on: tuple = (),
    progress_file: Path | None = None,
) -> RunResult:
    """Train, evaluate each epoch, write results and log everything to MLflow.

    Bad input (config, data) raises a GatedBertError before any file or run
    is created.

    Args:
        config: the run's configuration.
        run_name: MLflow run name (default: method_task).
        nested: start the run nested under the active run (sweeps, experiments).
        tags: extra MLflow tags.
        on_epoch_end: optional `fn(row)` after each epoch (e.g. Optuna reporting).
        parent_run_id: make the run a child of this run (from another process).
        experiment_id: the parent's experiment.
        finished_on: exceptions that end the run FINISHED (a pruned trial).
        progress_file: live progress JSON for a parent process (experiments).
    """
    configure_logging(config.verbose)
    from gated_bert.data.glue import load_task

    started = time.time()
    full_data = load_task(config.task, config.data_dir)  # data errors surface before any output
    from gated_bert import reporting, tracking
    from gated_bert.training.fit import fit, prepare_data

    prepared = prepare_data(config, full_data)
    task = prepared.task
    data_seconds = time.time() - started
    log.info(
        "%s: %d train / %s eval examples from %s",
        task.name,
        len(prepared.train),
        {k: len(v) for k, v in prepared.evals.items()},
        prepared.data.source,
    )
    paths = reporting.RunPaths.for_config(config, datetime.now().strftime("%Y%m%d_%H%M%S_%f"))
    for directory in (paths.results_dir, paths.logs_dir):
        directory.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(paths.log_file)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(file_handler)
    all_tags = {"method": config.method_name, "task": task.name, "model_size": config.model_size}
    all_tags.update(tags or {})
    try:
        with tracking.start_run(
            config,
            run_name or f"{config.method_name}_{task.name}",
            nested,
            all_tags,
            parent_run_id=parent_run_id,
            experiment_id=experiment_id,
            finished_on=finished_on,
        ) as run:
            tracking.log_config(config)
            log.info("MLflow run %s; config %s", run.info.run_id, config.to_json().replace("\n", ""))

            def epoch_end(row):
                tracking.log_epoch(row)
                log.info(
                    "epoch %d: %s", row["epoch"], {k: round(v, 4) for k, v in row.items() if "/" not in k}
                )
                if on_epoch_end is not None:
                    on_epoch_end(row)

            fit_started = time.time()
            result = fit(
                config,
                prepared,
                on_epoch_end=epoch_end,
                checkpoint_dir=paths.checkpoints_dir,
                progress_file=progress_file,
            )
            fit_seconds = time.time() - fit_started
            rows = result.rows
            final = reporting.final_metrics(rows[-1])
            reporting.write_curves(rows, config, task.main_metric, paths)
            model_path, tokenizer_path, config_path = reporting.save_model(
                result.classifier, prepared.tokenizer, config, paths
            )
            metadata = {
                "config": config.resolved_dict(),
                "versions": _versions(),
                "data_source": prepared.data.source,
                "num_train_examples": len(prepared.train),
                "num_eval_examples": {k: len(v) for k, v in prepared.evals.items()},
                "tokenizer_vocab_size": prepared.tokenizer.get_vocab_size(),
                "timings": {"data_seconds": data_seconds, "fit_seconds": fit_seconds},
                "final_metrics": final,
                "main_metric": f"eval_{task.main_metric}",
                "mlflow_run_id": run.info.run_id,
            }
            reporting.write_metadata(paths.metadata, metadata)
            tracking.log_summary({**final, "fit_seconds": fit_seconds})
            tracking.log_artifacts(
                "results",
                [paths.csv, paths.metadata, paths.accuracy_plot, paths.loss_plot, paths.heatmap, config_path],
            )
            tracking.log_artifacts("tokenizer", [tokenizer_path])
            tracking.log_model(model_path, tokenizer_path, config_path, config)
            tracking.log_artifacts("logs", [paths.log_file])
            log.info("finished: %s; results in %s", final, paths.results_dir)
            return RunResult(rows, run.info.run_id, paths.results_dir, final)
    finally:
        log.removeHandler(file_handler)
        file_handler.close()
