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


def _given(ctx: click.Context, values: dict) -> dict:
    """Options typed on the command line (not defaults)."""
    source = click.core.ParameterSource.COMMANDLINE
    return {k: v for k, v in values.items() if ctx.get_parameter_source(k) == source}


@click.command()
@config_options
@click.option(
    "--resume",
    default=None,
    metavar="RUN_ID",
    help="Continue this interrupted run from its last completed epoch (config and paths come from the run).",
)
@click.option("--config-file", default=None, hidden=True, help="Config JSON (experiments jobs).")
@click.option("--parent-run-id", default=None, hidden=True, help="MLflow parent run (set by experiments).")
@click.option("--experiment-id", default=None, hidden=True, help="MLflow experiment of the parent run.")
@click.option("--progress-file", default=None, hidden=True, help="Write live progress JSON here.")
@click.pass_context
def train(ctx, resume, config_file, parent_run_id, experiment_id, progress_file, **values):
    """Train one model (one MLflow run) with the given settings."""
    from gated_bert.run import configure_logging
    from gated_bert.run import train as run_training

    if resume:
        from gated_bert.resume import resumption_config

        config, resumption = resumption_config(resume, _given(ctx, values))
        configure_logging(config.verbose)
        result = run_training(config, resume=resumption)
    else:
        config = _config_from_file(config_file) if config_file else build_config(values)
        configure_logging(config.verbose)
        result = run_training(
            config, parent_run_id=parent_run_id, experiment_id=experiment_id, progress_file=progress_file
        )
    finals = ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.final.items()))
    click.echo(f"run {result.run_id}: {finals}; results in {result.results_dir}")
