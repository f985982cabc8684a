"""Settings every worker process (sweep worker, experiments job) starts with.

They are applied to a child's environment, never to the calling process.
"""

from __future__ import annotations

import os


def cpu_share(parallel_jobs: int) -> int:
    """TensorFlow threads per job when `parallel_jobs` share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, parallel_jobs))


def worker_environment(threads: int, tracking_uri: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker: its thread share, the parent's tracking URI, quiet TF.

    MLFLOW_RUN_ID is removed: workers log child runs of the parent, never the
    parent run itself.
    """
    env = dict(os.environ if base is None else base)
    env.pop("MLFLOW_RUN_ID", None)
    env.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS="1",
        OMP_NUM_THREADS=str(threads),
        TF_CPP_MIN_LOG_LEVEL=env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        PYTHONUNBUFFERED="1",
    )
    return env
