"""From a config to a trained classifier: data, model, pruning, `fit`."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
from tokenizers import Tokenizer

from gated_bert import metric_names as names
from gated_bert.config import GatedBertConfig
from gated_bert.data.batching import EncodedSplit, make_dataset, sorted_eval
from gated_bert.data.glue import TaskData, load_task
from gated_bert.data.tokenizer import encode, load_tokenizer, prepare, train_wordpiece, training_texts
from gated_bert.model import build_model
from gated_bert.pruning import methods
from gated_bert.pruning.callback import PruningCallback
from gated_bert.pruning.pruner import Pruner
from gated_bert.tasks import Task
from gated_bert.training.callbacks import (
    EpochCheckpoint,
    EpochEndHook,
    EpochTimer,
    Evaluation,
    HistoryRecorder,
    NanGuard,
    ProgressFile,
)
from gated_bert.training.trainer import PruningTrainer

log = logging.getLogger("gated_bert")


@dataclass
class PreparedData:
    """Everything the data side produces for a run."""

    data: TaskData
    tokenizer: Tokenizer
    train: EncodedSplit
    evals: dict[str, EncodedSplit]

    @property
    def task(self) -> Task:
        return self.data.task


@dataclass
class FitResult:
    classifier: keras.Model
    rows: list[dict[str, float]]
    pruner: Pruner | None


def prepare_data(config: GatedBertConfig, full: TaskData | None = None) -> PreparedData:
    """Load the task (unless given), get a tokenizer, encode every split.

    The tokenizer is trained on the whole training split; max_train_samples
    and max_eval_samples then cut the splits. Raises DataError on bad input.
    """
    if full is None:
        full = load_task(config.task, config.data_dir)
    if config.tokenizer:
        tokenizer = load_tokenizer(config.tokenizer, config.vocab_size)
    else:
        tokenizer = train_wordpiece(training_texts(full.train), config.vocab_size)
    tokenizer = prepare(tokenizer, config.max_len)
    data = TaskData(
        full.task,
        full.train.head(config.max_train_samples),
        {name: split.head(config.max_eval_samples) for name, split in full.evals.items()},
        full.source,
    )

    def encoded(split) -> EncodedSplit:
        token_ids, segment_ids = encode(tokenizer, split)
        return EncodedSplit(token_ids, segment_ids, split.labels)

    return PreparedData(data, tokenizer, encoded(data.train), {n: encoded(s) for n, s in data.evals.items()})


def build_classifier(config: GatedBertConfig, task: Task) -> keras.Model:
    return build_model(
        config.architecture(),
        task.num_outputs,
        dropout_rate=config.dropout_rate,
        with_scores=methods.needs_scores(config.pruning_method),
    )


def task_loss(task: Task):
    if task.is_regression:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def eval_datasets(prepared: PreparedData, batch_size: int) -> dict:
    """Eval split name -> (dataset sorted by length, labels in that order)."""
    out = {}
    for name, split in prepared.evals.items():
        dataset, order = sorted_eval(split, batch_size)
        out[name] = (dataset, split.labels[order])
    return out


def fit(
    config: GatedBertConfig,
    prepared: PreparedData,
    on_epoch_end=None,
    checkpoint_dir: Path | None = None,
    progress_file: Path | None = None,
) -> FitResult:
    """Train `config`'s model on `prepared` data; returns the per-epoch rows.

    Args:
        config: the run's configuration.
        prepared: encoded data from `prepare_data`.
        on_epoch_end: optional `fn(row)` called with each epoch's row.
        checkpoint_dir: where per-epoch weights go (None: no checkpoints).
        progress_file: where to write live progress JSON (None: nowhere).
    """
    keras.utils.set_random_seed(config.seed)
    task = prepared.task
    classifier = build_classifier(config, task)
    train_ds = make_dataset(prepared.train, config.batch_size, seed=config.seed, shuffle=True)
    steps_per_epoch = prepared.train.num_batches(config.batch_size)
    pruner = Pruner(config, classifier, steps_per_epoch) if config.enable_pruning else None
    trainer = PruningTrainer(classifier, task_loss(task), pruner=pruner)
    trainer.compile(
        optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay),
        loss=task_loss(task),
        metrics=[] if task.is_regression else ["accuracy"],
    )
    recorder = HistoryRecorder(classifier)
    run_callbacks: list[keras.callbacks.Callback] = [NanGuard(), EpochTimer(len(prepared.train))]
    if pruner is not None:
        run_callbacks.append(PruningCallback(pruner))  # before evaluation: eval sees new masks
    run_callbacks.append(Evaluation(classifier, task, eval_datasets(prepared, config.batch_size)))
    if checkpoint_dir is not None:
        run_callbacks.append(EpochCheckpoint(classifier, checkpoint_dir))
    run_callbacks.append(recorder)
    if on_epoch_end is not None:
        run_callbacks.append(EpochEndHook(recorder, on_epoch_end))
    if progress_file is not None:
        run_callbacks.append(
            ProgressFile(progress_file, config.epochs, steps_per_epoch, names.eval_metric(task.main_metric))
        )
    verbose = 0 if config.verbose == 0 else (1 if sys.stdout.isatty() else 2)
    trainer.fit(train_ds, epochs=config.epochs, callbacks=run_callbacks, verbose=verbose, shuffle=False)
    return FitResult(classifier, recorder.rows, pruner)
