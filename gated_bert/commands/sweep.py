"""`gated-bert sweep`: an Optuna search whose trials are nested MLflow runs."""

from __future__ import annotations

import click

from gated_bert import stores
from gated_bert.config import GatedBertConfig
from gated_bert.options import build_config, field_options
from gated_bert.sweep.runner import SWEEP_CONFIG_DEFAULTS, SweepSettings

SETTINGS_FIELDS = tuple(f for f in SweepSettings.__dataclass_fields__ if f != "seed")


@click.command()
@field_options(SweepSettings, skip=("seed",))
@field_options(GatedBertConfig, defaults=SWEEP_CONFIG_DEFAULTS)
def sweep(**values):
    """Optuna search over SPT and schedule settings; trials are nested MLflow runs."""
    config = build_config(values)
    settings = SweepSettings(**{name: values[name] for name in SETTINGS_FIELDS}, seed=config.seed)
    stores.check_environment_tracking_server()  # before TensorFlow loads: one line, in seconds
    from gated_bert.quiet_start import import_tensorflow_quietly

    import_tensorflow_quietly()
    import optuna

    from gated_bert.run import configure_logging
    from gated_bert.sweep.runner import run_sweep

    configure_logging(config.verbose)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = run_sweep(config, settings)
    click.echo(
        f"sweep run {result.parent_run_id}: study {result.study_name} in {result.storage}; "
        f"trials {result.states}; best value {result.best_value} with {result.best_params}"
    )


@click.command("sweep-report")
@click.option(
    "--study-name",
    default=SweepSettings.__dataclass_fields__["study_name"].default,
    show_default=True,
    help="The study whose parent run to refresh.",
)
@click.option(
    "--storage",
    default=None,
    help="Its Optuna storage (default: $GATED_BERT_STORAGE, else the sweep's default journal file).",
)
def sweep_report(study_name, storage):
    """Refresh a sweep's MLflow parent run: best value and params, trials CSV, Optuna plots."""
    import optuna

    from gated_bert.run import configure_logging
    from gated_bert.sweep.runner import refresh_report

    configure_logging(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parent_run_id, (best_value, best_params, states) = refresh_report(study_name, storage)
    click.echo(
        f"sweep run {parent_run_id}: study {study_name}; trials {states}; "
        f"best value {best_value} with {best_params}"
    )
