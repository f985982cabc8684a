"""Wall time of the same 4-trial sweep with n_jobs=1 and n_jobs=2, in one run.

Tiny model, a slice of SST-2, random sampler, no pruner, each sweep in its own
temporary MLflow store and Optuna journal. On a 2-core machine the target is
n_jobs=2 taking at most 0.65 of n_jobs=1.

Usage: python benchmarks/sweep_scaling.py [--samples 1500] [--epochs 2] [--trials 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def timed_sweep(n_jobs: int, args) -> float:
    import mlflow

    from gated_bert.config import GatedBertConfig
    from gated_bert.sweep.runner import SweepSettings, run_sweep

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        os.environ["MLFLOW_TRACKING_URI"] = uri
        mlflow.set_tracking_uri(uri)
        base = GatedBertConfig(
            model_size="tiny",
            task="sst2",
            data_dir=args.glue_dir,
            max_train_samples=args.samples,
            epochs=args.epochs,
            pruning_method="spt",
            pruning_start_epoch=1,
            pruning_end_epoch=args.epochs,
            end_sparsity=0.9,
            output_root=tmp,
            verbose=0,
        )
        settings = SweepSettings(
            n_trials=args.trials,
            n_jobs=n_jobs,
            study_name=f"scaling-{n_jobs}",
            sampler="random",
            pruner="none",
            seed=0,
        )
        start = time.perf_counter()
        result = run_sweep(base, settings)
        seconds = time.perf_counter() - start
        assert result.states == {"COMPLETE": args.trials}, result.states
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument(
        "--glue-dir", default=str(Path(os.environ.get("GLUE_DIR", "../shared/glue")).resolve())
    )
    args = parser.parse_args()
    one = timed_sweep(1, args)
    two = timed_sweep(2, args)
    print(
        f"{args.trials}-trial sweep (tiny, {args.samples} SST-2 examples, {args.epochs} epochs) on "
        f"{os.cpu_count()} cores: n_jobs=1 {one:.1f} s, n_jobs=2 {two:.1f} s, ratio {two / one:.2f}"
    )


if __name__ == "__main__":
    main()
