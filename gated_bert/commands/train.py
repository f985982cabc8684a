"""`gated-bert train`: one training run (one MLflow run)."""

from __future__ import annotations

from pathlib import Path

import click

from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError
from gated_bert.options import build_config, config_options


def _config_from_file(path: str) -> GatedBertConfig:
    try:
        return GatedBertConfig.from_json(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"cannot read --config-file {path!r}: {err.strerror}") from None


@click.command()
@config_options
@click.option("--config-file", default=None, hidden=True, help="Config JSON (experiments jobs).")
@click.option("--parent-run-id", default=None, hidden=True, help="MLflow parent run (set by experiments).")
@click.option("--experiment-id", default=None, hidden=True, help="MLflow experiment of the parent run.")
@click.option("--progress-file", default=None, hidden=True, help="Write live progress JSON here.")
def train(config_file, parent_run_id, experiment_id, progress_file, **values):
    """Train one model (one MLflow run) with the given settings."""
    config = _config_from_file(config_file) if config_file else build_config(values)
    from gated_bert.run import configure_logging
    from gated_bert.run import train as run_training

    configure_logging(config.verbose)
    result = run_training(
        config, parent_run_id=parent_run_id, experiment_id=experiment_id, progress_file=progress_file
    )
    finals = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.final.items()))
    click.echo(f"run {result.run_id}: {finals}; results in {result.results_dir}")
