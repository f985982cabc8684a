"""A training process's peak resident memory, measured, against `gated_bert.memory`'s estimate.

Each case trains for one epoch (two batches, SPT to 0.9) in its own process;
the peak is that process's `ru_maxrss`. A whole run holds more than its first
batches (TensorFlow's allocator keeps what it grew to): `--whole-run` trains
one sweep trial's budget instead (32,000 examples, 7 epochs; minutes). The sweep's memory check starts only
as many workers as the estimate says fit, so the estimate should not be
below the measurement by more than a few percent. Nothing is written outside
a temporary folder.

Usage: python benchmarks/worker_memory.py [--cases tiny:32,tiny:96,small:32,small:96,base:32,base:96]
       [--glue-dir ../shared/glue]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CHILD = """
import resource, sys
from gated_bert.cli import main
try:
    main(sys.argv[1:])
finally:
    print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def measured_peak(size: str, batch: int, glue_dir: str, folder: Path, whole_run: bool = False) -> int:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{folder}/mlflow.db", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("MLFLOW_RUN_ID", None)
    epochs, examples = ("7", "32000") if whole_run else ("1", str(2 * batch))
    args = ["train", "--task", "sst2", "--model-size", size, "--epochs", epochs, "--batch-size", str(batch)]
    args += ["--max-train-samples", examples] + ([] if whole_run else ["--max-eval-samples", str(batch)])
    args += ["--pruning-method", "spt", "--end-sparsity", "0.9", "--pruning-start-epoch", "1"]
    args += ["--pruning-end-epoch", "1", "--data-dir", glue_dir, "--verbose", "0"]
    args += ["--output-root", str(folder / f"{size}{batch}")]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True)
    line = [x for x in done.stderr.splitlines() if x.startswith("MAXRSS")]
    if done.returncode != 0 or not line:
        raise SystemExit(f"{size} batch {batch} failed:\n{done.stderr[-2000:]}")
    return int(line[-1].split()[1]) * 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default="tiny:32,tiny:96,small:32,small:96,base:32,base:96")
    parser.add_argument("--whole-run", action="store_true", help="a sweep trial's budget per case")
    parser.add_argument(
        "--glue-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "glue"))
    )
    args = parser.parse_args()
    from gated_bert.config import GatedBertConfig
    from gated_bert.memory import peak_bytes
    from gated_bert.training.settings import resolved_config

    print(f"{'model':>6} {'batch':>5} {'measured GB':>11} {'estimate GB':>11} {'estimate/measured':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            size, batch = case.split(":")
            config = resolved_config(GatedBertConfig(model_size=size, batch_size=int(batch)))
            estimate = peak_bytes(config)
            glue = str(Path(args.glue_dir).resolve())
            measured = measured_peak(size, int(batch), glue, Path(tmp), args.whole_run)
            print(
                f"{size:>6} {batch:>5} {measured / 2**30:>11.2f} {estimate / 2**30:>11.2f} "
                f"{estimate / measured:>17.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
