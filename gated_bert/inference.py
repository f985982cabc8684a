"""Predictions from raw text with a trained classifier and its tokenizer."""

from __future__ import annotations

import numpy as np

from gated_bert.data.batching import EncodedSplit, make_dataset, sorted_order
from gated_bert.data.glue import Split
from gated_bert.data.tokenizer import encode


def predict_outputs(classifier, tokenizer, text_a, text_b=None, batch_size: int = 64) -> np.ndarray:
    """Model outputs (logits or scores) for texts, in input order."""
    split = Split(list(text_a), None if text_b is None else list(text_b), np.zeros(len(text_a)), "input")
    token_ids, segment_ids = encode(tokenizer, split)
    encoded = EncodedSplit(token_ids, segment_ids, np.zeros(len(token_ids), dtype=np.int64))
    if not len(encoded):
        return np.zeros((0, classifier.output_shape[-1]), dtype=np.float32)
    order = np.concatenate(sorted_order(encoded.lengths, batch_size))
    outputs = classifier.predict(make_dataset(encoded, batch_size, shuffle=False), verbose=0)
    unsorted = np.empty_like(outputs)
    unsorted[order] = outputs
    return unsorted
