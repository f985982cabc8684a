import numpy as np
import tensorflow as tf

from gated_bert.data import tokenizer as tok
from gated_bert.data.batching import EncodedSplit, make_dataset
from gated_bert.data.glue import Split

TEXTS = ["the movie was good", "the plot was bad", "a good good film", "bad acting"] * 5


def test_wordpiece_is_cached_and_keyed_by_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("GATED_BERT_CACHE", str(tmp_path))
    first = tok.train_wordpiece(TEXTS, 100)
    files = list(tok.cache_dir().glob("*.json"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = tok.train_wordpiece(TEXTS, 100)
    assert again.get_vocab() == first.get_vocab()
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not retrained
    tok.train_wordpiece(TEXTS + ["new text"], 100)
    tok.train_wordpiece(TEXTS, 120)
    assert len(list(tok.cache_dir().glob("*.json"))) == 3
    assert first.get_vocab_size() <= 100
    assert first.token_to_id("[PAD]") == 0


def test_pair_encoding_segments_and_truncation():
    t = tok.prepare(tok.train_wordpiece(TEXTS, 100), max_len=8)
    split = Split(["the movie was good"], ["bad acting"], np.array([1]), "x")
    ids, segments = tok.encode(t, split)
    tokens = [t.id_to_token(i) for i in ids[0]]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) <= 8
    sep = tokens.index("[SEP]")
    assert segments[0][: sep + 1].tolist() == [0] * (sep + 1) and set(segments[0][sep + 1 :].tolist()) <= {1}
    full = tok.prepare(tok.train_wordpiece(TEXTS, 100), max_len=32)
    ids, segments = tok.encode(full, split)
    assert [full.id_to_token(i) for i in ids[0]] == [
        "[CLS]",
        "the",
        "movie",
        "was",
        "good",
        "[SEP]",
        "bad",
        "acting",
        "[SEP]",
    ]
    assert segments[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]


def _split(lengths):
    ids = [np.arange(1, n + 1, dtype=np.int32) for n in lengths]
    return EncodedSplit(ids, [np.zeros(n, np.int32) for n in lengths], np.arange(len(lengths)))


def _epoch(dataset):
    return [(x["token_ids"].numpy(), y.numpy()) for x, y in dataset]


def test_batches_padded_to_their_longest_and_cover_every_example():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 60, size=203)
    split = _split(lengths)
    dataset = make_dataset(split, 16, seed=3)
    assert int(dataset.cardinality()) == 13
    batches = _epoch(dataset)
    assert len(batches) == 13
    seen = np.concatenate([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(203))
    for x, y in batches:
        assert x.shape[1] == max(lengths[i] for i in y)  # longest in batch, not max_len
        assert (x[:, 0] == 1).all()
    padded_positions = sum(int((x == 0).sum()) for x, _ in batches)
    assert padded_positions < 0.1 * sum(x.size for x, _ in batches)  # bucketing keeps padding low


def test_shuffling_is_seeded_and_changes_per_epoch():
    split = _split(np.full(64, 5))
    a, b = make_dataset(split, 8, seed=1), make_dataset(split, 8, seed=1)
    a1, a2 = _epoch(a), _epoch(a)
    b1 = _epoch(b)
    order = lambda epoch: np.concatenate([y for _, y in epoch]).tolist()
    assert order(a1) == order(b1)
    assert order(a1) != order(a2)
    assert order(_epoch(make_dataset(split, 8, seed=2))) != order(a1)


def test_a_repeating_dataset_gives_the_epochs_in_their_orders_from_one_iterator():
    """`repeat=True` (what fit uses, with steps_per_epoch): one endless iterator whose k-th block
    of batches is epoch k's, the same batches a dataset iterated once per epoch gives; a resumed
    run (`first_epoch`) continues with that epoch's order."""
    split = _split(np.random.default_rng(4).integers(2, 30, size=64))
    per_epoch = make_dataset(split, 8, seed=1)
    expected = [_epoch(per_epoch) for _ in range(3)]
    repeating = make_dataset(split, 8, seed=1, repeat=True)
    assert int(repeating.cardinality()) == tf.data.INFINITE_CARDINALITY
    stream = iter(repeating)
    for epoch in expected:
        for x, y in epoch:
            got_x, got_y = next(stream)
            np.testing.assert_array_equal(got_x["token_ids"].numpy(), x)
            np.testing.assert_array_equal(got_y.numpy(), y)
    resumed = iter(make_dataset(split, 8, seed=1, repeat=True, first_epoch=2))
    for _x, y in expected[2]:
        np.testing.assert_array_equal(next(resumed)[1].numpy(), y)
