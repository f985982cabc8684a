"""What the sweep's parent run logs: best trial, all trials as CSV, Optuna plots."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import optuna

from gated_bert import tracking

log = logging.getLogger("gated_bert")
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "slice")


def trial_states(study: optuna.Study) -> dict[str, int]:
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    return states


def write_plots(study: optuna.Study, folder: Path) -> None:
    """Optuna's matplotlib plots as PNGs; a plot that cannot be drawn leaves a .txt saying why."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    for name in PLOTS:
        try:
            with warnings.catch_warnings():  # experimental API, notes on few trials: the plot says enough
                warnings.simplefilter("ignore")
                axes = getattr(optuna_plots, f"plot_{name}")(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(9, 5.5)
            figure.savefig(folder / f"{name}.png", dpi=100, bbox_inches="tight")
        except Exception as err:  # e.g. importances need two finished trials
            (folder / f"{name}.txt").write_text(f"not plotted: {err}\n")
            log.info("plot %s skipped: %s", name, err)
        finally:
            plt.close("all")


def log_study(study: optuna.Study, storage: str):
    """Log best value/params, trials.csv and plots to the active (parent) run."""
    states = trial_states(study)
    tracking.log_metrics({f"trials_{state.lower()}": count for state, count in states.items()})
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best_value, best_params = None, {}
    if complete:
        best = study.best_trial
        best_value, best_params = best.value, dict(best.params)
        tracking.log_metrics({"best_value": best.value})
        tracking.set_tags(  # tags, not params: a later invocation may find a better trial
            {
                **{f"best.{k}": str(v) for k, v in best.params.items()},
                "best_trial_number": str(best.number),
                "best_trial_run_id": str(best.user_attrs.get("mlflow_run_id", "")),
            }
        )
    tracking.set_tags({"optuna.storage": storage})
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        study.trials_dataframe().to_csv(folder / "trials.csv", index=False)
        write_plots(study, folder)
        tracking.log_folder(folder, "sweep")
    return best_value, best_params, states
