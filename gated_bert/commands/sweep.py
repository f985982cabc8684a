"""`gated-bert sweep`: an Optuna search whose trials are nested MLflow runs."""

from __future__ import annotations

import click

from gated_bert.options import build_config, config_options, field_options
from gated_bert.sweep.runner import SweepSettings

SETTINGS_FIELDS = tuple(f for f in SweepSettings.__dataclass_fields__ if f != "seed")


@click.command()
@field_options(SweepSettings, skip=("seed",))
@config_options
def sweep(**values):
    """Optuna search over SPT and schedule settings; trials are nested MLflow runs."""
    config = build_config(values)
    settings = SweepSettings(**{name: values[name] for name in SETTINGS_FIELDS}, seed=config.seed)
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
