"""How many threads one TensorFlow op uses, chosen per machine before TensorFlow starts.

TensorFlow runs independent ops of a step side by side (inter-op threads) and
splits each op over intra-op threads (by default as many as the CPUs). On a
2-CPU machine most ops of a training step are small (tiny's matmuls are 1,225
x 256 x 512): splitting each over both CPUs costs more in hand-offs than it
gains, while two ops, one per CPU, keep both busy (docs/training.md, "One
TensorFlow thread per op on small machines"). Larger machines were not
measured, so they keep TensorFlow's default.

The setting is read by TensorFlow when it starts, from `TF_NUM_INTRAOP_THREADS`;
the command line sets it (`cli.setup_process`), child processes (sweep workers,
experiment jobs, `mlflow run`) inherit it, and a value the user set wins.
"""

from __future__ import annotations

import os

ENV = "TF_NUM_INTRAOP_THREADS"
MAX_CPUS_FOR_ONE_THREAD = 2  # measured there; above it TensorFlow's default is kept


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_intra_op_threads(cpus: int) -> int | None:
    """1 on machines with at most 2 CPUs, else None (TensorFlow's default)."""
    return 1 if cpus <= MAX_CPUS_FOR_ONE_THREAD else None


def configure_intra_op_threads(environ=os.environ) -> str:
    """Set `TF_NUM_INTRAOP_THREADS` for this machine unless the user set it; returns the value
    in effect ("default" when TensorFlow chooses)."""
    if ENV not in environ:
        threads = default_intra_op_threads(available_cpus())
        if threads is not None:
            environ[ENV] = str(threads)
    return intra_op_threads_in_effect(environ)


def intra_op_threads_in_effect(environ=os.environ) -> str:
    """What the run records: the environment's value, or "default"."""
    return environ.get(ENV, "default")
