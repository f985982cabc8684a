"""MLflow at one edge: the only package of gated-bert that imports mlflow.

- `runs`: open/end runs with the right status, log params, metrics and files;
- `children`: child runs of sweeps and experiments;
- `models`: log a trained model as a pyfunc model;
- `pyfunc`: the pyfunc wrapper (its prediction logic is `gated_bert.inference`);
- `search`: read runs and metric histories back.
"""

from gated_bert.tracking.children import (
    child_run_ids,
    child_runs,
    end_trial_runs,
    kill_running_children,
    tag_trial_run,
)
from gated_bert.tracking.models import (
    MODEL_NAME,
    alias_best_versions,
    log_model,
    model_files,
    reopened_run,
    save_model_dir,
)
from gated_bert.tracking.runs import (
    absolute_tracking_uri,
    check_experiment_access,
    check_tracking_store,
    log_artifacts,
    log_config,
    log_epoch,
    log_folder,
    log_metrics,
    log_params,
    log_text,
    point_launched_run_to,
    set_tags,
    sqlite_path,
    start_run,
    use_tracking_uri,
)
from gated_bert.tracking.search import (
    RunInfo,
    experiment_run_ids,
    load_text,
    mark_killed,
    metric_history,
    reopen_run,
    run_exists,
    run_info,
    running_runs,
)

__all__ = [
    "MODEL_NAME",
    "RunInfo",
    "absolute_tracking_uri",
    "alias_best_versions",
    "check_experiment_access",
    "check_tracking_store",
    "child_run_ids",
    "child_runs",
    "end_trial_runs",
    "experiment_run_ids",
    "kill_running_children",
    "log_artifacts",
    "log_config",
    "log_epoch",
    "log_folder",
    "log_metrics",
    "log_model",
    "model_files",
    "reopened_run",
    "save_model_dir",
    "log_params",
    "log_text",
    "load_text",
    "mark_killed",
    "point_launched_run_to",
    "reopen_run",
    "running_runs",
    "metric_history",
    "run_exists",
    "run_info",
    "set_tags",
    "sqlite_path",
    "start_run",
    "tag_trial_run",
    "use_tracking_uri",
]
