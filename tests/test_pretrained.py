"""Pretrained BERT checkpoints (init_from): loaded exactly, verified against an independent forward
pass, tokenized as the checkpoint tokenizes, and refused in one line when they cannot be used."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from tokenizers import Tokenizer

from gated_bert.config import GatedBertConfig
from gated_bert.data.glue import load_task
from gated_bert.data.prepare import prepare_data
from gated_bert.errors import ConfigError, DataError
from gated_bert.model import encoder_blocks, prunable_kernels
from gated_bert.tasks import TASKS
from gated_bert.training.fit import build_classifier
from gated_bert.training.settings import resolved_config
from tests.pretrained_checkpoints import packaged_minilm, write_random_bert
from tests.reference_bert import last_hidden_state


@pytest.fixture(scope="session")
def minilm() -> Path:  # noqa: F821
    return packaged_minilm()


def _config(folder, **changes) -> GatedBertConfig:
    values = {"task": "sst2", "pruning_method": "none", "verbose": 0, **changes}
    return GatedBertConfig(init_from=str(folder), **values)


def _last_hidden(model: keras.Model, token_ids, segment_ids) -> np.ndarray:
    last = encoder_blocks(model)[-1]
    encoder = keras.Model(model.inputs, model.get_layer(last.name).output)
    return np.asarray(encoder({"token_ids": token_ids, "segment_ids": segment_ids}))


def _batch(tokenizer, texts):
    """Padded token ids, segment ids and the attention mask of `texts` (str or (str, str))."""
    encodings = [tokenizer.encode(*t) if isinstance(t, tuple) else tokenizer.encode(t) for t in texts]
    length = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(texts), length), np.int32)
    segments = np.zeros_like(ids)
    mask = np.zeros(ids.shape)
    for row, e in enumerate(encodings):
        ids[row, : len(e.ids)], segments[row, : len(e.ids)], mask[row, : len(e.ids)] = e.ids, e.type_ids, 1
    return ids, segments, mask


def test_packaged_checkpoint_reproduces_the_reference_hidden_states(minilm, glue_dir):
    """All masks at one, the gated encoder gives the checkpoint's last hidden states (independent
    numpy BERT over the safetensors arrays) on real SST-2 and MRPC sentences, single and pair inputs,
    padded to the longest of the batch: max |difference| <= 1e-4 at every real token."""
    from safetensors.numpy import load_file

    config = resolved_config(_config(minilm))
    assert config.architecture().num_layers == 6 and config.architecture().d_model == 384
    model = build_classifier(config, TASKS["sst2"])
    assert all(float(k.layer.mask.numpy().min()) == 1.0 for k in prunable_kernels(model))
    tokenizer = prepare_data(_config(minilm, data_dir=str(glue_dir), max_eval_samples=8)).tokenizer
    sst2 = load_task("sst2", str(glue_dir)).evals["dev"].text_a[:4]
    mrpc = load_task("mrpc", str(glue_dir)).evals["dev"]
    pairs = list(zip(mrpc.text_a[:3], mrpc.text_b[:3]))
    ids, segments, mask = _batch(tokenizer, [*sst2, *pairs])
    assert mask.min() == 0 and segments.max() == 1  # padding and second segments are exercised
    reference = last_hidden_state(
        load_file(str(minilm / "model.safetensors")), ids, segments, mask, num_heads=12
    )
    ours = _last_hidden(model, ids, segments)
    assert np.abs(ours - reference)[mask > 0].max() <= 1e-4
    assert np.abs(ours).max() > 1.0  # not a trivially small output


@pytest.mark.parametrize("task, columns", [("sst2", 1), ("mrpc", 2)])
def test_token_ids_equal_the_checkpoints_own_tokenizer(minilm, glue_dir, task, columns):
    """gated-bert's encoding of the dev texts equals the checkpoint's tokenizer.json (padding and
    truncation off), [CLS]/[SEP] and segment ids included."""
    own = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    own.no_padding()
    own.no_truncation()
    prepared = prepare_data(_config(minilm, task=task, data_dir=str(glue_dir), max_len=512))
    split = load_task(task, str(glue_dir)).evals["dev"]
    texts = split.text_a if columns == 1 else list(zip(split.text_a, split.text_b))
    expected = own.encode_batch(texts)
    encoded = prepared.evals["dev"]
    assert len(encoded.token_ids) == len(expected) > 400
    for ours, theirs, segments in zip(encoded.token_ids, expected, encoded.segment_ids):
        assert ours.tolist() == theirs.ids
        assert segments.tolist() == theirs.type_ids


@pytest.mark.parametrize(
    "variant",
    [
        dict(),
        dict(prefix="bert."),
        dict(gamma_beta=True),
        dict(pooler=False),
        dict(prefix="bert.", gamma_beta=True),
    ],
    ids=["plain", "bert-prefix", "gamma-beta", "no-pooler", "prefix+gamma-beta"],
)
def test_name_variants_load_every_weight(tmp_path, variant):
    stored = write_random_bert(tmp_path / "ckpt", **variant)
    config = resolved_config(_config(tmp_path / "ckpt", max_len=16))
    keras.utils.set_random_seed(0)
    model = build_classifier(config, TASKS["sst2"])
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 52, (3, 12)).astype(np.int32)
    ids[0, 9:] = 0  # padding
    segments = np.zeros_like(ids)
    segments[1, 6:] = 1
    mask = (ids != 0).astype(float)
    reference = last_hidden_state(stored, ids, segments, mask, num_heads=4)
    assert np.abs(_last_hidden(model, ids, segments) - reference)[mask > 0].max() <= 1e-4
    pooler = model.get_layer("pooler")
    name = variant.get("prefix", "") + "pooler.dense.weight"
    if variant.get("pooler", True):
        np.testing.assert_array_equal(pooler.kernel.numpy(), stored[name].T)
    else:
        assert not np.allclose(pooler.kernel.numpy(), 0) and pooler.kernel.shape == (16, 16)  # fresh init
    position = model.get_layer("embeddings").position.embeddings.numpy()
    np.testing.assert_array_equal(
        position, stored[variant.get("prefix", "") + "embeddings.position_embeddings.weight"][:16]
    )


def test_checkpoint_fixes_the_shape_and_the_fine_tuning_defaults(tmp_path):
    write_random_bert(tmp_path / "ckpt", layers=3, hidden=24, heads=6, ffn=40)
    config = resolved_config(_config(tmp_path / "ckpt", max_len=100))
    arch = config.architecture()
    assert (arch.num_layers, arch.d_model, arch.num_heads, arch.dff, arch.vocab_size) == (3, 24, 6, 40, 52)
    assert arch.max_len == 64  # capped at max_position_embeddings
    assert (config.learning_rate, config.lr_schedule, config.warmup_ratio, config.dropout_rate) == (
        5e-5,
        "linear",
        0.1,
        0.1,
    )
    scratch = resolved_config(GatedBertConfig(pruning_method="none"))
    assert (scratch.learning_rate, scratch.lr_schedule, scratch.warmup_ratio, scratch.dropout_rate) == (
        2e-5,
        "constant",
        0.0,
        0.0,
    )
    chosen = resolved_config(_config(tmp_path / "ckpt", learning_rate=1e-4, dropout_rate=0.0))
    assert (chosen.learning_rate, chosen.dropout_rate) == (1e-4, 0.0)
    with pytest.raises(ConfigError, match="num_layers 2 \\(the checkpoint has 3\\)"):
        resolved_config(_config(tmp_path / "ckpt", num_layers=2))
    with pytest.raises(ConfigError, match="--model-size tiny .* contradicts --init-from"):
        resolved_config(_config(tmp_path / "ckpt", model_size="tiny"))


def _bad(case: str, folder):
    """Write a checkpoint broken the way `case` says; returns the expected message part."""
    write_random_bert(folder)
    if case == "no-config":
        (folder / "config.json").unlink()
        return "has no config.json"
    if case == "no-weights":
        (folder / "model.safetensors").unlink()
        return "has no weights (model.safetensors or pytorch_model.bin)"
    if case == "roberta":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
        return "is a 'roberta' checkpoint; supported: bert"
    if case == "pytorch-only":
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
        return "pip install torch, or convert the checkpoint to model.safetensors"
    if case == "vocab-size":
        (folder / "vocab.txt").write_text((folder / "vocab.txt").read_text() + "extra\n")
        return "has 53 tokens but the checkpoint's embedding has 52 rows"
    if case == "shape":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))
        return "has shape (32, 16) but config.json implies (48, 16)"
    raise AssertionError(case)


BAD_CASES = ["no-config", "no-weights", "roberta", "pytorch-only", "vocab-size", "shape"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_checkpoints_are_one_line_exit_2_and_nothing_written(case, tmp_path, capsys, monkeypatch):
    import importlib.util

    from gated_bert.cli import main
    from tests.conftest import write_sst2

    if case == "pytorch-only" and importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed here: a pytorch_model.bin would load")
    message = _bad(case, tmp_path / "ckpt")
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    argv = ["train", "--init-from", str(tmp_path / "ckpt"), "--data-dir", str(write_sst2(tmp_path / "glue"))]
    argv += ["--output-root", str(out), "--epochs", "1", "--pruning-method", "none", "--max-len", "16"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2
    assert err.startswith("Error: ") and len(err.splitlines()) == 1, err
    assert message in err
    assert list(out.iterdir()) == []  # no half-written run
    assert not (tmp_path / "mlflow.db").exists() or _no_runs(tmp_path / "mlflow.db")


def _no_runs(database) -> bool:
    import sqlite3

    with sqlite3.connect(database) as connection:
        return connection.execute("select count(*) from runs").fetchone()[0] == 0


def test_a_hub_id_without_network_fails_within_seconds_naming_the_fix():
    import time

    from gated_bert.pretrained.checkpoint import read

    started = time.time()
    with pytest.raises(DataError, match="pass a local checkpoint folder"):
        read("gated-bert-tests/no-such-model")  # no network here; a 404 on machines with one
    assert time.time() - started < 30
    with pytest.raises(DataError, match="no such folder"):
        read("./missing/folder")
