"""The Optuna objective: one training run per trial, reported every epoch."""

from __future__ import annotations

import math

import optuna

from gated_bert import interrupts
from gated_bert.config import GatedBertConfig
from gated_bert.sweep.search_space import load_space, suggest_config
from gated_bert.sweep.storage import INTERRUPTED, INVOCATION_TAG, WORKER_PID
from gated_bert.tasks import TASKS


def failure_reason(err: BaseException) -> str:
    """Why a trial failed, in one line; a lost database connection says so (Optuna's own
    message for it speaks of invalid data)."""
    if isinstance(err, KeyboardInterrupt) or interrupts.received():
        return INTERRUPTED
    cause: BaseException | None = err
    while cause is not None:
        if type(cause).__name__ == "OperationalError":
            return f"lost the connection to the study's database ({' '.join(str(cause).split())[:300]})"
        cause = cause.__cause__ or cause.__context__
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


class TrialFailed(RuntimeError):
    """The trial's final metric is missing or not finite."""


class Objective:
    """Train the sampled config; return the task's main dev metric at the final epoch.

    Args:
        base: fixed settings of every trial.
        settings: the sweep's settings (search space file).
        parent_run_id: MLflow parent run of the sweep.
        experiment_id: its experiment.
        invocation: the `gated-bert sweep` invocation that runs the trial (a tag on its run).
    """

    def __init__(
        self, base: GatedBertConfig, settings, parent_run_id: str, experiment_id: str, invocation: str = ""
    ):
        self.base = base
        self.space = load_space(settings.search_space, base.epochs)
        self.study_name = settings.study_name
        self.parent_run_id = parent_run_id
        self.experiment_id = experiment_id
        self.metric = f"eval_{TASKS[base.task].main_metric}"
        self.result_key = {
            "final": f"final_{self.metric}",
            "best_at_target": f"best_{self.metric}_at_target",
            "window_mean": f"window_mean_{self.metric}",
        }[getattr(settings, "objective", "final")]
        self.invocation = invocation
        self.keep_checkpoints = getattr(settings, "keep_checkpoints", False)

    def __call__(self, trial: optuna.Trial) -> float:
        import os

        from gated_bert import tracking
        from gated_bert.run import train

        trial.set_user_attr(WORKER_PID, os.getpid())  # the parent retries the trial if this process dies
        config = suggest_config(trial, self.space, self.base)
        tags = {"optuna.study_name": self.study_name, "optuna.trial_number": str(trial.number)}
        run_tags = {**tags, INVOCATION_TAG: self.invocation}

        def report(row):
            """Epochs at the final sparsity only: trials compete at equal sparsity (earlier epochs
            mostly show how far each trial's pruning has got, not how well it ranks)."""
            if int(row["epoch"]) < config.pruning_end_epoch:
                return
            value = row.get(self.metric, float("nan"))
            if math.isfinite(value):
                trial.report(value, int(row["epoch"]))
            if int(row["epoch"]) < config.epochs and trial.should_prune():  # the last epoch is done anyway
                raise optuna.TrialPruned(
                    f"pruned after epoch {int(row['epoch'])} ({self.metric}={value:.4f})"
                )

        try:
            result = train(
                config,
                run_name=f"trial_{trial.number}",
                tags=run_tags,
                on_epoch_end=report,
                parent_run_id=self.parent_run_id,
                experiment_id=self.experiment_id,
                finished_on=(optuna.TrialPruned,),
                keep_checkpoints=self.keep_checkpoints,
            )
        except optuna.TrialPruned:
            tracking.tag_trial_run(self.experiment_id, tags, "PRUNED")
            raise
        except BaseException as err:
            reason = failure_reason(err)
            trial.set_user_attr("fail_reason", reason[:500])
            tracking.tag_trial_run(self.experiment_id, tags, "FAIL", reason)
            raise
        value = result.final.get(self.result_key, float("nan"))
        trial.set_user_attr("final_sparsity", result.final.get("final_sparsity"))
        trial.set_user_attr("mlflow_run_id", result.run_id)
        if not math.isfinite(value):
            reason = f"{self.result_key} is {value}"
            trial.set_user_attr("fail_reason", reason)
            tracking.tag_trial_run(self.experiment_id, tags, "FAIL", reason)
            raise TrialFailed(reason)
        tracking.tag_trial_run(self.experiment_id, tags, "COMPLETE")
        return value
