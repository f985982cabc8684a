"""Keeping a sweep's worker processes going: a worker that dies loses no trial.

The parent polls its workers. When one exits abnormally (kill -9, OOM, a
crash), its RUNNING trial is told FAIL (reason in the trial's user attrs),
its MLflow run is ended KILLED, the trial's parameters are enqueued again
(a retry, user attr `retry_of`), and a replacement worker runs the trials
the dead one had left, the retry first. The invocation so ends with its own
`n_trials` finished trials. Ctrl-C interrupts every worker instead.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import time

from gated_bert.sweep.storage import INTERRUPTED, WORKER_PID, make_storage

log = logging.getLogger("gated_bert")
POLL_SECONDS = 0.5
MAX_RESTARTS = 3  # per worker slot: a worker that keeps dying is given up, not restarted forever


def run_workers(jobs: list, target) -> None:
    """Run `target(job)` in one spawned process per job until every job's trials are done."""
    context = multiprocessing.get_context("spawn")
    running = {_start(context, target, job): job for job in jobs}
    restarts = dict.fromkeys(range(len(jobs)), 0)
    try:
        while running:
            time.sleep(POLL_SECONDS)
            for process in [p for p in running if not p.is_alive()]:
                job = running.pop(process)
                process.join()
                if process.exitcode == 0:
                    continue
                replacement = _recover(job, process)
                if replacement is not None and restarts[job.index] < MAX_RESTARTS:
                    restarts[job.index] += 1
                    running[_start(context, target, replacement)] = replacement
                elif replacement is not None:
                    log.error(
                        "worker %d died %d times; its last %d trial(s) are not run",
                        job.index,
                        MAX_RESTARTS + 1,
                        replacement.n_trials,
                    )
    except KeyboardInterrupt:
        _stop(list(running))
        _fail_interrupted(running)
        raise


def _start(context, target, job):
    process = context.Process(target=target, args=(job,), name=f"sweep-worker-{job.index}")
    process.start()
    return process


def _recover(job, process):
    """Fail and re-enqueue the dead worker's running trial; the job for its remaining trials, or None."""
    log.warning(
        "worker %d (pid %d) died with exit code %s; retrying its trial",
        job.index,
        process.pid,
        process.exitcode,
    )
    reason = f"worker process {process.pid} died (exit code {process.exitcode})"
    study, mine, failed = _fail_running_trials(job, process.pid, reason)
    for trial in failed:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)
    finished = [t for t in mine if t.state.is_finished() and t.user_attrs.get("fail_reason") is None]
    remaining = job.n_trials - len(finished)
    return dataclasses.replace(job, n_trials=remaining) if remaining > 0 else None


def _fail_running_trials(job, pid: int, reason: str):
    """Tell FAIL (with `reason`) the trials worker `pid` left RUNNING and end their runs KILLED.

    Returns the study, every trial of that worker as read before, and the ones it failed."""
    import optuna

    from gated_bert import tracking

    storage = make_storage(job.storage)
    study = optuna.load_study(study_name=job.settings.study_name, storage=storage)
    study_id = storage.get_study_id_from_name(job.settings.study_name)
    mine = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(WORKER_PID) == pid]
    failed = [t for t in mine if t.state == optuna.trial.TrialState.RUNNING]
    for trial in failed:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        tags = {"optuna.study_name": job.settings.study_name, "optuna.trial_number": str(trial.number)}
        tracking.end_trial_runs(job.experiment_id, tags, "KILLED", "FAIL")
    return study, mine, failed


def _fail_interrupted(running: dict) -> None:
    """Trials the stopped workers left RUNNING (the interrupt came while Optuna was not inside the
    objective, e.g. telling a result) are told FAIL, as an interrupted trial is."""
    for process, job in running.items():
        try:
            _fail_running_trials(job, process.pid, INTERRUPTED)
        except Exception as err:  # the study's storage gone too: the trial stays RUNNING, said so
            log.warning("could not mark worker %d's trial FAIL after the interrupt (%s)", job.index, err)


def _stop(processes) -> None:
    """Ctrl-C: interrupt every worker (their runs end KILLED), then make sure they are gone."""
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGINT)
    deadline = time.time() + 60
    for process in processes:
        process.join(max(0.0, deadline - time.time()))
        if process.is_alive():
            process.kill()
            process.join()
