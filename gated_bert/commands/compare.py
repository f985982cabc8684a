"""`gated-bert compare` (and plot_comparison.py): plot and tabulate finished runs."""

from __future__ import annotations

from pathlib import Path

import click

from gated_bert.errors import DataError


def _curves(results_dirs, root, task, experiment, parent_run_id, run_ids):
    from gated_bert import compare as comparison

    sources = [bool(results_dirs) or root is not None, experiment, parent_run_id, run_ids]
    if sum(bool(s) for s in sources) > 1:
        raise DataError("give one source: results folders/--root, --experiment, --parent-run-id or --run-id")
    if experiment or parent_run_id:
        from gated_bert import tracking

        ids = tracking.experiment_run_ids(experiment) if experiment else tracking.child_run_ids(parent_run_id)
        return comparison.curves_from_mlflow(ids)
    if run_ids:
        return comparison.curves_from_mlflow(list(run_ids))
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
@click.option("--parent-run-id", default=None, help="MLflow parent run: compare its child runs.")
@click.option("--run-id", "run_ids", multiple=True, help="MLflow run id (repeatable).")
@click.option("--output-dir", default=".", show_default=True, help="Where the plot and table go.")
def compare(results_dirs, root, task, experiment, parent_run_id, run_ids, output_dir):
    """Plot dev metric and sparsity per epoch for several methods, and tabulate them."""
    from gated_bert import compare as comparison

    curves = _curves(results_dirs, root, task, experiment, parent_run_id, run_ids)
    plot, table_path, table = comparison.compare(curves, Path(output_dir))
    click.echo(table.to_string(index=False))
    click.echo(f"wrote {plot} and {table_path}")
