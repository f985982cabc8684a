"""`gated-bert compare` (and plot_comparison.py): plot and tabulate finished runs."""

from __future__ import annotations

from pathlib import Path

import click

from gated_bert.errors import DataError


def _check_one_source(results_dirs, root, experiment, parent_run_ids, run_ids) -> None:
    sources = [bool(results_dirs) or root is not None, experiment, parent_run_ids, run_ids]
    if sum(bool(s) for s in sources) > 1:
        raise DataError("give one source: results folders/--root, --experiment, --parent-run-id or --run-id")


def _mlflow_run_ids(experiment, parent_run_ids, run_ids) -> list[str]:
    """The runs an MLflow source names: an experiment's training runs, the children of each
    parent run, or the ids given."""
    from gated_bert import tracking

    if experiment:
        return tracking.experiment_run_ids(experiment)
    if parent_run_ids:
        return [i for parent in parent_run_ids for i in tracking.child_run_ids(parent)]
    return list(run_ids)


def _curves(results_dirs, root, task, experiment, parent_run_ids, run_ids):
    from gated_bert import compare as comparison

    if experiment or parent_run_ids or run_ids:
        return comparison.curves_from_mlflow(_mlflow_run_ids(experiment, parent_run_ids, run_ids))
    folders = [Path(d) for d in results_dirs] or comparison.find_results_dirs(Path(root or "."), task)
    for folder in folders:
        if not folder.is_dir():
            raise DataError(f"results folder {str(folder)!r} does not exist")
    return comparison.curves_from_results(folders)


@click.command()
@click.argument("results_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--root", default=None, help="Compare every results_{method}_{task} folder under this folder.")
@click.option("--task", default=None, help="With --root: only this task's folders.")
@click.option("--experiment", default=None, help="MLflow experiment: compare its training runs.")
@click.option(
    "--parent-run-id",
    "parent_run_ids",
    multiple=True,
    help="MLflow parent run: compare its child runs (repeatable).",
)
@click.option("--run-id", "run_ids", multiple=True, help="MLflow run id (repeatable).")
@click.option(
    "--grid",
    is_flag=True,
    help="MLflow runs only: the grid comparison of `gated-bert experiments` (mean +- std over seeds per "
    "method, teacher and end sparsity, paired differences to random, metric against weights remaining), "
    "e.g. of several parent runs that together hold the seeds; unfinished runs are left out.",
)
@click.option("--output-dir", default=".", show_default=True, help="Where the plot and table go.")
def compare(results_dirs, root, task, experiment, parent_run_ids, run_ids, grid, output_dir):
    """Plot dev metric and sparsity per epoch for several methods, and tabulate them."""
    from gated_bert import compare as comparison

    _check_one_source(results_dirs, root, experiment, parent_run_ids, run_ids)
    if grid:
        plot, table_path, table = _grid(experiment, parent_run_ids, run_ids, Path(output_dir))
    else:
        curves = _curves(results_dirs, root, task, experiment, parent_run_ids, run_ids)
        plot, table_path, table = comparison.compare(curves, Path(output_dir))
    click.echo(table.to_string(index=False))
    click.echo(f"wrote {plot} and {table_path}")


def _grid(experiment, parent_run_ids, run_ids, output_dir: Path):
    from gated_bert import grid_compare

    if not (experiment or parent_run_ids or run_ids):
        raise DataError("--grid compares MLflow runs: give --experiment, --parent-run-id or --run-id")
    return grid_compare.compare_grid(_mlflow_run_ids(experiment, parent_run_ids, run_ids), output_dir)
