import json
import warnings

import pytest

from gated_bert.config import DEFAULT_SPARSITY_STEPS, GatedBertConfig, apply_environment
from gated_bert.errors import ConfigError
from gated_bert.pruning.resolve import resolve


def test_documented_defaults():
    c = GatedBertConfig()
    trained = c.with_training_defaults()  # the settings left at auto, as a run from scratch fills them
    assert (trained.epochs, trained.batch_size, trained.learning_rate, trained.dropout_rate) == (
        25,
        96,
        2e-5,
        0.0,
    )
    assert (trained.model_size, trained.lr_schedule, trained.warmup_ratio) == ("base", "constant", 0.0)
    tuned = GatedBertConfig(init_from="ckpt").with_training_defaults()  # fine-tuning a pretrained model
    assert (tuned.learning_rate, tuned.batch_size, tuned.lr_schedule, tuned.warmup_ratio) == (
        5e-5,
        32,
        "linear",
        0.1,
    )
    assert (tuned.dropout_rate, tuned.pruning_method, tuned.enable_pruning) == (0.1, "none", False)
    assert (c.start_sparsity, c.end_sparsity, c.pruning_start_epoch, c.pruning_end_epoch) == (
        0.0,
        0.99,
        4,
        23,
    )
    assert (c.spt_explore_per_layer, c.spt_reward_alpha, c.movement_schedule) == (False, 0.125, "cubic")
    assert (c.spt_credit, c.spt_min_probes, c.movement_score_init) == ("saliency", 8, "zeros")
    assert c.pruning_updates == "step" and resolve(c).movement_pruning_frequency_steps == 10  # spt
    assert c.effective_sparsity_steps == DEFAULT_SPARSITY_STEPS
    assert DEFAULT_SPARSITY_STEPS[:4] == (10, 25, 50, 70) and DEFAULT_SPARSITY_STEPS[-1] == 99.5
    assert trained.pruning_method == "spt" and trained.enable_pruning


@pytest.mark.parametrize(
    "size, shape, epsilon, frequency",  # movement: the top-k before every step by default
    [
        ("tiny", (2, 256, 4, 512), 0.01, 1),
        ("small", (6, 512, 8, 1024), 0.005, 1),
        ("base", (12, 768, 12, 3072), 0.0025, 1),
        ("large", (24, 1024, 16, 4096), 0.001, 1),
    ],
)
def test_presets_and_size_scaled_defaults(size, shape, epsilon, frequency):
    c = GatedBertConfig(model_size=size, pruning_method="movement")
    arch = c.architecture()
    assert (arch.num_layers, arch.d_model, arch.num_heads, arch.dff) == shape
    assert (arch.vocab_size, arch.max_len) == (30522, 128)
    assert c.effective_spt_epsilon == epsilon
    assert resolve(c).movement_pruning_frequency_steps == frequency


def test_custom_size_overrides_preset():
    arch = GatedBertConfig(
        model_size="small", num_layers=8, d_model=512, num_heads=8, dff=2048
    ).architecture()
    assert (arch.num_layers, arch.d_model, arch.num_heads, arch.dff) == (8, 512, 8, 2048)


def test_baseline_spellings_are_equal():
    a = GatedBertConfig(enable_pruning=False)
    b = GatedBertConfig(pruning_method="none")
    assert a == b
    assert a.pruning_method == "none" and not a.enable_pruning and a.method_name == "baseline"


def test_json_round_trip_is_lossless():
    c = GatedBertConfig(model_size="tiny", sparsity_steps=(5, 50, 95), spt_epsilon=0.02, data_dir="/x")
    text = c.to_json()
    again = GatedBertConfig.from_json(text)
    assert again == c and again.to_json() == text
    assert json.loads(text)["sparsity_steps"] == [5.0, 50.0, 95.0]


def test_pruning_end_capped_with_warning():
    with pytest.warns(UserWarning, match="pruning_end_epoch 23 > epochs 10: capped to 10"):
        c = GatedBertConfig(epochs=10)
    assert c.pruning_end_epoch == 10 and c.pruning_start_epoch == 4


def test_baseline_is_not_capped():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = GatedBertConfig(epochs=2, pruning_method="none")
    assert c.pruning_end_epoch == 23


BAD = [
    (dict(end_sparsity=1.0), "end_sparsity must be in [0, 1), got 1.0"),
    (dict(end_sparsity=-0.1), "end_sparsity must be in [0, 1)"),
    (dict(start_sparsity=1.5), "start_sparsity must be in [0, 1)"),
    (dict(start_sparsity=0.5, end_sparsity=0.4), "start_sparsity (0.5) must be <= end_sparsity (0.4)"),
    (dict(epochs=0), "epochs must be a positive integer, got 0"),
    (dict(batch_size=-3), "batch_size must be a positive integer, got -3"),
    (dict(learning_rate=0.0), "learning_rate must be a positive number, got 0.0"),
    (dict(learning_rate=float("nan")), "learning_rate must be a positive number"),
    (dict(pruning_start_epoch=0), "pruning_start_epoch must be a positive integer"),
    (
        dict(pruning_start_epoch=5, pruning_end_epoch=3),
        "pruning_start_epoch (5) must be <= pruning_end_epoch (3)",
    ),
    (dict(d_model=100, num_heads=3), "d_model (100) must be divisible by num_heads (3)"),
    (dict(sparsity_steps=(10, 5)), "sparsity_steps must be strictly increasing, got 10.0 then 5.0"),
    (dict(sparsity_steps=(10, 100)), "sparsity_steps values must be within (0, 100)"),
    (dict(sparsity_steps=()), "sparsity_steps must not be empty"),
    (dict(task="mnli2"), "unknown task 'mnli2'; choose one of: sst2, mnli"),
    (dict(pruning_method="lottery"), "unknown pruning_method 'lottery'; choose one of: none, magnitude"),
    (dict(model_size="huge"), "unknown model_size 'huge'; choose one of: tiny, small, base, large"),
    (dict(movement_schedule="exp"), "unknown movement_schedule 'exp'"),
    (dict(movement_scores_optimizer="sgdm"), "unknown movement_scores_optimizer 'sgdm'"),
    (
        dict(movement_remove_directions=-1),
        "movement_remove_directions must be 0 or a positive integer, got -1",
    ),
    (
        dict(model_size="tiny", movement_remove_directions=256),
        "movement_remove_directions 256 must be below the smallest kernel side (256); try 4",
    ),
    (dict(sparsity_schedule="zigzag"), "unknown sparsity_schedule 'zigzag'"),
    (dict(pruning_scope="row"), "unknown pruning_scope 'row'"),
    (dict(spt_epsilon=0.0), "spt_epsilon must be in (0, 0.5], got 0.0"),
    (dict(spt_reward_alpha=1.5), "spt_reward_alpha must be in (0, 1], got 1.5"),
    (dict(dropout_rate=1.0), "dropout_rate must be in [0, 1)"),
    (dict(max_len=2), "max_len must be between 4 and 4096, got 2"),
    (dict(max_len=100_000), "max_len must be between 4 and 4096, got 100000; BERT uses 128 to 512"),
    (dict(vocab_size=0), "vocab_size must be a positive integer"),
    (dict(max_train_samples=0), "max_train_samples must be a positive integer"),
    (dict(verbose=5), "verbose must be 0, 1 or 2, got 5"),
    (dict(seed=-1), "seed must be a non-negative integer, got -1"),
    (dict(movement_pruning_frequency_steps=0), "movement_pruning_frequency_steps must be a positive integer"),
]


@pytest.mark.parametrize("values, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_values_raise_value_error_naming_value(values, message):
    with pytest.raises(ConfigError) as info:
        GatedBertConfig(**values)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)


def test_unknown_field_in_json():
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) \['colour'\]"):
        GatedBertConfig.from_dict({"colour": "red"})


def test_environment_overrides():
    values = apply_environment({"epochs": 25}, {"BENCHMARK_EPOCHS": "3", "VERBOSE": "2", "GLUE_DIR": "/g"})
    assert values == {"epochs": 3, "verbose": 2, "data_dir": "/g"}
    assert apply_environment({"data_dir": "/mine"}, {"GLUE_DIR": "/g"})["data_dir"] == "/mine"
    with pytest.raises(ConfigError, match="BENCHMARK_EPOCHS must be an integer, got 'ten'"):
        apply_environment({}, {"BENCHMARK_EPOCHS": "ten"})


def test_resolved_schedule_and_scope():
    assert resolve(GatedBertConfig(pruning_method="magnitude")).sparsity_schedule == "linear"
    assert (
        resolve(GatedBertConfig(pruning_method="movement", movement_schedule="cubic")).sparsity_schedule
        == "cubic"
    )
    assert resolve(GatedBertConfig(pruning_method="spt")).sparsity_schedule == "steps"
    assert (
        resolve(GatedBertConfig(pruning_method="magnitude", sparsity_steps=(10, 20))).sparsity_schedule
        == "steps"
    )
    assert resolve(GatedBertConfig(pruning_method="spt")).pruning_scope == "global"
    assert resolve(GatedBertConfig(pruning_method="movement")).pruning_scope == "per_layer"


def test_replacing_the_method_of_a_baseline_config_switches_pruning_on():
    baseline = GatedBertConfig(pruning_method="none")
    assert not baseline.enable_pruning
    pruned = baseline.replace(pruning_method="magnitude")
    assert pruned.pruning_method == "magnitude" and pruned.enable_pruning
    assert pruned.replace(pruning_method="none").enable_pruning is False
    assert baseline.replace(epochs=3).pruning_method == "none"


def test_resolving_twice_changes_nothing():
    for method in ("none", "magnitude", "movement", "spt", "random"):
        once = resolve(GatedBertConfig(pruning_method=method, model_size="tiny"))
        assert resolve(once) == once
        assert "auto" not in (once.sparsity_schedule, once.pruning_scope)
        assert once.movement_pruning_frequency_steps is not None and once.spt_epsilon is not None
