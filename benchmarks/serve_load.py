"""The served model under load: `mlflow models serve` of a trained model, many clients at once.

Trains a tiny SST-2 model (or takes `--model-uri`), serves it on 127.0.0.1 with
`mlflow models serve --env-manager local --workers N`, warms it up, then lets
`--clients` threads (keep-alive connections) send requests for `--seconds`:
valid rows of SST-2 dev sentences (1-32 rows), oversized bodies (a text over
the model's 20,000-character limit, a 2 MB text) and malformed ones (not JSON,
a missing column, a null, no rows, a number instead of text). Prints throughput,
latency percentiles, the status counts per kind of request and the server's
resident memory (all its processes) after warm-up and at the end, then checks:
no 5xx, every oversized or malformed body a 4xx, every valid one a 200, and
memory at the end within 20% of memory after warm-up (exit code 1 otherwise).
Nothing is written outside a temporary folder.

Usage: python benchmarks/serve_load.py [--clients 16] [--seconds 60] [--workers 1]
       [--model-uri runs:/<id>/model --tracking-uri URI] [--glue-dir ../shared/glue]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import psutil  # noqa: E402

KINDS = ("valid",) * 7 + ("oversized", "malformed", "malformed")  # the mix, 70/10/20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dev_sentences(glue_dir: Path) -> list[str]:
    lines = (glue_dir / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    return [line.split("\t")[0] for line in lines]


def train_model(glue_dir: Path, folder: Path) -> tuple[str, str]:
    """A tiny SST-2 model in a throwaway MLflow store: (model URI, tracking URI)."""
    uri = f"sqlite:///{folder}/mlflow.db"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    env.pop("MLFLOW_RUN_ID", None)
    args = ["train", "--task", "sst2", "--model-size", "tiny", "--epochs", "1"]
    args += ["--max-train-samples", "2000", "--data-dir", str(glue_dir), "--verbose", "0"]
    args += ["--output-root", str(folder / "out"), "--experiment-name", "serve-load"]
    done = subprocess.run(
        [sys.executable, "-m", "gated_bert.cli", *args], env=env, capture_output=True, text=True, cwd=folder
    )
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-2000:]}")
    import mlflow

    runs = mlflow.MlflowClient(uri).search_runs(
        [mlflow.MlflowClient(uri).get_experiment_by_name("serve-load").experiment_id]
    )
    return f"runs:/{runs[0].info.run_id}/model", uri


def body(kind: str, sentences: list[str], rng: random.Random) -> tuple[bytes, str]:
    """A request of `kind`: (body, content type)."""
    if kind == "valid":
        rows = [{"sentence": rng.choice(sentences)} for _ in range(rng.choice((1, 1, 4, 8, 32)))]
        return json.dumps({"dataframe_records": rows}).encode(), "application/json"
    if kind == "oversized":
        text = "a " * rng.choice((10_001, 1_000_000))  # over the limit; 2 MB
        return json.dumps({"dataframe_records": [{"sentence": text}]}).encode(), "application/json"
    bad = rng.choice(
        (
            b'{"dataframe_records": [{"sentence": "unterminated',
            b'{"dataframe_records": [{"text": "wrong column"}]}',
            b'{"dataframe_records": [{"sentence": null}]}',
            b'{"dataframe_records": []}',
            b'{"dataframe_records": [{"sentence": 7}]}',
            b"not json at all",
        )
    )
    return bad, "application/json"


def server_rss(pid: int) -> int:
    """Resident bytes of the server and every process it started."""
    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def client(port: int, sentences, deadline: float, seed: int, results: list) -> None:
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.perf_counter() < deadline:
        kind = rng.choice(KINDS)
        data, content_type = body(kind, sentences, rng)
        started = time.perf_counter()
        try:
            connection.request("POST", "/invocations", data, {"Content-Type": content_type})
            answer = connection.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            status = 0  # connection error: counted, and the client reconnects
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        results.append((kind, status, time.perf_counter() - started))
    connection.close()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1, help="mlflow models serve --workers")
    parser.add_argument("--model-uri", default=None, help="default: train a tiny SST-2 model first")
    parser.add_argument("--tracking-uri", default=None, help="where --model-uri's run is")
    parser.add_argument(
        "--glue-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "glue"))
    )
    args = parser.parse_args()
    glue_dir = Path(args.glue_dir)
    if not (glue_dir / "SST-2" / "dev.tsv").is_file():
        raise SystemExit(f"--glue-dir {glue_dir}: no SST-2/dev.tsv there; give the GLUE folder")
    sentences = dev_sentences(glue_dir)

    from benchmarks.training_loop import matmul_gflops

    print(f"machine: {os.cpu_count()} CPUs, matmul {matmul_gflops():.0f} GFLOP/s (float32)")
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        folder = Path(tmp)
        if args.model_uri:
            model_uri, tracking_uri = (
                args.model_uri,
                args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""),
            )
        else:
            print("training a tiny SST-2 model (1 epoch, 2,000 examples) ...", flush=True)
            model_uri, tracking_uri = train_model(glue_dir, folder)
        port = free_port()
        env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # uvicorn
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            model_uri,
            "--env-manager",
            "local",
        ]
        command += ["-h", "127.0.0.1", "-p", str(port), "--workers", str(args.workers)]
        server = subprocess.Popen(
            command, env=env, cwd=folder, stdout=open(folder / "server.log", "w"), stderr=subprocess.STDOUT
        )
        try:
            run_load(args, port, server, sentences, folder)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def run_load(args, port: int, server, sentences, folder: Path) -> None:
    deadline = time.time() + 300
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        if server.poll() is not None or time.time() > deadline:
            raise SystemExit(f"the server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
        time.sleep(0.5)
    warm: list = []
    for seed in range(4):  # warm-up: every kind of request, then memory
        client(port, sentences, time.perf_counter() + 5, 1000 + seed, warm)
    time.sleep(1)
    rss_warm = server_rss(server.pid)
    print(
        f"serving {args.workers} worker(s); {args.clients} clients for {args.seconds:.0f} s ...", flush=True
    )
    results: list = []
    started = time.perf_counter()
    threads = [
        threading.Thread(target=client, args=(port, sentences, started + args.seconds, seed, results))
        for seed in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    time.sleep(1)
    rss_end = server_rss(server.pid)
    report(results, elapsed, rss_warm, rss_end)


def report(results, elapsed: float, rss_warm: int, rss_end: int) -> None:
    statuses = Counter((kind, status) for kind, status, _ in results)
    latencies = [seconds * 1000 for _, _, seconds in results]
    valid = [seconds * 1000 for kind, status, seconds in results if kind == "valid" and status == 200]
    print(
        f"requests: {len(results)} in {elapsed:.1f} s, {len(results) / elapsed:.1f} requests/s "
        f"({len(valid) / elapsed:.1f} valid answered/s)"
    )
    for name, values in (("all", latencies), ("valid", valid)):
        if values:
            print(
                f"latency {name} (ms): p50 {percentile(values, 50):.0f}, p95 {percentile(values, 95):.0f}, "
                f"p99 {percentile(values, 99):.0f}, max {max(values):.0f}"
            )
    for (kind, status), count in sorted(statuses.items()):
        print(f"  {kind:9s} HTTP {status}: {count}")
    five = sum(c for (_, s), c in statuses.items() if s >= 500 or s == 0)
    bad_not_4xx = sum(c for (k, s), c in statuses.items() if k != "valid" and not 400 <= s < 500)
    valid_not_200 = sum(c for (k, s), c in statuses.items() if k == "valid" and s != 200)
    growth = rss_end / rss_warm - 1
    print(
        f"server memory: {rss_warm / 2**20:.0f} MiB after warm-up, {rss_end / 2**20:.0f} MiB at the end "
        f"({growth:+.1%})"
    )
    checks = {
        "no 5xx or dropped connection": five == 0,
        "every oversized/malformed body a 4xx": bad_not_4xx == 0,
        "every valid body a 200": valid_not_200 == 0,
        "memory at the end within 20% of after warm-up": abs(growth) <= 0.20,
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
