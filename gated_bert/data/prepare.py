"""Encoded task data for a run: load, tokenize, cut, encode (`prepare_data`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from gated_bert.architecture import BERT_VOCAB_SIZE
from gated_bert.config import GatedBertConfig
from gated_bert.data.batching import EncodedSplit
from gated_bert.data.glue import TaskData, load_task
from gated_bert.data.tokenizer import encode, load_tokenizer, prepare, train_wordpiece, training_texts
from gated_bert.errors import DataError
from gated_bert.pretrained.resolve import checkpoint_of
from gated_bert.tasks import Task


@dataclass
class PreparedData:
    """Everything the data side produces for a run."""

    data: TaskData
    tokenizer: Tokenizer
    train: EncodedSplit
    evals: dict[str, EncodedSplit]
    teacher_outputs: np.ndarray | None = None  # a teacher's outputs per training example (distillation)

    @property
    def task(self) -> Task:
        return self.data.task


_PREPARED: dict[tuple, PreparedData] = {}  # encoded data of this process: sweep trials in a worker share it
_PREPARED_MAX = 2


def prepare_data(config: GatedBertConfig, full: TaskData | None = None) -> PreparedData:
    """Load the task (unless given), get a tokenizer, encode every split.

    The tokenizer is trained on the whole training split; max_train_samples
    and max_eval_samples then cut the splits. Raises DataError on bad input.
    The result is kept for the process's next runs on the same data and data
    settings (sweep trials in one worker encode their data once).
    """
    if full is None:
        full = load_task(config.task, config.data_dir)
    key = (
        full.source,
        config.task,
        len(full.train),
        tuple((name, len(split)) for name, split in full.evals.items()),
        config.tokenizer,
        config.init_from,
        config.vocab_size,
        config.max_len,
        config.max_train_samples,
        config.max_eval_samples,
    )
    if key not in _PREPARED:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = _encode_task(config, full)
    return _PREPARED[key]


def run_tokenizer(config: GatedBertConfig, full: TaskData) -> Tokenizer:
    """The run's tokenizer: --tokenizer, else the init_from checkpoint's (never retrained), else a
    WordPiece vocabulary trained on the task's training text."""
    checkpoint = checkpoint_of(config)
    if config.tokenizer:
        tokenizer = load_tokenizer(config.tokenizer, config.vocab_size)
    elif checkpoint is not None:
        tokenizer = load_tokenizer(str(checkpoint.tokenizer_file), None, lowercase=checkpoint.lowercase)
    else:
        return train_wordpiece(training_texts(full.train), config.vocab_size or BERT_VOCAB_SIZE)
    if checkpoint is not None and tokenizer.get_vocab_size() != checkpoint.vocab_size:
        raise DataError(
            f"the tokenizer {str(config.tokenizer or checkpoint.tokenizer_file)!r} has "
            f"{tokenizer.get_vocab_size()} tokens but the checkpoint's embedding has {checkpoint.vocab_size} "
            "rows; pass the checkpoint's own vocab.txt (or omit --tokenizer)"
        )
    return tokenizer


def _encode_task(config: GatedBertConfig, full: TaskData) -> PreparedData:
    tokenizer = prepare(run_tokenizer(config, full), config.max_len)
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
