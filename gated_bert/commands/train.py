"""`gated-bert train`: one training run (one MLflow run)."""

from __future__ import annotations

from pathlib import Path

import click

from gated_bert import stores
from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError
from gated_bert.options import NONE_WORDS, build_config, config_options


def _config_from_file(path: str) -> GatedBertConfig:
    try:
        return GatedBertConfig.from_json(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"cannot read --config-file {path!r}: {err.strerror}") from None


def _given(ctx: click.Context, values: dict, defaults_spelled_out: bool) -> dict:
    """Options typed on the command line; where every option is spelled out (MLproject), those
    that differ from their defaults."""
    source = click.core.ParameterSource.COMMANDLINE
    given = {k: v for k, v in values.items() if ctx.get_parameter_source(k) == source}
    if defaults_spelled_out:
        defaults = {p.name: p.type_cast_value(ctx, p.get_default(ctx)) for p in ctx.command.params}
        given = {k: v for k, v in given.items() if v != defaults[k]}
    return given


def _run_id_or_none(ctx, param, value):
    return None if value is None or value.strip().lower() in NONE_WORDS else value.strip()


@click.command()
@config_options
@click.option(
    "--resume",
    default=None,
    metavar="RUN_ID",
    callback=_run_id_or_none,
    help="Continue this interrupted run from its last completed epoch (config and paths come from the run).",
)
@click.option("--defaults-spelled-out", is_flag=True, hidden=True, help="Set by the MLproject.")
@click.option("--config-file", default=None, hidden=True, help="Config JSON (experiments jobs).")
@click.option("--parent-run-id", default=None, hidden=True, help="MLflow parent run (set by experiments).")
@click.option("--experiment-id", default=None, hidden=True, help="MLflow experiment of the parent run.")
@click.option("--progress-file", default=None, hidden=True, help="Write live progress JSON here.")
@click.pass_context
def train(  # noqa: PLR0913 (click passes every option)
    ctx, resume, defaults_spelled_out, config_file, parent_run_id, experiment_id, progress_file, **values
):
    """Train one model (one MLflow run) with the given settings."""
    from gated_bert.quiet_start import import_tensorflow_quietly

    stores.check_environment_tracking_server()  # before TensorFlow loads: one line, in seconds
    import_tensorflow_quietly()
    from gated_bert.run import configure_logging
    from gated_bert.run import train as run_training

    if resume:
        from gated_bert.resume import resumption_config

        config, resumption = resumption_config(resume, _given(ctx, values, defaults_spelled_out))
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
