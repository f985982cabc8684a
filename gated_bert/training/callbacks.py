"""Keras callbacks of a training run (no tracking code here)."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import keras
import numpy as np

from gated_bert import metric_names as names
from gated_bert.metrics import compute_metrics, loss_from_outputs
from gated_bert.model import sparsity_report
from gated_bert.tasks import Task
from gated_bert.training import checkpoint


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


DIVERGED_FIX = "lower --learning-rate or raise --batch-size"
LOSS_CHECK = "gated_bert training loss"  # names the train step's in-graph finiteness check


def diverged(value: str, where: str) -> TrainingDivergedError:
    return TrainingDivergedError(f"training loss became {value} {where}; {DIVERGED_FIX}")


class NanGuard(keras.callbacks.Callback):
    """Stops the run with a clear error at the end of an epoch whose mean loss is not finite.

    The train step itself checks its loss in the graph (`LOSS_CHECK`) and stops
    at the first bad batch without a per-batch host round trip; under XLA that
    check compiles to nothing, so this epoch-end check is what remains.
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise diverged(str(float(loss)), f"in epoch {epoch + 1}")


class EpochTimer(keras.callbacks.Callback):
    """Adds epoch_seconds and examples_per_second (training only) to the logs."""

    def __init__(self, num_examples: int):
        super().__init__()
        self.num_examples = num_examples
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        if logs is not None:
            logs[names.EPOCH_SECONDS] = seconds
            logs[names.EXAMPLES_PER_SECOND] = self.num_examples / seconds if seconds > 0 else 0.0


class Evaluation(keras.callbacks.Callback):
    """Evaluates every eval split after each epoch; adds eval_* and the learning rate to the logs.

    Args:
        classifier: the model to evaluate.
        task: the task (metrics, regression or not).
        eval_sets: split name -> (dataset in sorted order, labels in the same order).
    """

    def __init__(self, classifier: keras.Model, task: Task, eval_sets: dict):
        super().__init__()
        self.classifier = classifier
        self.task = task
        self.eval_sets = eval_sets

    def evaluate(self) -> dict[str, float]:
        results = {}
        for index, (name, (dataset, labels)) in enumerate(self.eval_sets.items()):
            outputs = self.classifier.predict(dataset, verbose=0)
            suffix = "" if index == 0 else f"_{name}"
            results[names.eval_loss(suffix)] = loss_from_outputs(self.task, outputs, labels)
            for metric, value in compute_metrics(self.task, outputs, labels).items():
                results[names.eval_metric(metric, suffix)] = value
        return results

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.update(self.evaluate())
        logs[names.LEARNING_RATE] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EpochCheckpoint(keras.callbacks.Callback):
    """Commits each epoch's resumable checkpoint (before the epoch's metrics are logged).

    Put it after the `HistoryRecorder` (the checkpoint holds the rows so far)
    and before any callback that logs the epoch.
    """

    def __init__(
        self, classifier: keras.Model, trainer, directory: Path, recorder, pruning=None, keep: int = 2
    ):
        super().__init__()
        self.classifier = classifier
        self.trainer = trainer
        self.directory = Path(directory)
        self.recorder = recorder
        self.pruning = pruning
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        state = checkpoint.TrainingState(
            epoch=epoch + 1,
            rows=list(self.recorder.rows),
            method_state=checkpoint.method_plain_state(self.trainer),
            **(self.pruning.state() if self.pruning is not None else {}),
        )
        checkpoint.save(self.directory, self.classifier, self.trainer, state, self.keep)


class HistoryRecorder(keras.callbacks.Callback):
    """Collects one flat row of numbers per epoch (the results CSV), per-layer sparsity included."""

    def __init__(self, classifier: keras.Model):
        super().__init__()
        self.classifier = classifier
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch, logs=None):
        report = sparsity_report(self.classifier)  # once per epoch; the totals go to the logs too
        if logs is not None:
            logs[names.SPARSITY] = report[names.SPARSITY]
            logs[names.SPARSITY_ALL_PARAMS] = report[names.SPARSITY_ALL_PARAMS]
        row: dict[str, float] = {names.EPOCH: epoch + 1}
        for key, value in (logs or {}).items():
            row[names.KERAS_TRAIN_NAMES.get(key, key)] = float(np.asarray(value))
        row.update(report)
        self.rows.append(row)


class EpochEndHook(keras.callbacks.Callback):
    """Calls `fn(row)` with the recorder's newest row after each epoch (tracking, sweeps)."""

    def __init__(self, recorder: HistoryRecorder, fn):
        super().__init__()
        self.recorder = recorder
        self.fn = fn

    def on_epoch_end(self, epoch, logs=None):
        self.fn(self.recorder.rows[-1])


class ProgressFile(keras.callbacks.Callback):
    """Writes the run's progress as JSON (atomically) for a parent process to show.

    Fields: epoch, epochs, step, steps, metric (name), value, sparsity. Written at
    most every `interval` seconds during an epoch, and after every epoch. Safe
    for Keras' asynchronous batch-end dispatch (one writer at a time), so it
    does not make Keras wait for every batch's logs.
    """

    async_safe = True

    def __init__(self, path: Path, epochs: int, steps: int, metric: str, interval: float = 0.5):
        super().__init__()
        self.path = Path(path)
        self.state = {
            "epoch": 0,
            "epochs": epochs,
            "step": 0,
            "steps": steps,
            "metric": metric,
            "value": None,
            "sparsity": 0.0,
        }
        self.interval = interval
        self._last = 0.0
        self._lock = threading.RLock()  # _write takes it too

    def _write(self) -> None:
        with self._lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            os.replace(tmp, self.path)

    def on_epoch_begin(self, epoch, logs=None):
        self.state.update(epoch=epoch + 1, step=0)
        self._write()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        with self._lock:
            self.state["step"] = max(self.state["step"], batch + 1)  # calls may finish out of order
            if now - self._last >= self.interval:
                self._last = now
                self._write()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.state["metric"])
        self.state.update(
            step=self.state["steps"],
            value=None if value is None else float(value),
            sparsity=float(logs.get(names.SPARSITY, self.state["sparsity"])),
        )
        self._write()
