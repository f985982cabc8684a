"""Predictions from raw text with a trained classifier and its tokenizer (no MLflow here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gated_bert.config import GatedBertConfig
from gated_bert.data.batching import EncodedSplit, sorted_eval
from gated_bert.data.glue import Split
from gated_bert.data.tokenizer import encode
from gated_bert.metrics import predictions_from_outputs
from gated_bert.tasks import TASKS, Task


def predict_outputs(classifier, tokenizer, text_a, text_b=None, batch_size: int = 64) -> np.ndarray:
    """Model outputs (logits or scores) for texts, in input order."""
    split = Split(list(text_a), None if text_b is None else list(text_b), np.zeros(len(text_a)), "input")
    token_ids, segment_ids = encode(tokenizer, split)
    encoded = EncodedSplit(token_ids, segment_ids, np.zeros(len(token_ids), dtype=np.int64))
    if not len(encoded):
        return np.zeros((0, classifier.output_shape[-1]), dtype=np.float32)
    dataset, order = sorted_eval(encoded, batch_size)
    outputs = classifier.predict(dataset, verbose=0)
    unsorted = np.empty_like(outputs)
    unsorted[order] = outputs
    return unsorted


class TextPredictor:
    """A saved run's model, tokenizer and config, answering DataFrames of text.

    Input columns are the task's hub columns (e.g. `sentence`, or `sentence1`
    and `sentence2`). Output: class ids, or scores for stsb.
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
        classifier = keras.saving.load_model(str(model_path), custom_objects=CUSTOM_OBJECTS)
        tokenizer = prepare(Tokenizer.from_file(str(tokenizer_path)), config.max_len)
        return cls(classifier, tokenizer, config)

    def predict(self, frame) -> np.ndarray:
        frame = pd.DataFrame(frame)
        col_a, col_b = self.task.hub_columns
        outputs = predict_outputs(
            self.classifier,
            self.tokenizer,
            frame[col_a].astype(str).tolist(),
            frame[col_b].astype(str).tolist() if col_b else None,
        )
        return predictions_from_outputs(self.task, outputs)
