"""The `gated-bert` command line: parse, build the config, call the library.

Every option of `train` is a field of GatedBertConfig with the same name.
Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
import warnings

import click

from gated_bert.config import GatedBertConfig, apply_environment, field_help
from gated_bert.errors import GatedBertError

NONE_WORDS = ("", "none", "auto", "null")


class OptionalParam(click.ParamType):
    """int/float/str that also accepts '', 'auto' or 'none' for "not given"."""

    def __init__(self, inner: type):
        self.inner = inner
        self.name = f"{inner.__name__}|auto"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS):
            return None
        if isinstance(value, self.inner):
            return value
        try:
            return self.inner(value)
        except ValueError:
            self.fail(f"{value!r} is not a valid {self.inner.__name__} (or 'auto')", param, ctx)


class StepsParam(click.ParamType):
    """Sparsity steps in percent: '10 25 50', '10,25,50' or 'auto'."""

    name = "steps|auto"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, tuple):
            return value
        text = str(value).strip()
        if text.lower() in NONE_WORDS:
            return None
        try:
            return tuple(float(v) for v in text.replace(",", " ").split())
        except ValueError:
            self.fail(f"{value!r} is not a list of numbers like '10 25 50 90' (or 'auto')", param, ctx)


def _click_type(annotation: str):
    hint = typing.get_type_hints(GatedBertConfig)[annotation]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint)
    if typing.get_origin(base) is tuple:
        return StepsParam()
    if base is bool:
        return click.BOOL
    if optional:
        return OptionalParam(base)
    return {int: click.INT, float: click.FLOAT, str: click.STRING}[base]


def config_options(func):
    """One `--field-name VALUE` option per GatedBertConfig field."""
    helps = field_help()
    for f in reversed(dataclasses.fields(GatedBertConfig)):
        default = f.default
        func = click.option(
            f"--{f.name.replace('_', '-')}",
            f.name,
            type=_click_type(f.name),
            default=default,
            show_default=True if default is not None else "auto",
            help=helps[f.name],
        )(func)
    return func


def build_config(values: dict) -> GatedBertConfig:
    """Config from option values, after BENCHMARK_EPOCHS / VERBOSE / GLUE_DIR."""
    fields = {f.name for f in dataclasses.fields(GatedBertConfig)}
    return GatedBertConfig(**apply_environment({k: v for k, v in values.items() if k in fields}))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="gated-bert")
def cli():
    """Train and prune gated BERT-style encoders on GLUE, tracked in MLflow."""


@cli.command()
@config_options
def train(**values):
    """Train one model (one MLflow run) with the given settings."""
    config = build_config(values)
    from gated_bert.run import train as run_training

    result = run_training(config)
    click.echo(
        "run " + result.run_id + ": "
        + ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.final.items()))
        + f"; results in {result.results_dir}"
    )


@cli.command()
@click.option("--n-trials", type=int, default=10, show_default=True, help="Trials in total, across all workers.")
@click.option("--n-jobs", type=int, default=1, show_default=True, help="Parallel worker processes.")
@click.option("--study-name", default="gated-bert-sweep", show_default=True,
              help="Optuna study; re-using a name continues that study.")
@click.option("--storage", type=OptionalParam(str), default=None, show_default="auto",
              help="Optuna storage URL (e.g. postgresql://...) or journal file "
                   "(default: optuna_journal.log next to the MLflow store).")
@click.option("--sampler", default="tpe", show_default=True, help="tpe or random.")
@click.option("--pruner", default="median", show_default=True, help="median, hyperband or none.")
@click.option("--timeout", type=OptionalParam(float), default=None, show_default="auto",
              help="Stop starting new trials after this many seconds (per worker).")
@click.option("--search-space", type=OptionalParam(str), default=None, show_default="auto",
              help="YAML/JSON file that narrows or replaces the default search space.")
@config_options
def sweep(n_trials, n_jobs, study_name, storage, sampler, pruner, timeout, search_space, **values):
    """Optuna search over SPT and schedule settings; trials are nested MLflow runs."""
    config = build_config(values)
    from gated_bert.sweep.runner import SweepSettings, run_sweep

    settings = SweepSettings(
        n_trials=n_trials, n_jobs=n_jobs, study_name=study_name, storage=storage, sampler=sampler,
        pruner=pruner, timeout=timeout, seed=config.seed, search_space=search_space,
    )
    from gated_bert.run import configure_logging

    configure_logging(config.verbose)
    result = run_sweep(config, settings)
    click.echo(
        f"sweep run {result.parent_run_id}: study {result.study_name} in {result.storage}; "
        f"trials {result.states}; best value {result.best_value} with {result.best_params}"
    )


def _one_line_warnings() -> None:
    warnings.showwarning = lambda message, category, *args, **kwargs: click.echo(
        f"Warning: {message}", err=True
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for bad input."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _one_line_warnings()
    try:
        cli.main(args=argv, prog_name="gated-bert", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help())
        sys.exit(0)
    except click.UsageError as err:
        where = err.ctx.command_path if err.ctx else "gated-bert"
        click.echo(f"Error: {' '.join(err.format_message().split())} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as err:
        click.echo(f"Error: {' '.join(err.format_message().split())}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except GatedBertError as err:
        click.echo(f"Error: {' '.join(str(err).split())}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as err:
        from gated_bert.training.callbacks import TrainingDivergedError

        if isinstance(err, TrainingDivergedError):
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
