"""`gated-bert runs --stale`: RUNNING runs whose process is gone (killed with SIGKILL, OOM, reboot)."""

from __future__ import annotations

import socket

import click


def process_alive(pid: int, started_ms: int) -> bool:
    """Whether `pid` is a live process that started before its run did (not a reused pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.is_running() and process.create_time() * 1000 <= started_ms + 60_000
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def stale_runs() -> list:
    """RUNNING runs started on this host whose process no longer exists."""
    from gated_bert import tracking

    host = socket.gethostname()
    stale = []
    for info in tracking.running_runs():
        pid, run_host = info.tags.get("gated_bert.pid"), info.tags.get("gated_bert.host")
        if pid and run_host == host and not process_alive(int(pid), info.start_time):
            stale.append(info)
    return stale


@click.command()
@click.option("--stale", is_flag=True, required=True, help="List RUNNING runs whose process is gone.")
@click.option("--mark-killed", is_flag=True, help="Mark those runs KILLED (else resume them with --resume).")
def runs(stale, mark_killed):
    """Runs of this machine that were killed without being able to end their MLflow run."""
    from gated_bert import tracking

    found = stale_runs()
    for info in found:
        name = info.tags.get("mlflow.runName", "")
        action = "marked KILLED" if mark_killed else f"resume: gated-bert train --resume {info.run_id}"
        if mark_killed:
            tracking.mark_killed(info.run_id)
        click.echo(f"{info.run_id}  {name}  pid {info.tags['gated_bert.pid']} gone; {action}")
    click.echo(f"{len(found)} stale run(s)")
