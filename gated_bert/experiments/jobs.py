"""Run one `gated-bert train` process per method, with live progress.

Each job runs in its own working directory with its own log file under
`experiment_logs/`, its own TensorFlow thread share, and reports progress
through a small JSON file that the parent polls. At most `max_jobs` run at
once. A failed job is reported with the tail of its log; the others go on.
Ctrl-C interrupts every job (their MLflow runs end KILLED) and leaves no
process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gated_bert.config import GatedBertConfig
from gated_bert.workers import cpu_share, worker_environment

POLL_SECONDS = 0.5
TAIL_LINES = 15
PATH_FIELDS = ("init_from", "data_dir", "teacher", "tokenizer")  # local paths, when they exist


@dataclass
class Job:
    index: int
    method: str
    config: GatedBertConfig
    workdir: Path
    log_path: Path
    progress_path: Path
    distil: bool = True  # with --teacher auto: distils from its seed's dense run (pruning jobs)
    process: subprocess.Popen | None = None
    log_handle: object = None
    returncode: int | None = None
    started: float = 0.0
    finished: float = 0.0
    log_offset: int = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.returncode is None

    def progress(self) -> dict:
        try:
            return json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return {}

    def tail(self, n: int = TAIL_LINES) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return []

    def new_log_lines(self) -> list[str]:
        try:
            with open(self.log_path, errors="replace") as handle:
                handle.seek(self.log_offset)
                text = handle.read()
                self.log_offset = handle.tell()
        except OSError:
            return []
        return [line for line in text.replace("\r", "\n").splitlines() if line.strip()]


def with_absolute_paths(config: GatedBertConfig) -> GatedBertConfig:
    """`config` with its local paths absolute: a job runs in its own folder, so a relative
    `--init-from`, `--data-dir`, `--teacher` or `--tokenizer` would name nothing there. Values
    that are no local path (a hub id, a run id) are kept."""
    changes = {
        name: str(Path(value).expanduser().resolve())
        for name in PATH_FIELDS
        if (value := getattr(config, name)) and Path(value).expanduser().exists()
    }
    return config.replace(**changes) if changes else config


def train_command(config_file: Path, parent_run_id: str, experiment_id: str, progress: Path) -> list[str]:
    """`python -m gated_bert.cli train` on the job's config, passed as a JSON file."""
    return [
        sys.executable,
        "-m",
        "gated_bert.cli",
        "train",
        "--config-file",
        str(config_file),
        "--parent-run-id",
        parent_run_id,
        "--experiment-id",
        experiment_id,
        "--progress-file",
        str(progress),
    ]


class JobRunner:
    """Starts, watches and stops the jobs; `display` is told what happens."""

    def __init__(
        self,
        jobs: list[Job],
        max_jobs: int,
        tracking_uri: str,
        parent_run_id: str,
        experiment_id: str,
        display,
    ):
        self.jobs = jobs
        self.max_jobs = max_jobs
        self.tracking_uri = tracking_uri
        self.parent_run_id = parent_run_id
        self.experiment_id = experiment_id
        self.display = display

    def _start(self, job: Job) -> None:
        job.workdir.mkdir(parents=True, exist_ok=True)
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        threads = cpu_share(min(self.max_jobs, len(self.jobs)))
        config_file = job.workdir / "config.json"
        config_file.write_text(job.config.to_json())
        job.log_handle = open(job.log_path, "w")
        job.started = time.time()
        job.process = subprocess.Popen(
            train_command(config_file, self.parent_run_id, self.experiment_id, job.progress_path),
            cwd=job.workdir,
            stdout=job.log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=worker_environment(threads, self.tracking_uri),
            start_new_session=True,  # own process group: we forward Ctrl-C
        )
        self.display.started(job)

    def _reap(self, job: Job) -> None:
        code = job.process.poll()
        if code is None:
            return
        job.returncode = code
        job.finished = time.time()
        job.log_handle.close()
        self.display.finished(job)

    def run(self) -> list[Job]:
        pending = list(self.jobs)
        try:
            while pending or any(j.running for j in self.jobs):
                while pending and sum(j.running for j in self.jobs) < self.max_jobs:
                    self._start(pending.pop(0))
                for job in self.jobs:
                    if job.running:
                        self._reap(job)
                self.display.update(self.jobs)
                time.sleep(POLL_SECONDS)
            self.display.update(self.jobs)
        except KeyboardInterrupt:
            self.stop()
            raise
        return self.jobs

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Interrupt every running job's process group; kill what does not exit."""
        running = [j for j in self.jobs if j.running]
        for job in running:
            try:
                os.killpg(job.process.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace_seconds
        for job in running:
            try:
                job.process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(job.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                job.process.wait()
            job.returncode = job.process.returncode
            job.log_handle.close()
