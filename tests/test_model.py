import keras
import numpy as np
import pytest
import tensorflow as tf

from gated_bert.config import GatedBertConfig
from gated_bert.layers import GatedDense, GatedMultiHeadAttention
from gated_bert.model import CUSTOM_OBJECTS, build_model, count_parameters, prunable_kernels, sparsity_report
from tests.conftest import micro_config


@pytest.mark.parametrize(
    "size, expected", [("tiny", 9e6), ("small", 28e6), ("base", 108e6), ("large", 333e6)]
)
def test_preset_parameter_counts_within_5_percent(size, expected):
    model = build_model(GatedBertConfig(model_size=size).architecture(), 2)
    assert abs(count_parameters(model) - expected) / expected < 0.05
    assert len(prunable_kernels(model)) == 6 * GatedBertConfig(model_size=size).architecture().num_layers


def _inputs(batch=3, length=7, vocab=50, pad_from=None, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(batch, length)).astype("int32")
    if pad_from is not None:
        ids[:, pad_from:] = 0
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids)}


def test_zero_mask_entries_contribute_nothing_and_get_no_update():
    keras.utils.set_random_seed(0)
    layer = GatedDense(4)
    x = tf.constant(np.random.default_rng(1).normal(size=(5, 6)), tf.float32)
    layer(x)
    mask = np.ones((6, 4), np.float32)
    mask[::2, 1] = 0.0
    layer.mask.assign(mask)
    kernel_before = layer.kernel.numpy().copy()
    # the masked entries contribute nothing: changing them does not change the output
    out = layer(x).numpy()
    layer.kernel.assign(kernel_before + (1 - mask) * 100.0)
    np.testing.assert_allclose(layer(x).numpy(), out, rtol=1e-6)
    layer.kernel.assign(kernel_before)
    # and one optimizer step leaves them untouched while the others move
    optimizer = keras.optimizers.Adam(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, [layer.kernel])
    np.testing.assert_array_equal(grads[0].numpy()[mask == 0], 0.0)
    optimizer.apply(grads, [layer.kernel])
    after = layer.kernel.numpy()
    np.testing.assert_array_equal(after[mask == 0], kernel_before[mask == 0])
    assert np.all(after[mask == 1] != kernel_before[mask == 1])


def test_attention_depends_on_query_key_and_ignores_padding():
    keras.utils.set_random_seed(0)
    attention = GatedMultiHeadAttention(16, 2)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 16)), tf.float32)
    padding = np.ones((2, 6), np.int32)
    padding[:, 4:] = 0
    out, weights = attention(x, padding_mask=padding, return_attention_weights=True)
    weights = weights.numpy()
    np.testing.assert_array_equal(weights[:, :, :, 4:], 0.0)  # padded keys get exactly zero weight
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert weights[0, 0, 0, :4].std() > 1e-3  # not uniform
    # randomizing query/key weights changes the output (the -1e9 mask is applied once)
    attention.query.kernel.assign(tf.random.normal(attention.query.kernel.shape))
    attention.key.kernel.assign(tf.random.normal(attention.key.kernel.shape))
    changed = attention(x, padding_mask=padding).numpy()
    assert np.abs(changed - out.numpy()).max() > 1e-3


def test_attention_equals_a_numpy_reference_with_masked_projections():
    """Each gated projection, head by head, as written out in numpy."""
    keras.utils.set_random_seed(0)
    d, heads, rng = 8, 2, np.random.default_rng(5)
    attention = GatedMultiHeadAttention(d, heads)
    x = rng.normal(size=(2, 5, d)).astype(np.float32)
    padding = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    attention(x, padding_mask=padding)
    for layer in (attention.query, attention.key, attention.value, attention.attention_output):
        layer.bias.assign(rng.normal(size=layer.bias.shape).astype(np.float32))
        layer.mask.assign((rng.random(layer.mask.shape) > 0.4).astype(np.float32))
    out, weights = attention(x, padding_mask=padding, return_attention_weights=True)

    def project(layer, h):
        return h @ (layer.kernel.numpy() * layer.mask.numpy()) + layer.bias.numpy()

    def heads_of(h):  # (batch, length, d) -> (batch, heads, length, depth)
        return h.reshape(2, 5, heads, d // heads).transpose(0, 2, 1, 3)

    q, k, v = (heads_of(project(layer, x)) for layer in (attention.query, attention.key, attention.value))
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads) + (1 - padding[:, None, None, :]) * -1e9
    expected_weights = np.exp(logits - logits.max(-1, keepdims=True))
    expected_weights /= expected_weights.sum(-1, keepdims=True)
    context = (expected_weights @ v).transpose(0, 2, 1, 3).reshape(2, 5, d)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        out.numpy(), project(attention.attention_output, context), rtol=1e-4, atol=1e-5
    )


def test_padding_does_not_change_real_token_outputs():
    keras.utils.set_random_seed(0)
    model = build_model(micro_config().architecture(), 2)
    short = _inputs(batch=2, length=5)
    padded = {k: np.pad(v, ((0, 0), (0, 4))) for k, v in short.items()}
    np.testing.assert_allclose(model(short).numpy(), model(padded).numpy(), atol=1e-5)


def test_sparsity_report_counts_zero_masks():
    model = build_model(micro_config().architecture(), 2)
    kernels = prunable_kernels(model)
    mask = np.ones(kernels[0].layer.mask.shape, np.float32)
    mask.reshape(-1)[:64] = 0.0  # 64 of 256 weights of layer_0/query
    kernels[0].layer.mask.assign(mask)
    report = sparsity_report(model)
    total = sum(int(np.prod(k.layer.mask.shape)) for k in kernels)
    assert report["sparsity/layer_0/query"] == 0.25
    assert report["sparsity/layer_0/key"] == 0.0
    assert report["sparsity"] == pytest.approx(64 / total)
    assert report["sparsity_all_params"] == pytest.approx(64 / count_parameters(model))


def test_save_and_reload_keras_identical_predictions(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(micro_config().architecture(), 3, with_scores=True)
    kernel = prunable_kernels(model)[3].layer
    kernel.mask.assign(
        np.where(np.arange(kernel.mask.shape[0] * kernel.mask.shape[1]) % 3, 1.0, 0.0)
        .reshape(kernel.mask.shape)
        .astype("float32")
    )
    x = _inputs(pad_from=5)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS)
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())
    np.testing.assert_array_equal(prunable_kernels(again)[3].layer.mask.numpy(), kernel.mask.numpy())


@pytest.mark.parametrize("shape", [(4, 7, 32), (5, 16)])
def test_layer_norm_equals_keras_layer_normalization_with_its_gradients(shape):
    """Outputs and the gradients of the input, gamma and beta, against Keras' own layer."""
    from gated_bert.layers import LayerNorm

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape).astype(np.float32) * 3 + 1)
    weight = tf.constant(rng.normal(size=shape).astype(np.float32))
    ours, reference = LayerNorm(epsilon=1e-12), keras.layers.LayerNormalization(epsilon=1e-12)
    for layer in (ours, reference):
        layer.build(x.shape)
        layer.gamma.assign(rng.normal(size=shape[-1]).astype(np.float32) + 1)
    reference.gamma.assign(ours.gamma)
    ours.beta.assign(rng.normal(size=shape[-1]).astype(np.float32))
    reference.beta.assign(ours.beta)
    results = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * weight) + tf.reduce_sum(y * y)
        results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta])])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=2e-5)
    assert abs(float(tf.reduce_mean(results[0][0]))) > 0.05  # beta moved the outputs: a real check
    ops = {op.type for op in tf.function(ours).get_concrete_function(x).graph.get_operations()}
    assert "IdentityN" in ops  # the custom gradient is in the traced graph


def test_gelu_equals_keras_gelu_with_its_gradient_and_gated_dense_uses_it():
    from gated_bert.layers.gelu import gelu

    x = tf.constant(np.concatenate([np.linspace(-10, 10, 401), [0.0, -0.5, 3.0]]).astype(np.float32))
    results = []
    for fn in (gelu, keras.activations.gelu):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * y)
        results.append([y, tape.gradient(loss, x)])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    layer = GatedDense(8, activation="gelu")
    inputs = tf.constant(np.random.default_rng(2).normal(size=(3, 5)).astype(np.float32))
    layer.build(inputs.shape)
    reference = keras.activations.gelu(inputs @ layer.kernel + layer.bias)
    np.testing.assert_allclose(layer(inputs).numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    ops = {op.type for op in tf.function(layer).get_concrete_function(inputs).graph.get_operations()}
    assert "IdentityN" in ops  # the closed-form gradient is in the traced graph


def test_token_rows_are_read_by_index_and_bias_by_bias_add_with_keras_values_and_gradients():
    """The token table is gathered from the variable (no whole-table read, which TensorFlow copies
    once the lazy AdamW has scattered into it); GatedDense adds its bias with BiasAdd. Values and
    gradients equal Keras' Embedding and `x @ W + b`."""
    from gated_bert.layers.embeddings import BertEmbeddings

    rng = np.random.default_rng(4)
    layer = BertEmbeddings(vocab_size=50, max_len=16, d_model=8)
    token_ids = tf.constant(rng.integers(0, 50, size=(3, 7)), tf.int32)
    segment_ids = tf.constant(rng.integers(0, 2, size=(3, 7)), tf.int32)
    layer.build(token_ids.shape)
    table = layer.token.embeddings
    with tf.GradientTape() as tape:
        got = layer(token_ids, segment_ids)
        loss = tf.reduce_sum(got * got)
    gradient = tape.gradient(loss, table.value)
    with tf.GradientTape() as tape:
        x = layer.token(token_ids) + layer.position(tf.range(7)[None, :]) + layer.segment(segment_ids)
        expected = layer.norm(x)
        reference_loss = tf.reduce_sum(expected * expected)
    reference = tape.gradient(reference_loss, table.value)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    assert isinstance(gradient, tf.IndexedSlices)  # rows only: what the lazy AdamW updates
    np.testing.assert_allclose(
        tf.convert_to_tensor(gradient).numpy(), tf.convert_to_tensor(reference).numpy(), rtol=1e-5, atol=1e-6
    )
    graph = tf.function(layer).get_concrete_function(token_ids, segment_ids).graph
    operations = graph.get_operations()
    assert "ResourceGather" in {op.type for op in operations}  # the token table, by index
    whole_reads = [op for op in operations if op.type == "ReadVariableOp" and op.outputs[0].shape == (50, 8)]
    assert not whole_reads, whole_reads

    dense = GatedDense(6)
    inputs = tf.constant(rng.normal(size=(2, 4, 5)).astype(np.float32))
    dense.build(inputs.shape)
    dense.bias.assign(rng.normal(size=6).astype(np.float32))
    results = []
    for fn in (dense, lambda v: v @ (dense.kernel * dense.mask) + dense.bias):
        with tf.GradientTape() as tape:
            out = fn(inputs)
            loss = tf.reduce_sum(out * out)
        results.append([out, *tape.gradient(loss, [dense.bias.value, dense.kernel.value])])
    for got_value, expected_value in zip(*results):
        np.testing.assert_allclose(got_value.numpy(), expected_value.numpy(), rtol=1e-5, atol=1e-5)
    graph = tf.function(dense).get_concrete_function(inputs).graph
    assert "BiasAdd" in {op.type for op in graph.get_operations()}
