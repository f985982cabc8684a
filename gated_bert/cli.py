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
@click.option("--parent-run-id", default=None, hidden=True, help="MLflow parent run (set by experiments).")
@click.option("--experiment-id", default=None, hidden=True, help="MLflow experiment of the parent run.")
@click.option("--progress-file", default=None, hidden=True, help="Write live progress JSON here.")
def train(parent_run_id, experiment_id, progress_file, **values):
    """Train one model (one MLflow run) with the given settings."""
    config = build_config(values)
    from gated_bert.run import train as run_training

    result = run_training(
        config, parent_run_id=parent_run_id, experiment_id=experiment_id, progress_file=progress_file
    )
    click.echo(
        "run "
        + result.run_id
        + ": "
        + ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.final.items()))
        + f"; results in {result.results_dir}"
    )


@cli.command()
@click.option(
    "--n-trials", type=int, default=10, show_default=True, help="Trials in total, across all workers."
)
@click.option("--n-jobs", type=int, default=1, show_default=True, help="Parallel worker processes.")
@click.option(
    "--study-name",
    default="gated-bert-sweep",
    show_default=True,
    help="Optuna study; re-using a name continues that study.",
)
@click.option(
    "--storage",
    type=OptionalParam(str),
    default=None,
    show_default="auto",
    help="Optuna storage URL (e.g. postgresql://...) or journal file "
    "(default: optuna_journal.log next to the MLflow store).",
)
@click.option("--sampler", default="tpe", show_default=True, help="tpe or random.")
@click.option("--pruner", default="median", show_default=True, help="median, hyperband or none.")
@click.option(
    "--timeout",
    type=OptionalParam(float),
    default=None,
    show_default="auto",
    help="Stop starting new trials after this many seconds (per worker).",
)
@click.option(
    "--search-space",
    type=OptionalParam(str),
    default=None,
    show_default="auto",
    help="YAML/JSON file that narrows or replaces the default search space.",
)
@config_options
def sweep(n_trials, n_jobs, study_name, storage, sampler, pruner, timeout, search_space, **values):
    """Optuna search over SPT and schedule settings; trials are nested MLflow runs."""
    config = build_config(values)
    from gated_bert.sweep.runner import SweepSettings, run_sweep

    settings = SweepSettings(
        n_trials=n_trials,
        n_jobs=n_jobs,
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        timeout=timeout,
        seed=config.seed,
        search_space=search_space,
    )
    from gated_bert.run import configure_logging

    configure_logging(config.verbose)
    result = run_sweep(config, settings)
    click.echo(
        f"sweep run {result.parent_run_id}: study {result.study_name} in {result.storage}; "
        f"trials {result.states}; best value {result.best_value} with {result.best_params}"
    )


@cli.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--epochs", type=int, default=25, show_default=True, help="Training epochs.")
@click.option("-b", "--batch-size", type=int, default=96, show_default=True, help="Batch size.")
@click.option("-l", "--learning-rate", type=float, default=2e-5, show_default=True, help="Learning rate.")
@click.option("-m", "--model-size", default="base", show_default=True, help="tiny, small, base or large.")
@click.option(
    "-p",
    "--pruning-methods",
    default="magnitude,movement,spt,baseline",
    show_default=True,
    help="Comma-separated: baseline, magnitude, movement, spt.",
)
@click.option("-s", "--start-sparsity", type=float, default=0.0, show_default=True, help="Starting sparsity.")
@click.option("-f", "--end-sparsity", type=float, default=0.99, show_default=True, help="Final sparsity.")
@click.option(
    "-ps", "--pruning-start", type=int, default=4, show_default=True, help="Epoch to start pruning."
)
@click.option(
    "-pe",
    "--pruning-end",
    type=int,
    default=23,
    show_default=True,
    help="Epoch to reach the final sparsity (capped to the epochs).",
)
@click.option(
    "-ss",
    "--sparsity-steps",
    type=StepsParam(),
    default=None,
    show_default="auto",
    help="Space-separated sparsity steps in percent, e.g. '10 50 90', or auto.",
)
@click.option(
    "-se",
    "--spt-explore",
    type=click.Choice(["true", "false"], case_sensitive=False),
    default="false",
    show_default=True,
    help="SPT per-layer exploration.",
)
@click.option("-t", "--task", default="sst2", show_default=True, help="GLUE task.")
@click.option("-ml", "--max-len", type=int, default=128, show_default=True, help="Maximum sequence length.")
@click.option(
    "-parallel", "--parallel", "parallel", is_flag=True, help="Run the methods in parallel processes."
)
@click.option(
    "-max-parallel-jobs",
    "--max-parallel-jobs",
    "max_parallel_jobs",
    type=int,
    default=None,
    show_default="all methods",
    help="At most this many jobs at once (with -parallel).",
)
@click.option(
    "--data-dir",
    type=OptionalParam(str),
    default=None,
    show_default="auto",
    help="Local GLUE folder (default: env GLUE_DIR, else the hub).",
)
@click.option(
    "--max-train-samples",
    type=OptionalParam(int),
    default=None,
    show_default="all",
    help="Use only the first N training examples.",
)
@click.option(
    "--output-mode",
    type=click.Choice(["bars", "logs", "both"]),
    default=None,
    show_default="ask on a terminal, else bars",
    help="Live view of the jobs.",
)
@click.option("--output-root", default=".", show_default=True, help="Where results_*, logs and plots go.")
def experiments(
    epochs,
    batch_size,
    learning_rate,
    model_size,
    pruning_methods,
    start_sparsity,
    end_sparsity,
    pruning_start,
    pruning_end,
    sparsity_steps,
    spt_explore,
    task,
    max_len,
    parallel,
    max_parallel_jobs,
    data_dir,
    max_train_samples,
    output_mode,
    output_root,
):
    """Run several pruning methods with shared settings and compare them."""
    from gated_bert.experiments.plan import describe, make_plan

    values = apply_environment(
        dict(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            model_size=model_size,
            start_sparsity=start_sparsity,
            end_sparsity=end_sparsity,
            pruning_start_epoch=pruning_start,
            pruning_end_epoch=pruning_end,
            sparsity_steps=sparsity_steps,
            spt_explore_per_layer=spt_explore == "true",
            task=task,
            max_len=max_len,
            data_dir=data_dir,
            max_train_samples=max_train_samples,
            output_root=output_root,
        )
    )
    plan = make_plan(values, pruning_methods, parallel, max_parallel_jobs, output_mode)
    for line in describe(plan):
        click.echo(line)
    terminal = sys.stdout.isatty() and sys.stdin.isatty()
    mode = plan.output_mode
    if mode is None:
        if terminal:
            choice = click.prompt(
                "Output mode: 1) progress bars  2) real-time logs  3) both",
                type=click.Choice(["1", "2", "3"]),
                default="1",
            )
            mode = {"1": "bars", "2": "logs", "3": "both"}[choice]
        else:
            mode = "bars"
    from gated_bert.experiments.runner import run_experiments

    result = run_experiments(plan, mode, terminal)
    if result.table is not None:
        click.echo(result.table.to_string(index=False))
        click.echo(f"comparison plot: {result.comparison_plot}; table: {result.comparison_table}")
    click.echo(f"parent MLflow run {result.parent_run_id}; wall time {result.wall_seconds:.1f} s")
    if result.failed:
        click.echo(f"Error: job(s) failed: {', '.join(result.failed)}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("results_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--root", default=None, help="Compare every results_{method}_{task} folder under this folder.")
@click.option("--task", default=None, help="With --root: only this task's folders.")
@click.option("--experiment", default=None, help="MLflow experiment: compare its training runs.")
@click.option("--parent-run-id", default=None, help="MLflow parent run: compare its child runs.")
@click.option("--run-id", "run_ids", multiple=True, help="MLflow run id (repeatable).")
@click.option("--output-dir", default=".", show_default=True, help="Where the plot and table go.")
def compare(results_dirs, root, task, experiment, parent_run_id, run_ids, output_dir):
    """Plot dev metric and sparsity per epoch for several methods, and tabulate them."""
    from pathlib import Path

    from gated_bert import compare as comparison
    from gated_bert.errors import DataError

    sources = [
        bool(results_dirs) or root is not None,
        experiment is not None,
        parent_run_id is not None,
        bool(run_ids),
    ]
    if sum(sources) > 1:
        raise DataError("give one source: results folders/--root, --experiment, --parent-run-id or --run-id")
    if experiment:
        curves = comparison.curves_from_mlflow(comparison.experiment_run_ids(experiment))
    elif parent_run_id:
        curves = comparison.curves_from_mlflow(comparison.child_run_ids(parent_run_id))
    elif run_ids:
        curves = comparison.curves_from_mlflow(list(run_ids))
    else:
        folders = [Path(d) for d in results_dirs] or comparison.find_results_dirs(Path(root or "."), task)
        for folder in folders:
            if not folder.is_dir():
                raise DataError(f"results folder {str(folder)!r} does not exist")
        curves = comparison.curves_from_results(folders)
    plot, table_path, table = comparison.compare(curves, Path(output_dir))
    click.echo(table.to_string(index=False))
    click.echo(f"wrote {plot} and {table_path}")


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
