"""`gated-bert export`: a run's model for inference only (an MLflow pyfunc model directory)."""

from __future__ import annotations

import click

from gated_bert import stores
from gated_bert.export import FORMATS


@click.command()
@click.option("--run-id", required=True, help="The training run whose model to export.")
@click.option("--output", default=None, help="Folder to write (default: export_<run id>_<format>).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="compact",
    show_default=True,
    help="keras: the gated model with masks applied; compact: pruned heads/neurons removed, "
    "sparse kernels as CSR.",
)
@click.option("--float16", is_flag=True, help="Store the token embedding in float16 (compact only).")
def export(run_id, output, fmt, float16):
    """Export a run's model for inference; report sizes and CPU latency, dense vs exported."""
    from gated_bert.export.exporter import export_run
    from gated_bert.quiet_start import import_tensorflow_quietly
    from gated_bert.run import configure_logging

    stores.check_environment_tracking_server()  # before TensorFlow loads: one line, in seconds
    import_tensorflow_quietly()

    configure_logging(1)
    report = export_run(run_id, output, fmt, float16)
    for line in report.lines():
        click.echo(line)
