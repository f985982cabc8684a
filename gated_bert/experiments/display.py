"""Live views of parallel jobs: progress bars, prefixed log lines, or both.

On a terminal the bars are `rich` progress bars; without one (CI, pipes,
`mlflow run`) they become plain status lines printed when a job advances.
"""

from __future__ import annotations

import re
import sys

from gated_bert.experiments.jobs import Job

IMPORTANT = re.compile(r"INFO epoch|Error|Warning|Traceback|finished:|run [0-9a-f]{32}")
BAR_WIDTH = 40


def fraction(progress: dict) -> float:
    epochs, steps = progress.get("epochs") or 0, progress.get("steps") or 0
    if not epochs or not steps:
        return 0.0
    done = (progress.get("epoch", 1) - 1) * steps + progress.get("step", 0)
    return min(1.0, done / (epochs * steps))


def status_text(progress: dict) -> str:
    if not progress:
        return "starting"
    text = f"Epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')} step {progress.get('step', 0)}/{progress.get('steps', '?')}"
    if progress.get("value") is not None:
        text += f"  {progress['metric']} {progress['value']:.4f}"
    return text + f"  sparsity {progress.get('sparsity', 0.0):.3f}"


class _Base:
    def __init__(self, mode: str, stream=None):
        self.mode = mode
        self.stream = stream or sys.stdout

    def emit(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def started(self, job: Job) -> None:
        self.emit(f"[JOB {job.index}] {job.method}: started (log {job.log_path})")

    def finished(self, job: Job) -> None:
        seconds = job.finished - job.started
        if job.returncode == 0:
            self.emit(f"[JOB {job.index}] {job.method}: finished in {seconds:.1f} s")
            return
        self.emit(
            f"[JOB {job.index}] {job.method}: FAILED with exit code {job.returncode} after {seconds:.1f} s; "
            f"last lines of {job.log_path}:"
        )
        for line in job.tail():
            self.emit(f"    | {line}")

    def log_lines(self, jobs: list[Job]) -> None:
        for job in jobs:
            for line in job.new_log_lines():
                if self.mode == "logs" or IMPORTANT.search(line):
                    self.emit(f"[{job.method}] {line}")

    def close(self) -> None:
        pass


class PlainLines(_Base):
    """No terminal: one status line per job whenever its epoch or quarter changes."""

    def __init__(self, mode: str, stream=None):
        super().__init__(mode, stream)
        self._shown: dict[int, tuple] = {}

    def update(self, jobs: list[Job]) -> None:
        if self.mode in ("logs", "both"):
            self.log_lines(jobs)
        if self.mode == "logs":
            return
        for job in jobs:
            if job.process is None:
                continue
            progress = job.progress()
            share = fraction(progress)
            key = (progress.get("epoch"), int(share * 4), progress.get("value"))
            if progress and self._shown.get(job.index) != key:
                self._shown[job.index] = key
                filled = int(share * BAR_WIDTH)
                bar = "#" * filled + "-" * (BAR_WIDTH - filled)
                self.emit(
                    f"[JOB {job.index}] {job.method:10s} [{bar}] {share * 100:3.0f}% ({status_text(progress)})"
                )


class RichBars(_Base):
    """On a terminal: one rich progress bar per job (and log lines above them)."""

    def __init__(self, mode: str, jobs: list[Job]):
        super().__init__(mode)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.console = Console()
        self.progress = Progress(
            TextColumn("[bold]JOB {task.fields[index]}[/] {task.fields[method]:10s}"),
            BarColumn(bar_width=BAR_WIDTH),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            refresh_per_second=4,
        )
        self.tasks = {
            job.index: self.progress.add_task(
                "", total=1.0, index=job.index, method=job.method, status="queued"
            )
            for job in jobs
        }
        if mode != "logs":
            self.progress.start()

    def emit(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def update(self, jobs: list[Job]) -> None:
        if self.mode in ("logs", "both"):
            self.log_lines(jobs)
        for job in jobs:
            if job.process is None:
                continue
            progress = job.progress()
            status = (
                status_text(progress) if job.returncode in (None, 0) else f"FAILED (exit {job.returncode})"
            )
            done = 1.0 if job.returncode == 0 else fraction(progress)
            self.progress.update(self.tasks[job.index], completed=done, status=status)

    def close(self) -> None:
        if self.mode != "logs":
            self.progress.stop()


def make_display(mode: str, jobs: list[Job], terminal: bool):
    return RichBars(mode, jobs) if terminal else PlainLines(mode)
