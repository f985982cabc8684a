"""From a config to a trained classifier: data, model, pruning, `fit`."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gated_bert import metric_names as names
from gated_bert.config import GatedBertConfig
from gated_bert.data.batching import bucketed_order, make_dataset, padding_share, sorted_eval
from gated_bert.data.prepare import PreparedData
from gated_bert.model import build_model, sparse_row_variables
from gated_bert.pretrained.load import load_into
from gated_bert.pretrained.resolve import checkpoint_of
from gated_bert.pruning import methods
from gated_bert.pruning.callback import PruningCallback
from gated_bert.pruning.pruner import Pruner
from gated_bert.tasks import Task
from gated_bert.training import checkpoint
from gated_bert.training.callbacks import (
    LOSS_CHECK,
    EpochCheckpoint,
    EpochEndHook,
    EpochTimer,
    Evaluation,
    HistoryRecorder,
    NanGuard,
    ProgressFile,
    TrainingDivergedError,
    diverged,
)
from gated_bert.training.distillation import DistillationLoss
from gated_bert.training.fused_adam import FusedAdamW
from gated_bert.training.lr_schedule import make_learning_rate
from gated_bert.training.settings import resolved_config, training_config
from gated_bert.training.trainer import PruningTrainer

log = logging.getLogger("gated_bert")


@dataclass
class FitResult:
    classifier: keras.Model
    rows: list[dict[str, float]]
    pruner: Pruner | None
    padding_share: float = 0.0  # of the first epoch's training batches


EVAL_BATCH_SIZE = 512  # evaluation keeps no activations for a backward pass: large batches are cheap
XLA_WIDTH_MULTIPLE = 8  # with XLA, batch widths are multiples of this: a bounded set of compiled shapes


def use_xla(config: GatedBertConfig) -> bool:
    """jit_compile auto: XLA only with a GPU (on CPU it measured slower; benchmarks/training_loop.py),
    never for SPT (its probe's varying shapes do not compile)."""
    if config.jit_compile == "auto":
        return bool(tf.config.list_physical_devices("GPU")) and methods.compiles_with_xla(
            config.pruning_method
        )
    return config.jit_compile == "true"


def build_classifier(config: GatedBertConfig, task: Task, pretrained: bool = True) -> keras.Model:
    """The gated classifier of `config`; with init_from (and `pretrained`), holding the
    checkpoint's weights (a resumed run skips that: its checkpoint overwrites them)."""
    config = resolved_config(config)  # the run's config is resolved already: then nothing changes
    classifier = build_model(
        config.architecture(),
        task.num_outputs,
        dropout_rate=config.dropout_rate,
        with_scores=methods.needs_scores(config.pruning_method),
    )
    checkpoint = checkpoint_of(config)
    if checkpoint is not None and pretrained:
        load_into(classifier, checkpoint)
    return classifier


def task_loss(task: Task):
    if task.is_regression:
        return keras.losses.MeanSquaredError()
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def eval_datasets(prepared: PreparedData, batch_size: int = EVAL_BATCH_SIZE) -> dict:
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
    resume_from: Path | None = None,
) -> FitResult:
    """Train `config`'s model on `prepared` data; returns the per-epoch rows.

    Args:
        config: the run's configuration (resolved by `training_config` unless it is already).
        prepared: encoded data from `prepare_data`; with `teacher_outputs`, distil (`distillation.py`).
        on_epoch_end: optional `fn(row)` called with each epoch's row.
        checkpoint_dir: where per-epoch checkpoints go (None: no checkpoints).
        progress_file: where to write live progress JSON (None: nowhere).
        resume_from: an epoch checkpoint folder to continue from (its epoch's successor on).
    """
    config = training_config(config, prepared)  # already resolved when run.train calls
    keras.utils.set_random_seed(config.seed)
    classifier = build_classifier(config, prepared.task, pretrained=resume_from is None)
    xla = use_xla(config)
    steps_per_epoch = prepared.train.num_batches(config.batch_size)
    pruner = Pruner(config, classifier, steps_per_epoch) if config.enable_pruning else None
    trainer = _compiled_trainer(config, classifier, pruner, prepared, xla, steps_per_epoch)
    recorder = HistoryRecorder(classifier)
    pruning = PruningCallback(pruner) if pruner is not None else None
    first_epoch = _restore(resume_from, classifier, trainer, recorder, pruning) if resume_from else 0
    outputs = Outputs(on_epoch_end, checkpoint_dir, progress_file)
    run_callbacks = _callbacks(prepared, classifier, pruning)
    run_callbacks += _output_callbacks(config, prepared, trainer, recorder, pruning, steps_per_epoch, outputs)
    width = dict(width_multiple=XLA_WIDTH_MULTIPLE if xla else 1, max_width=config.max_len)
    train_ds = make_dataset(
        prepared.train,
        config.batch_size,
        seed=config.seed,
        shuffle=True,
        first_epoch=first_epoch,
        repeat=True,  # one iterator for the run (with steps_per_epoch)
        targets=prepared.teacher_outputs,
        **width,
    )
    verbose = 0 if config.verbose == 0 else (1 if sys.stdout.isatty() else 2)
    try:
        trainer.fit(
            train_ds,
            epochs=config.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=run_callbacks,
            verbose=verbose,
            shuffle=False,
        )
    except tf.errors.InvalidArgumentError as err:
        if LOSS_CHECK not in err.message:
            raise
        raise _diverged_at(err.message, int(trainer.optimizer.iterations.numpy()), steps_per_epoch) from None
    padding = train_padding_share(config, prepared, width["width_multiple"])
    return FitResult(classifier, recorder.rows, pruner, padding)


def _diverged_at(message: str, steps_done: int, steps_per_epoch: int) -> TrainingDivergedError:
    """The error for the train step's failed loss check; the failing batch is the one after `steps_done`."""
    value = "inf" if "Inf values" in message else "nan"
    epoch, batch = divmod(steps_done, steps_per_epoch)
    return diverged(value, f"at batch {batch + 1} of epoch {epoch + 1}")


@dataclass(frozen=True)
class Outputs:
    """Where a fit reports: a per-epoch hook, checkpoints, live progress."""

    on_epoch_end: object = None
    checkpoint_dir: Path | None = None
    progress_file: Path | None = None


def _restore(folder: Path, classifier, trainer, recorder: HistoryRecorder, pruning) -> int:
    """Load a checkpoint into the fresh model and trainer; returns the epochs already done."""
    state = checkpoint.restore(folder, classifier, trainer)
    recorder.rows = list(state.rows)
    if pruning is not None:
        pruning.load_state(state.pruning_step, state.current_target, state.method_state)
    return state.epoch


def train_padding_share(config: GatedBertConfig, prepared: PreparedData, width_multiple: int = 1) -> float:
    """Share of padding in the first epoch's training batches (the others are alike)."""
    lengths = prepared.train.lengths
    batches = bucketed_order(lengths, config.batch_size, np.random.default_rng([config.seed, 0]))
    return padding_share(lengths, batches, width_multiple, config.max_len)


def training_loss(config: GatedBertConfig, task: Task, distilling: bool):
    """The task loss, or with a teacher's outputs the distillation loss around it."""
    if not distilling:
        return task_loss(task)
    return DistillationLoss(
        task_loss(task), task.is_regression, config.distill_alpha, config.distill_temperature
    )


def _compiled_trainer(
    config: GatedBertConfig, classifier, pruner, prepared: PreparedData, xla: bool, steps_per_epoch: int
) -> PruningTrainer:
    task = prepared.task
    lazy = sparse_row_variables(classifier) if config.embedding_updates == "lazy" else ()
    trainer = PruningTrainer(
        classifier,
        training_loss(config, task, prepared.teacher_outputs is not None),
        pruner=pruner,
        lazy_variables=lazy,
        matmul_precision=config.matmul_precision,  # resolved by fit
    )
    trainer.compile(
        optimizer=FusedAdamW(make_learning_rate(config, steps_per_epoch), weight_decay=config.weight_decay),
        loss=task_loss(task),
        metrics=[] if task.is_regression else ["accuracy"],
        jit_compile=xla,
    )
    return trainer


def _callbacks(prepared: PreparedData, classifier, pruning) -> list:
    """Training-side callbacks, in the order they must run at epoch end."""
    run_callbacks: list[keras.callbacks.Callback] = [NanGuard(), EpochTimer(len(prepared.train))]
    if pruning is not None:
        run_callbacks.append(pruning)  # before evaluation: eval sees new masks
    run_callbacks.append(Evaluation(classifier, prepared.task, eval_datasets(prepared)))
    return run_callbacks


def _output_callbacks(
    config, prepared, trainer, recorder, pruning, steps_per_epoch, outputs: Outputs
) -> list:
    """Record the epoch's row, commit its checkpoint, then report it (hook, live progress)."""
    out: list[keras.callbacks.Callback] = [recorder]
    if outputs.checkpoint_dir is not None:
        out.append(EpochCheckpoint(recorder.classifier, trainer, outputs.checkpoint_dir, recorder, pruning))
    if outputs.on_epoch_end is not None:
        out.append(EpochEndHook(recorder, outputs.on_epoch_end))
    if outputs.progress_file is not None:
        metric = names.eval_metric(prepared.task.main_metric)
        out.append(ProgressFile(outputs.progress_file, config.epochs, steps_per_epoch, metric))
    return out
