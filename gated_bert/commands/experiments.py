"""`gated-bert experiments` (and run_experiments.sh): several methods side by side, compared."""

from __future__ import annotations

import sys

import click

from gated_bert import stores
from gated_bert.experiments.plan import DEFAULT_METHODS, OUTPUT_MODES
from gated_bert.options import experiment_options, experiment_values
from gated_bert.pruning.names import labels

MODE_CHOICES = {"1": "bars", "2": "logs", "3": "both"}


def _ask_mode(terminal: bool) -> str:
    """On a terminal ask how to show the jobs; otherwise progress bars."""
    if not terminal:
        return "bars"
    choice = click.prompt(
        "Output mode: 1) progress bars  2) real-time logs  3) both",
        type=click.Choice(list(MODE_CHOICES)),
        default="1",
    )
    return MODE_CHOICES[choice]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@experiment_options
@click.option(
    "-p",
    "--pruning-methods",
    default=",".join(DEFAULT_METHODS),
    show_default=True,
    help="Comma-separated: " + ", ".join(labels()) + ".",
)
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
    "--seeds",
    default=None,
    metavar="1,2,3",
    help="Run every method with each of these seeds (default: the one --seed).",
)
@click.option(
    "--end-sparsities",
    default=None,
    metavar="0.5,0.9,0.99",
    help="Run every pruning method at each of these end sparsities (wins over -f).",
)
@click.option(
    "--register-model",
    default=None,
    metavar="NAME",
    help="Register every method's model as a version of NAME in the MLflow Model Registry; the best "
    "final dev metric gets the alias champion, the second challenger.",
)
@click.option(
    "--teacher",
    default=None,
    metavar="RUN_ID|FOLDER|auto",
    help="Every pruning job distils from this teacher (a FINISHED run id or a saved model folder); "
    "auto: the dense baseline of each seed is trained first and is its seed's teacher.",
)
@click.option(
    "--undistilled-sparsities",
    default=None,
    metavar="0.9",
    help="With --teacher: every pruning method also runs at these end sparsities without the teacher "
    "(rows tagged distilled=false: what distillation buys).",
)
@click.option(
    "--teacher-train-samples",
    type=int,
    default=None,
    metavar="N",
    help="With --teacher auto: the dense teachers train on the first N examples (default: the "
    "students' --max-train-samples).",
)
@click.option(
    "--output-mode",
    type=click.Choice(list(OUTPUT_MODES)),
    default=None,
    show_default="ask on a terminal, else bars",
    help="Live view of the jobs.",
)
def experiments(  # noqa: PLR0913 (click passes every option)
    pruning_methods,
    parallel,
    max_parallel_jobs,
    seeds,
    end_sparsities,
    register_model,
    teacher,
    undistilled_sparsities,
    teacher_train_samples,
    output_mode,
    **values,
):
    """Run several pruning methods with shared settings and compare them."""
    from gated_bert.experiments.plan import describe, make_plan, parse_list
    from gated_bert.quiet_start import import_tensorflow_quietly

    stores.check_environment_tracking_server()  # before TensorFlow loads: one line, in seconds
    import_tensorflow_quietly()

    values = {**experiment_values(values), "register_model": register_model}
    grid = parse_list(seeds, int, "--seeds"), parse_list(end_sparsities, float, "--end-sparsities")
    plan = make_plan(
        values,
        pruning_methods,
        parallel,
        max_parallel_jobs,
        output_mode,
        *grid,
        teacher=teacher,
        undistilled_sparsities=parse_list(undistilled_sparsities, float, "--undistilled-sparsities"),
        teacher_train_samples=teacher_train_samples,
    )
    for line in describe(plan):
        click.echo(line)
    terminal = sys.stdout.isatty() and sys.stdin.isatty()
    mode = plan.output_mode or _ask_mode(terminal)
    from gated_bert.experiments import runner

    result = runner.run_experiments(plan, mode, terminal)
    if result.table is not None:
        click.echo(result.table.to_string(index=False))
        click.echo(f"comparison plot: {result.comparison_plot}; table: {result.comparison_table}")
    click.echo(f"parent MLflow run {result.parent_run_id}; wall time {result.wall_seconds:.1f} s")
    if result.failed:
        click.echo(f"Error: job(s) failed: {', '.join(result.failed)}", err=True)
        sys.exit(1)
