"""What the sweep's parent run logs: best trial, all trials as CSV, Optuna plots."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import optuna  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

log = logging.getLogger("gated_bert")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
PLOTS = {
    "optimization_history": optuna_plots.plot_optimization_history,
    "param_importances": optuna_plots.plot_param_importances,
    "parallel_coordinate": optuna_plots.plot_parallel_coordinate,
    "slice": optuna_plots.plot_slice,
}


def log_study(study: optuna.Study, storage: str):
    """Log best value/params, trials.csv and plots to the active (parent) run."""
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    mlflow.log_metrics({f"trials_{state.lower()}": count for state, count in states.items()})
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best_value, best_params = None, {}
    if complete:
        best = study.best_trial
        best_value, best_params = best.value, dict(best.params)
        mlflow.log_metric("best_value", best.value)
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        mlflow.set_tags(
            {
                "best_trial_number": str(best.number),
                "best_trial_run_id": str(best.user_attrs.get("mlflow_run_id", "")),
            }
        )
    mlflow.set_tag("optuna.storage", storage)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study.trials_dataframe().to_csv(folder / "trials.csv", index=False)
        for name, plot in PLOTS.items():
            try:
                with warnings.catch_warnings():  # optuna's notes on few trials; the plot says enough
                    warnings.simplefilter("ignore")
                    plot(study)
                plt.gcf().set_size_inches(9, 5.5)
                plt.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
            except Exception as err:  # e.g. importances need two finished trials
                (folder / f"{name}.txt").write_text(f"not plotted: {err}\n")
                log.info("plot %s skipped: %s", name, err)
            finally:
                plt.close("all")
        mlflow.log_artifacts(str(folder), artifact_path="sweep")
    return best_value, best_params, states
