"""The `gated-bert` command line: the process's edge.

`main` sets up everything process-wide (console logging per command, warning
display, SIGINT/SIGTERM as one interrupt, TensorFlow's log level, MLflow's progress
bars, a non-interactive matplotlib backend), then runs a subcommand from
`gated_bert/commands/`. Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from gated_bert.commands.compare import compare
from gated_bert.commands.experiments import experiments
from gated_bert.commands.export import export
from gated_bert.commands.runs import runs
from gated_bert.commands.sweep import sweep, sweep_report
from gated_bert.commands.train import train
from gated_bert.errors import GatedBertError
from gated_bert.interrupts import stop_on_first_interrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="gated-bert")
def cli():
    """Train and prune gated BERT-style encoders on GLUE, tracked in MLflow."""


for command in (train, sweep, sweep_report, experiments, compare, runs, export):
    cli.add_command(command)


def _one_line_warnings() -> None:
    warnings.showwarning = lambda message, category, *args, **kwargs: click.echo(
        f"Warning: {message}", err=True
    )


def setup_process() -> None:
    """Process-wide settings of a command-line process (never done by library code)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from gated_bert.training.threads import configure_intra_op_threads

    configure_intra_op_threads()  # before TensorFlow starts; children inherit it
    import matplotlib

    matplotlib.use("Agg")  # files only; no window is ever opened
    stop_on_first_interrupt()  # SIGTERM ends runs KILLED, like Ctrl-C; a second signal waits for cleanup
    _one_line_warnings()


def _end_interrupted_runs() -> None:
    """Runs an interrupt left open end KILLED (MLflow's exit hook would end them FINISHED)."""
    if "mlflow" in sys.modules:
        from gated_bert.tracking.runs import end_active_runs

        end_active_runs("KILLED")


def _mark_launched_run(message: str) -> None:
    """Under `mlflow run`, whose run exists before gated-bert starts, bad input is noted on it."""
    if os.environ.get("MLFLOW_RUN_ID"):
        from gated_bert.tracking.runs import mark_refused_launched_run

        mark_refused_launched_run(message)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for bad input."""
    setup_process()
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
        _end_interrupted_runs()
        sys.exit(130)
    except GatedBertError as err:
        message = " ".join(str(err).split())
        click.echo(f"Error: {message}", err=True)
        _mark_launched_run(message)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        _end_interrupted_runs()
        sys.exit(130)
    except Exception as err:
        from gated_bert.training.callbacks import TrainingDivergedError

        if isinstance(err, TrainingDivergedError):
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
