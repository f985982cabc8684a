"""`gated-bert train` now versus at an older commit, alternating, on the same machine.

Runs the same command (tiny, SST-2, 4,800 examples, 2 epochs, batch 96,
baseline by default) with this checkout's code and with a temporary git
worktree of `--commit`, alternating old/new for `--rounds` rounds, and prints
each run's MLflow `examples_per_second` at epoch 2 and final dev accuracy,
then the median ratio new/old. `--train-args` adds flags to both sides' command.
Nothing is written outside a temporary folder.

Usage: python benchmarks/against_commit.py --commit OLD [--rounds 3] [--glue-dir ../shared/glue]
       [--method none] [--train-args "--movement-remove-directions 4"]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READ_BACK = """
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
run = mlflow.search_runs(experiment_names=["sst2"], output_format="list")[0]
history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "examples_per_second")
speed = [m.value for m in sorted(history, key=lambda m: m.step)]
print(speed[-1], run.data.metrics.get("final_eval_accuracy"))
"""


def one_run(
    code: Path, glue_dir: str, method: str, folder: Path, seed: int, extra: list[str]
) -> tuple[float, float]:
    uri = f"sqlite:///{folder}/mlflow.db"
    env = dict(os.environ, PYTHONPATH=str(code), MLFLOW_TRACKING_URI=uri, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("MLFLOW_RUN_ID", None)
    args = ["--task", "sst2", "--model-size", "tiny", "--epochs", "2", "--batch-size", "96"]
    args += ["--max-train-samples", "4800", "--pruning-method", method, "--data-dir", glue_dir]
    args += ["--verbose", "0", "--output-root", str(folder), "--seed", str(seed), *extra]
    command = [sys.executable, "-m", "gated_bert.cli", "train", *args]
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-c", READ_BACK, uri], env=env, check=True, capture_output=True, text=True
    )
    speed, accuracy = out.stdout.split()
    return float(speed), float(accuracy)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commit", required=True, help="the older commit to compare with (any git revision)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--method", default="none")
    parser.add_argument(
        "--seeds", default="1,2,3", help="round r uses the r-th seed (cycling), old and new alike"
    )
    parser.add_argument("--train-args", default="", help="more `gated-bert train` flags, both sides")
    parser.add_argument(
        "--glue-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "glue"))
    )
    args = parser.parse_args()
    glue = str(Path(args.glue_dir).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), args.commit],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        try:
            speeds: dict[str, list[float]] = {"old": [], "new": []}
            accuracies: dict[str, list[float]] = {"old": [], "new": []}
            seeds = [int(s) for s in args.seeds.split(",")]
            for round_ in range(args.rounds):
                seed = seeds[round_ % len(seeds)]
                for label, code in (("old", old), ("new", REPO)):
                    folder = Path(tmp) / f"{label}_{round_}"
                    folder.mkdir()
                    speed, accuracy = one_run(
                        code, glue, args.method, folder, seed, shlex.split(args.train_args)
                    )
                    speeds[label].append(speed)
                    accuracies[label].append(accuracy)
                    print(
                        f"round {round_ + 1} (seed {seed}) {label}: {speed:8.1f} examples/s at epoch 2, "
                        f"dev accuracy {accuracy:.4f}",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
    for label, values in accuracies.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{label}: final dev accuracy {statistics.mean(values):.4f} +- {spread:.4f} (n={len(values)})")
    ratios = [n / o for n, o in zip(speeds["new"], speeds["old"])]
    print(
        f"new/old per round: {', '.join(f'{r:.2f}' for r in ratios)}; median {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
