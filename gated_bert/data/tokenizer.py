"""An offline tokenizer: WordPiece trained on the task's own training text.

The trained vocabulary is cached on disk, keyed by a hash of everything it
depends on (texts, vocabulary size, lowercasing, algorithm version), so the
second run of a task loads it in milliseconds. A given `vocab.txt`,
`tokenizer.json` or hub name replaces it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer
from tokenizers.processors import TemplateProcessing

from gated_bert.data.glue import Split
from gated_bert.errors import DataError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID = 0
_ALGORITHM_VERSION = "wordpiece-lower-v1"


def cache_dir() -> Path:
    """`$GATED_BERT_CACHE/tokenizers`, default `~/.cache/gated_bert/tokenizers`."""
    root = os.environ.get("GATED_BERT_CACHE") or Path.home() / ".cache" / "gated_bert"
    return Path(root) / "tokenizers"


def tokenizer_key(texts: list[str], vocab_size: int) -> str:
    digest = hashlib.sha256(f"{_ALGORITHM_VERSION}|{vocab_size}|{len(texts)}".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:24]


def training_texts(split: Split) -> list[str]:
    return split.text_a + (split.text_b or [])


def train_wordpiece(texts: list[str], vocab_size: int) -> Tokenizer:
    """Train (or load from the cache) a lowercase WordPiece tokenizer on `texts`.

    The `tokenizers` trainer is not deterministic (its `##` subword ids follow a hash map's
    order and break ties between merges: huggingface/tokenizers#1794), so two trainings on
    the same texts can differ. The first tokenizer committed to the cache is the one every
    later or concurrent run on this machine uses; a run also keeps its own copy for --resume.
    """
    path = cache_dir() / f"{tokenizer_key(texts, vocab_size)}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    wordpiece.save(str(tmp))
    try:
        os.link(tmp, path)  # atomic and first writer wins: a concurrent run's tokenizer is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return Tokenizer.from_file(str(path))


def load_tokenizer(spec: str, vocab_size: int | None, lowercase: bool = True) -> Tokenizer:
    """Load a tokenizer from a vocab.txt (lowercasing as `lowercase` says), a tokenizer.json or a
    hub name (at most vocab_size entries, if given)."""
    path = Path(spec)
    if path.suffix == ".txt" or path.name == "vocab.txt":
        if not path.is_file():
            raise DataError(f"tokenizer vocabulary {spec!r} does not exist; pass an existing vocab.txt")
        try:
            tokenizer = BertWordPieceTokenizer(str(path), lowercase=lowercase)._tokenizer
        except Exception as err:  # not a BERT vocabulary: missing [SEP]/[CLS], not text, ...
            raise DataError(
                f"cannot read tokenizer vocabulary {spec!r} ({err}); pass a BERT vocab.txt with one "
                "token per line and the [PAD] [UNK] [CLS] [SEP] [MASK] tokens"
            ) from None
    elif path.suffix == ".json":
        if not path.is_file():
            raise DataError(f"tokenizer file {spec!r} does not exist; pass an existing tokenizer.json")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:
            raise DataError(f"cannot read tokenizer {spec!r}: {err}") from None
    else:
        try:
            tokenizer = Tokenizer.from_pretrained(spec)
        except Exception as err:
            raise DataError(
                f"cannot load tokenizer {spec!r} from the hub ({' '.join(str(err).split())[:160]}); "
                "pass a local vocab.txt or tokenizer.json, or omit --tokenizer to train one"
            ) from None
    if vocab_size is not None and tokenizer.get_vocab_size() > vocab_size:
        raise DataError(
            f"tokenizer {spec!r} has {tokenizer.get_vocab_size()} tokens but vocab_size is "
            f"{vocab_size}; raise --vocab-size"
        )
    return tokenizer


def prepare(tokenizer: Tokenizer, max_len: int) -> Tokenizer:
    """Set [CLS] a [SEP] b [SEP] encoding with segment ids and truncation at max_len."""
    ids = {tok: tokenizer.token_to_id(tok) for tok in ("[PAD]", "[CLS]", "[SEP]")}
    missing = [tok for tok, i in ids.items() if i is None]
    if missing:
        raise DataError(f"tokenizer lacks special token(s) {missing}; use a BERT-style vocabulary")
    if ids["[PAD]"] != PAD_ID:
        raise DataError(f"tokenizer's [PAD] id is {ids['[PAD]']}, expected {PAD_ID}")
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    tokenizer.enable_truncation(max_length=max_len)
    tokenizer.no_padding()
    return tokenizer


def encode(tokenizer: Tokenizer, split: Split) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Token ids and segment ids of every example (unpadded)."""
    if split.text_b is None:
        encodings = tokenizer.encode_batch(split.text_a)
    else:
        encodings = tokenizer.encode_batch(list(zip(split.text_a, split.text_b)))
    token_ids = [np.asarray(e.ids, dtype=np.int32) for e in encodings]
    segment_ids = [np.asarray(e.type_ids, dtype=np.int32) for e in encodings]
    return token_ids, segment_ids
