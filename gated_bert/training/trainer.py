"""`PruningTrainer`: wraps the classifier with a train step that knows about gates.

The classifier stays a plain functional model (that is what gets saved and
served); the trainer adds, inside the compiled step, what the pruning method
asks for:
- its extra variables (movement's scores), trained by an Adam the trainer builds at the
  method's learning rate,
- its train-step hook (SPT's probe), run after the gradients are taken and
  before they are applied, so both losses see the same weights; the hook can
  repeat the training pass with the same dropout draws (`repeat_loss`);
- for a method that ranks in the graph (`ranks_in_graph`) and re-ranks after
  every step (movement's default), the ranking itself, after the optimizer update: the
  Pruner's `ScheduleCursor` says on the host (`tf.numpy_function`) whether a
  target is due; if one is, the method's `ranking_values` (computed in the
  graph) go to the host, the `Pruner` ranks, and the masks are assigned in the step.
  Ranked between steps instead, each step pays two more calls into TensorFlow
  and the host's wait for them (docs/training.md, "The ranking inside the train
  step").
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gated_bert.pruning.callback import PruningCallback
from gated_bert.training import dropout_replay
from gated_bert.training.callbacks import LOSS_CHECK
from gated_bert.training.fused_adam import FusedAdam
from gated_bert.training.lazy_adamw import LazyAdamW
from gated_bert.training.precision import matmul_dtype


class PruningTrainer(keras.Model):
    """Trains `classifier`; `pruner` (or None for the baseline) supplies the method's hooks.

    Args:
        classifier: the gated model.
        loss_fn: the task loss (logits or regression output), or a `DistillationLoss` when the
            batches' labels are (labels, teacher outputs).
        pruner: the run's Pruner, or None.
        lazy_variables: embedding tables updated row-wise by `LazyAdamW` (only the
            rows a batch touches) instead of by the main optimizer.
        matmul_precision: float32, or bfloat16 for the gated kernels' matmuls in the
            train step only (`training/precision.py`; evaluation stays float32).
    """

    def __init__(
        self,
        classifier: keras.Model,
        loss_fn,
        pruner=None,
        lazy_variables=(),
        matmul_precision: str = "float32",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.matmul_precision = matmul_precision
        self.classifier = classifier
        self.loss_fn = loss_fn
        self.pruner = pruner
        self.method = pruner.method if pruner is not None else None
        self.extra_variables = self.method.extra_variables() if self.method is not None else []
        self.lazy_variables = list(lazy_variables)
        apart = {id(v) for v in self.extra_variables + self.lazy_variables}
        self.weight_variables = [v for v in classifier.trainable_variables if id(v) not in apart]
        self.extra_optimizer = self.method.extra_optimizer(FusedAdam) if self.extra_variables else None
        self.lazy_updates: list[LazyAdamW] = []
        self.ranking_in_step = False  # set by fit (`ranks_in_step`)
        self._due_target = None  # the target `_due_on_host` found due after this step
        # what a method's step hook is given: each prunable kernel's gradient (by its position
        # among the weight gradients) and the training pass repeated with the same dropout draws
        self.hooked = self.method is not None and self.method.has_step_hook
        position = {id(v): i for i, v in enumerate(self.weight_variables)}
        kernels = self.method.kernels if self.hooked else []
        self.kernel_positions = [position.get(id(k.layer.kernel)) for k in kernels]
        self.dropout_states = dropout_replay.dropout_states(classifier) if self.hooked else []

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        if self.lazy_variables and not isinstance(
            self.optimizer, keras.optimizers.Adam | keras.optimizers.AdamW
        ):
            raise ValueError(
                f"lazy embedding updates need Adam or AdamW, got {type(self.optimizer).__name__}"
            )
        self.lazy_updates = [LazyAdamW(self.optimizer, v) for v in self.lazy_variables]
        # the optimizer's variables exist before the first step: an XLA-compiled step cannot
        # create them (not under the loss check's control dependency either)
        self.optimizer.build(self.weight_variables)

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def fit(self, *args, callbacks=None, **kwargs):
        pruning = [c for c in callbacks or [] if isinstance(c, PruningCallback)]
        if self.pruner is not None and not pruning:
            raise RuntimeError(
                "PruningTrainer has a pruner but no PruningCallback: pass "
                "callbacks=[PruningCallback(pruner), ...] to fit(), or the masks never change"
            )
        self.ranking_in_step = self.ranks_in_step  # decided once per fit, before the step is traced
        if self.pruner is not None:
            self.pruner.cursor.ranked_in_step = self.ranking_in_step  # the callback stands aside then
        return super().fit(*args, callbacks=callbacks, **kwargs)

    @property
    def ranks_in_step(self) -> bool:
        """Whether the train step ranks: the method re-ranks after every step from its ranking
        variables, one step per call, and the step is not compiled by XLA (which cannot call
        the host)."""
        return (
            self.pruner is not None
            and self.pruner.ranks_every_step
            and not self.jit_compile
            and self.steps_per_execution == 1
        )

    def train_step(self, data):
        low = None if self.matmul_precision == "float32" else self.matmul_precision
        with matmul_dtype(self.classifier, low):  # read while the step is traced
            return self._train_step(data)

    def _train_step(self, data):
        x, y = data  # y: the labels, or (labels, teacher outputs) for a distillation loss
        labels = y[0] if isinstance(y, tuple | list) else y
        # the dropout layers' random states before the pass, for a method's hook to repeat it
        hooked = self.hooked
        dropout_draws = dropout_replay.capture(self.dropout_states) if hooked else []
        with tf.GradientTape() as tape:
            y_pred = self.classifier(x, training=True)
            # stops fit at the first non-finite loss, inside the step: no per-batch host round trip
            loss = tf.debugging.check_numerics(self.loss_fn(y, y_pred), LOSS_CHECK)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(labels)[0])
        gradients = tape.gradient(loss, self.weight_variables + self.extra_variables + self.lazy_variables)
        if hooked:
            kernel_gradients = (
                None if None in self.kernel_positions else [gradients[i] for i in self.kernel_positions]
            )

            def repeat_loss():
                """The training pass again with the current masks and the same dropout draws."""
                dropout_replay.restore(self.dropout_states, dropout_draws)
                return self.loss_fn(y, self.classifier(x, training=True))

            self.method.train_step_hook(repeat_loss, loss, kernel_gradients)
        n_weights, n_extra = len(self.weight_variables), len(self.extra_variables)
        with tf.control_dependencies([loss]):  # no update from a batch whose loss check failed
            for lazy, gradient in zip(self.lazy_updates, gradients[n_weights + n_extra :]):
                lazy.apply(gradient)  # before the main optimizer: both use its step count + 1
            self.optimizer.apply(gradients[:n_weights], self.weight_variables)
            if self.extra_optimizer is not None:
                self.extra_optimizer.apply(gradients[n_weights : n_weights + n_extra], self.extra_variables)
        if self.ranking_in_step:
            self._rank()
        return self.compute_metrics(x, labels, y_pred)

    def _rank(self) -> None:
        """The mask update due after this step, if any (stateful ops run in program order, so
        this comes after the updates): the host says whether one is due; only then are the
        method's ranking values computed and sent, and the masks come back."""
        due = tf.ensure_shape(tf.numpy_function(self._due_on_host, [], tf.bool, stateful=True), [])
        tf.cond(due, self._rank_now, lambda: None)

    def _rank_now(self) -> None:
        flat = tf.numpy_function(self._masks_on_host, self.method.ranking_values(), tf.bool, stateful=True)
        self.pruner.writer.assign(flat)

    def _due_on_host(self):
        """Whether a mask update is due after this step, on the host (its target kept for
        `_masks_on_host`)."""
        self._due_target = self.pruner.cursor.due_after_step()
        return np.bool_(self._due_target is not None)

    def _masks_on_host(self, *values):
        """The flat masks at the due target from the ranking values, on the host."""
        return self.pruner.flat_masks_of(list(values), self._due_target)
