"""`PruningTrainer`: wraps the classifier with a train step that knows about gates.

The classifier stays a plain functional model (that is what gets saved and
served); the trainer adds, inside the compiled step,
- movement scores updated by their own optimizer and learning rate,
- SPT's probe forward pass after the gradients are taken and before they are
  applied, so L_full and L_probe are measured on the same weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from gated_bert.pruning.callback import PruningCallback


class PruningTrainer(keras.Model):
    """Trains `classifier`; `pruner` (or None for the baseline) supplies the hooks.

    Args:
        classifier: the gated model.
        loss_fn: the task loss (logits or regression output).
        pruner: the run's Pruner, or None.
        scores_learning_rate: learning rate of movement scores.
        eval_mode_full_loss: recompute L_full without dropout for SPT (needed
            when dropout > 0, since the training forward pass is noisy).
    """

    def __init__(
        self,
        classifier: keras.Model,
        loss_fn,
        pruner=None,
        scores_learning_rate: float = 1e-2,
        eval_mode_full_loss: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.loss_fn = loss_fn
        self.pruner = pruner
        self.eval_mode_full_loss = eval_mode_full_loss
        self.explorer = pruner.explorer if pruner is not None else None
        self.score_variables = [v for v in classifier.trainable_variables if v.path.endswith("/scores")]
        score_ids = {id(v) for v in self.score_variables}
        self.weight_variables = [v for v in classifier.trainable_variables if id(v) not in score_ids]
        self.scores_optimizer = None
        if self.score_variables:
            self.scores_optimizer = keras.optimizers.Adam(scores_learning_rate)
            self.scores_optimizer.build(self.score_variables)

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def fit(self, *args, callbacks=None, **kwargs):
        if self.pruner is not None and not any(isinstance(c, PruningCallback) for c in callbacks or []):
            raise RuntimeError(
                "PruningTrainer has a pruner but no PruningCallback: pass "
                "callbacks=[PruningCallback(pruner), ...] to fit(), or the masks never change"
            )
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self.classifier(x, training=True)
            loss = self.loss_fn(y, y_pred)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(y)[0])
        variables = self.weight_variables + self.score_variables
        gradients = tape.gradient(loss, variables)
        if self.explorer is not None:
            full_loss = loss
            if self.eval_mode_full_loss:
                full_loss = self.loss_fn(y, self.classifier(x, training=False))
            self.explorer.probe(lambda: self.loss_fn(y, self.classifier(x, training=False)), full_loss)
        n_weights = len(self.weight_variables)
        self.optimizer.apply(gradients[:n_weights], self.weight_variables)
        if self.scores_optimizer is not None:
            self.scores_optimizer.apply(gradients[n_weights:], self.score_variables)
        return self.compute_metrics(x, y, y_pred)
