"""Predictions from raw text with a trained classifier and its tokenizer (no MLflow here)."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pandas as pd

from gated_bert.config import GatedBertConfig
from gated_bert.data.batching import EncodedSplit, pad_batch, sorted_order
from gated_bert.data.glue import Split
from gated_bert.data.tokenizer import encode
from gated_bert.tasks import TASKS, Task

_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forward_of(classifier):
    """The classifier's compiled inference forward pass: (token_ids, segment_ids) -> outputs."""
    import tensorflow as tf

    if classifier not in _FORWARD:
        _FORWARD[classifier] = tf.function(
            lambda t, s: classifier({"token_ids": t, "segment_ids": s}, training=False), reduce_retracing=True
        )
    return _FORWARD[classifier]


def predict_outputs(classifier, tokenizer, text_a, text_b=None, batch_size: int = 64) -> np.ndarray:
    """Model outputs (logits or scores) for texts, in input order: length-sorted padded batches
    through the compiled forward pass (no tf.data pipeline: its setup costs more than a small batch)."""
    split = Split(list(text_a), None if text_b is None else list(text_b), np.zeros(len(text_a)), "input")
    token_ids, segment_ids = encode(tokenizer, split)
    encoded = EncodedSplit(token_ids, segment_ids, np.zeros(len(token_ids), dtype=np.int64))
    outputs = np.zeros((len(encoded), classifier.output_shape[-1]), dtype=np.float32)
    forward = forward_of(classifier)
    for index in sorted_order(encoded.lengths, batch_size) if len(encoded) else []:
        features, _ = pad_batch(encoded, index)
        outputs[index] = forward(features["token_ids"], features["segment_ids"]).numpy()
    return outputs


MAX_TEXT_CHARS = 20_000  # a longer text is a request error (the model reads max_len tokens anyway)


class InvalidInput(ValueError):
    """A prediction request the model cannot answer; the message says what is wrong and how to fix it."""


def output_columns(task: Task) -> list[tuple[str, str]]:
    """(name, type) of the prediction columns: label id, label name and one probability per
    class; `score` for regression (STS-B)."""
    if task.is_regression:
        return [("score", "double")]
    probabilities = [(f"prob_{name}", "double") for name in task.label_names]
    return [("label", "long"), ("label_name", "string"), *probabilities]


def input_columns(task: Task) -> list[str]:
    return [c for c in task.hub_columns if c]


def example_input(task: Task) -> pd.DataFrame:
    """Two rows of the request a served model takes (logged with the model)."""
    texts = {
        input_columns(task)[0]: ["a gripping, funny and moving film", "dull, and far too long"],
    }
    if task.is_pair:
        texts[input_columns(task)[1]] = ["the film is good", "the film is short"]
    return pd.DataFrame(texts)


def validate_input(task: Task, frame) -> pd.DataFrame:
    """The request as a DataFrame of non-empty text columns; anything else raises InvalidInput."""
    needed = input_columns(task)
    expected = f"send rows with the string column(s) {needed}"
    try:
        frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)
    except (ValueError, TypeError) as err:
        raise InvalidInput(f"the input is not a table ({err}); {expected}") from None
    if len(frame) == 0:
        raise InvalidInput(f"the input has no rows; {expected}")
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InvalidInput(f"missing column(s) {missing} (got {list(map(str, frame.columns))}); {expected}")
    for column in needed:
        for row, value in enumerate(frame[column].tolist()):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                raise InvalidInput(f"row {row}: column {column!r} is null; {expected}")
            if not isinstance(value, str):
                raise InvalidInput(
                    f"row {row}: column {column!r} is {type(value).__name__}, not text; {expected}"
                )
            if len(value) > MAX_TEXT_CHARS:
                raise InvalidInput(
                    f"row {row}: column {column!r} has {len(value)} characters, more than {MAX_TEXT_CHARS}; "
                    "shorten it"
                )
    return frame


def prediction_frame(task: Task, outputs: np.ndarray) -> pd.DataFrame:
    """Model outputs as the served columns (see `output_columns`)."""
    from scipy.special import softmax

    outputs = np.asarray(outputs, dtype=np.float64)
    if task.is_regression:
        return pd.DataFrame({"score": outputs[:, 0]})
    probabilities = softmax(outputs, axis=-1)
    labels = probabilities.argmax(axis=-1).astype(np.int64)
    frame = pd.DataFrame({"label": labels, "label_name": [task.label_names[i] for i in labels]})
    for i, name in enumerate(task.label_names):
        frame[f"prob_{name}"] = probabilities[:, i]
    return frame


class TextPredictor:
    """A saved run's model, tokenizer and config, answering DataFrames of text.

    Input columns are the task's hub columns (e.g. `sentence`, or `sentence1`
    and `sentence2`). Output: a DataFrame with `label`, `label_name` and
    `prob_<name>` per class, or `score` for stsb. A bad request raises InvalidInput.
    """

    def __init__(self, classifier, tokenizer, config: GatedBertConfig):
        self.classifier = classifier
        self.tokenizer = tokenizer
        self.config = config
        self.task: Task = TASKS[config.task]

    @classmethod
    def from_files(cls, model_path: str | Path, tokenizer_path: str | Path, config_path: str | Path):
        import keras
        from tokenizers import Tokenizer

        from gated_bert.data.tokenizer import prepare
        from gated_bert.model import CUSTOM_OBJECTS

        config = GatedBertConfig.from_json(Path(config_path).read_text())
        if Path(model_path).suffix == ".npz":  # a compact export (gated_bert.export)
            from gated_bert.export.compact import CompactModel

            classifier = CompactModel.load(model_path)
        else:
            classifier = keras.saving.load_model(str(model_path), custom_objects=CUSTOM_OBJECTS)
        tokenizer = prepare(Tokenizer.from_file(str(tokenizer_path)), config.max_len)
        return cls(classifier, tokenizer, config)

    def predict(self, frame) -> pd.DataFrame:
        frame = validate_input(self.task, frame)
        col_a, col_b = self.task.hub_columns
        outputs = predict_outputs(
            self.classifier,
            self.tokenizer,
            frame[col_a].tolist(),
            frame[col_b].tolist() if col_b else None,
        )
        return prediction_frame(self.task, outputs)
