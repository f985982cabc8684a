"""matmul_precision: what auto resolves to, bfloat16 matmuls in the train step only."""

import numpy as np
import pytest
import tensorflow as tf

from gated_bert.data.prepare import prepare_data
from gated_bert.errors import ConfigError
from gated_bert.layers.gated_dense import GatedDense
from gated_bert.training import precision
from gated_bert.training.fit import fit
from gated_bert.training.settings import with_machine_settings
from tests.conftest import micro_config


@pytest.mark.parametrize(
    ("given", "native", "gpu", "expected"),
    [
        ("auto", True, False, "bfloat16"),
        ("auto", False, False, "float32"),  # AVX2-only CPU: bfloat16 would be emulated
        ("auto", True, True, "float32"),  # GPU: not measured
        ("float32", True, False, "float32"),
        ("bfloat16", False, False, "bfloat16"),  # explicit values are kept
    ],
)
def test_auto_resolves_by_machine(given, native, gpu, expected):
    assert precision.resolve(given, native, gpu) == expected


def test_native_bfloat16_reads_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n\nflags\t: fpu\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}
    assert precision.native_bfloat16(precision.cpu_flags(cpuinfo))
    assert not precision.native_bfloat16({"avx2", "avx512f"})
    assert precision.native_bfloat16({"amx_bf16"})
    assert precision.cpu_flags(tmp_path / "missing") == set()


def test_resolved_config_names_a_concrete_precision(monkeypatch):
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    assert with_machine_settings(micro_config(pruning_method="spt")).matmul_precision == "bfloat16"
    assert with_machine_settings(micro_config(matmul_precision="float32")).matmul_precision == "float32"
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    assert with_machine_settings(micro_config()).matmul_precision == "float32"
    with pytest.raises(ConfigError, match="unknown matmul_precision 'half'; choose one of: auto, float32"):
        micro_config(matmul_precision="half")


def test_bfloat16_matmul_rounds_inputs_and_keeps_float32_outputs_and_gradients():
    layer = GatedDense(64)
    x = tf.random.stateless_normal((8, 48), seed=(1, 2))
    layer.build(x.shape)
    layer.mask.assign(tf.cast(tf.random.stateless_uniform((48, 64), seed=(3, 4)) > 0.5, tf.float32))

    def run(dtype):
        layer.matmul_dtype = dtype
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(y * y)
        layer.matmul_dtype = None
        return y, tape.gradient(loss, layer.kernel)

    y32, g32 = run(None)
    y16, g16 = run("bfloat16")
    assert y16.dtype == tf.float32 and g16.dtype == tf.float32
    # the product of the bfloat16-rounded input and masked kernel, accumulated in float32
    rounded = tf.cast(tf.cast(x, tf.bfloat16), tf.float32) @ tf.cast(
        tf.cast(layer.kernel * layer.mask, tf.bfloat16), tf.float32
    )
    expected = tf.cast(tf.cast(rounded, tf.bfloat16), tf.float32) + layer.bias
    np.testing.assert_allclose(y16.numpy(), expected.numpy(), rtol=1e-2, atol=1e-3)
    assert not np.array_equal(y16.numpy(), y32.numpy())  # bfloat16 keeps 8 bits of mantissa
    np.testing.assert_allclose(y16.numpy(), y32.numpy(), rtol=0.05, atol=0.05)
    np.testing.assert_allclose(g16.numpy(), g32.numpy(), rtol=0.05, atol=0.1)
    assert np.all(g16.numpy()[layer.mask.numpy() == 0] == 0)  # pruned weights get no gradient


def test_bfloat16_only_inside_the_train_step(sst2_dir, monkeypatch):
    """The train step traces its matmuls in bfloat16; evaluation and the model after fit are float32."""
    seen = []
    call = GatedDense.call

    def spy(self, inputs):
        seen.append(self.matmul_dtype)
        return call(self, inputs)

    monkeypatch.setattr(GatedDense, "call", spy)
    config = micro_config(data_dir=str(sst2_dir), matmul_precision="bfloat16", epochs=3, learning_rate=3e-3)
    result = fit(config, prepare_data(config))
    assert "bfloat16" in seen and None in seen  # train step traced low, evaluation float32
    layers = [k for k in result.classifier._flatten_layers() if isinstance(k, GatedDense)]
    assert layers and all(layer.matmul_dtype is None for layer in layers)
    assert result.rows[-1]["eval_accuracy"] >= 0.9  # it still learns the synthetic task
    assert all(v.dtype == "float32" for v in result.classifier.weights)
