"""The one configuration object of gated-bert: `GatedBertConfig`.

Every entry point (CLI, MLproject, Optuna search space, tests) builds this
frozen dataclass; nothing mutates it afterwards. `__post_init__` validates
every field and normalizes the two spellings of the baseline
(`enable_pruning=False` and `pruning_method='none'`).

The config sits at the bottom of the package: it imports nothing from the model,
pruning or training. Defaults that depend on the pruning method (`auto` schedule,
scope and mask-update frequency) are made concrete by `gated_bert.pruning.resolve`,
once per run; the valid names below are plain tuples that the registry's tests
keep equal to the registry.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from gated_bert.architecture import (
    BERT_VOCAB_SIZE,
    MAX_LEN_LIMIT,
    MODEL_PRESETS,
    Architecture,
    nearest_preset,
    preset_architecture,
)
from gated_bert.errors import ConfigError
from gated_bert.tasks import TASKS

BASELINE = "none"  # no pruning: masks stay all ones
BASELINE_LABEL = "baseline"  # how results paths, tags and experiments name the baseline
# Every pruning_method value, the baseline first (`pruning.methods.method_names()`, kept equal by a test).
PRUNING_METHODS = (BASELINE, "magnitude", "movement", "spt", "random")
GRANULARITIES = ("weight", "neuron", "head", "structured")  # see pruning/groups.py
EPOCH_SCHEDULE_KINDS = ("linear", "cubic", "geometric", "steps")  # see pruning/schedules.py
# Exploration rate per preset, used when spt_epsilon is not given.
SPT_EPSILON_BY_SIZE: dict[str, float] = {
    "tiny": 0.01,
    "small": 0.005,
    "base": 0.0025,
    "large": 0.001,
}
DEFAULT_MODEL_SIZE = "base"
# Training settings left at auto: from scratch, and fine-tuning a pretrained checkpoint (init_from;
# docs/pretrained.md has the measurements that chose them).
SCRATCH_DEFAULTS = {
    "learning_rate": 2e-5,
    "lr_schedule": "constant",
    "warmup_ratio": 0.0,
    "dropout_rate": 0.0,
    "batch_size": 96,
    "pruning_method": "spt",
}
FINE_TUNING_DEFAULTS = {
    "learning_rate": 5e-5,
    "lr_schedule": "linear",
    "warmup_ratio": 0.1,
    "dropout_rate": 0.1,
    "batch_size": 32,
    "pruning_method": BASELINE,
}
SPARSITY_SCHEDULES = ("auto", *EPOCH_SCHEDULE_KINDS)
PRUNING_SCOPES = ("auto", "per_layer", "global")
MOVEMENT_SCHEDULES = tuple(k for k in EPOCH_SCHEDULE_KINDS if k != "steps")
EMBEDDING_UPDATES = ("lazy", "dense")
LR_SCHEDULES = ("constant", "linear", "cosine")  # see training/lr_schedule.py
PRUNING_UPDATES = ("step", "epoch")
MOVEMENT_SCORE_INITS = ("zeros", "magnitude")
MOVEMENT_SCORE_OPTIMIZERS = ("adam", "sgd")
SPT_CREDITS = ("shared", "baseline", "first_order", "saliency")  # see pruning/methods/spt/credit.py
JIT_COMPILE = ("auto", "true", "false")
MATMUL_PRECISIONS = ("auto", "float32", "bfloat16")  # see training/precision.py
DEFAULT_SPARSITY_STEPS: tuple[float, ...] = (
    10,
    25,
    50,
    70,
    75,
    80,
    84,
    88,
    90,
    92,
    93,
    94,
    95,
    96,
    97,
    97.5,
    98,
    98.5,
    99,
    99.5,
)


def _help(text: str, none_is_a_value: bool = False, **kwargs: Any) -> Any:
    """A field with its help text; `none_is_a_value`: the word none is one of its values, not
    'unset' (the command line and MLproject read 'auto' as unset for it)."""
    return field(metadata={"help": text, "none_is_a_value": none_is_a_value}, **kwargs)


@dataclass(frozen=True)
class GatedBertConfig:
    """Every setting of a gated-bert training run."""

    # Model
    model_size: str | None = _help(
        "Preset: tiny, small, base or large (default: base; with init_from, the checkpoint's shape).",
        default=None,
    )
    init_from: str | None = _help(
        "Start from a pretrained BERT checkpoint: a local HuggingFace folder (config.json, "
        "model.safetensors, vocab.txt) or a hub model id. Its config.json fixes the shape, its "
        "tokenizer is used, and the fine-tuning defaults apply (docs/pretrained.md).",
        default=None,
    )
    num_layers: int | None = _help("Encoder blocks (overrides the preset).", default=None)
    d_model: int | None = _help("Hidden size (overrides the preset).", default=None)
    num_heads: int | None = _help("Attention heads (overrides the preset).", default=None)
    dff: int | None = _help("Feed-forward inner size (overrides the preset).", default=None)
    vocab_size: int | None = _help(
        "Embedding rows (default: the tokenizer's own size; a trained tokenizer gets at most "
        f"{BERT_VOCAB_SIZE} entries).",
        default=None,
    )
    max_len: int = _help("Maximum tokens per example (longer ones are truncated).", default=128)
    # Task and data
    task: str = _help("GLUE task: " + ", ".join(TASKS) + ".", default="sst2")
    data_dir: str | None = _help(
        "Local GLUE directory in the original TSV layout (default: env GLUE_DIR, else the HuggingFace hub).",
        default=None,
    )
    tokenizer: str | None = _help(
        "vocab.txt / tokenizer.json path or hub name (default: train a WordPiece "
        "vocabulary on the task's training text).",
        default=None,
    )
    max_train_samples: int | None = _help("Use only the first N training examples.", default=None)
    max_eval_samples: int | None = _help("Use only the first N dev examples.", default=None)
    # Training
    epochs: int = _help("Training epochs (env BENCHMARK_EPOCHS overrides).", default=25)
    batch_size: int | None = _help(
        "Examples per batch (default: 96 from scratch, 32 with init_from).", default=None
    )
    learning_rate: float | None = _help(
        "AdamW peak learning rate (default: 2e-5 from scratch, 5e-5 with init_from).", default=None
    )
    weight_decay: float = _help("AdamW weight decay.", default=0.01)
    lr_schedule: str = _help(
        "Learning rate after the warm-up: constant, linear (to 0) or cosine (to 0), by optimizer step "
        "(auto: constant from scratch, linear with init_from).",
        default="auto",
    )
    warmup_ratio: float | None = _help(
        "Share of all optimizer steps spent warming up linearly from 0 (default: 0 from scratch, 0.1 "
        "with init_from).",
        default=None,
    )
    dropout_rate: float | None = _help(
        "Dropout in embeddings, attention and FFN (default: 0 from scratch, 0.1 with init_from).",
        default=None,
    )
    teacher: str | None = _help(
        "Distil from this teacher: a FINISHED gated-bert run id, or a saved model folder (model.keras, "
        "tokenizer.json, config.json) of the same task and tokenizer (default: no teacher).",
        default=None,
    )
    distill_alpha: float = _help(
        "With a teacher: the task loss's weight; the teacher term gets 1 - alpha (1: no distillation).",
        default=0.5,
    )
    distill_temperature: float = _help(
        "With a teacher: the softmax temperature T of the KL term (scaled by T^2).", default=2.0
    )
    seed: int = _help("Seed for weights, shuffling and exploration.", default=42)
    embedding_updates: str = _help(
        "lazy: AdamW updates only the token-embedding rows a batch touches (docs/training.md); "
        "dense: every row at every step.",
        default="lazy",
    )
    jit_compile: str = _help(
        "XLA-compile the train step: auto (only with a GPU; on CPU it measured slower), true or false. "
        "With XLA, batch widths are rounded up to multiples of 8 to bound the compiled shapes.",
        default="auto",
    )
    matmul_precision: str = _help(
        "Precision of the gated kernels' matmuls in the train step: auto (bfloat16 on CPUs with native "
        "bfloat16 arithmetic, AVX512_BF16 or AMX; float32 elsewhere), float32 or "
        "bfloat16. Weights, optimizer, losses, evaluation and the saved model stay float32 "
        "(docs/training.md).",
        default="auto",
    )
    # Pruning
    enable_pruning: bool = _help("False is the baseline (same as pruning_method=none).", default=True)
    pruning_method: str | None = _help(
        ", ".join(PRUNING_METHODS) + " (none is the baseline; random is the control). Default: spt; "
        "with init_from, none (a pretrained model is fine-tuned dense unless a method is named).",
        default=None,
        none_is_a_value=True,
    )
    start_sparsity: float = _help("Sparsity target at pruning_start_epoch.", default=0.0)
    end_sparsity: float = _help("Final sparsity target, in [0, 1).", default=0.99)
    pruning_start_epoch: int = _help("First epoch of the pruning window (1-based).", default=4)
    pruning_end_epoch: int = _help("Epoch at which end_sparsity is reached (capped to epochs).", default=23)
    sparsity_schedule: str = _help(
        "auto, linear, cubic, geometric or steps (auto: magnitude linear, movement "
        "movement_schedule, spt steps; steps whenever sparsity_steps is given).",
        default="auto",
    )
    sparsity_steps: tuple[float, ...] | None = _help(
        "Step schedule in percent (default: 10 25 50 70 75 80 84 88 90 92 93 94 95 96 97 97.5 98 "
        "98.5 99 99.5).",
        default=None,
    )
    pruning_scope: str = _help(
        "per_layer, global or auto (auto: per_layer for magnitude/movement, global for spt).",
        default="auto",
    )
    pruning_granularity: str = _help(
        "weight (single weights), neuron (whole FFN units), head (whole attention heads) or structured "
        "(heads and neurons, each reaching the target).",
        default="weight",
    )
    spt_epsilon: float | None = _help(
        "SPT exploration rate (default by size: tiny 0.01, small 0.005, base 0.0025, large 0.001).",
        default=None,
    )
    spt_explore_per_layer: bool = _help(
        "SPT probes one role per step, cycling through the six roles.", default=False
    )
    spt_reward_alpha: float = _help("SPT reward EMA factor, in (0, 1].", default=0.125)
    spt_credit: str = _help(
        "How a probe's reward is credited to its weights: shared (each gets it), baseline (minus the "
        "running mean reward), first_order (own Taylor term + an even share of the residual) or "
        "saliency (own Taylor term + a share of the residual by w^2 * g^2); docs/pruning.md.",
        default="saliency",
    )
    spt_min_probes: int = _help(
        "Probes before a weight's own estimate is trusted; until then it is ranked by the prior "
        "(measured second-order scale * w^2 * g^2). Not used with shared credit.",
        default=8,
    )
    pruning_updates: str = _help(
        "step: masks follow the schedule by optimizer step, every movement_pruning_frequency_steps "
        "steps (gradual pruning, the training recovers in between); epoch: one update at the end of "
        "each window epoch (the original description's magnitude and SPT; movement also recomputes its "
        "top-k at the latest target every movement_pruning_frequency_steps steps in between).",
        default="step",
    )
    movement_pruning_frequency_steps: int | None = _help(
        "Optimizer steps between mask updates with pruning_updates=step, for every method (named "
        "after movement in the original description). Default: movement 1 (the top-k recomputed "
        "before every forward pass, its published recipe); the others 10 (a mask update costs "
        "them a ranking of every weight).",
        default=None,
    )
    movement_schedule: str = _help(
        "linear, cubic or geometric (movement's curve by step; cubic is the published recipe).",
        default="cubic",
    )
    movement_score_init: str = _help(
        "Movement scores at the start: zeros (the published recipe's constant 0) or magnitude (|w|).",
        default="zeros",
    )
    movement_scores_learning_rate: float = _help("Learning rate of the movement scores.", default=1e-2)
    movement_scores_optimizer: str = _help(
        "adam (the published code's: every score moves about the learning rate per step, whatever "
        "its gradient) or sgd (S = -lr * sum of W * dL/dW, the paper's definition of movement).",
        default="adam",
    )
    movement_remove_directions: int = _help(
        "Movement only: before each top-k, remove the top N singular directions of each kernel's "
        "signed scores S * sign(W) (0: the published scores). On a two-class head the scores follow "
        "one gradient direction and the kept weights line up with it; see docs/pruning.md.",
        default=0,
    )
    # Outputs
    output_root: str = _help("Directory for results_*, checkpoints_*, experiment_logs.", default=".")
    experiment_name: str | None = _help("MLflow experiment (default: the task name).", default=None)
    register_model: str | None = _help(
        "Register the run's model in the MLflow Model Registry under this name (default: not registered).",
        default=None,
    )
    verbose: int = _help("0 quiet, 1 progress bars, 2 debug logging (env VERBOSE).", default=1)

    def __post_init__(self) -> None:
        self._normalize()
        self._check_choices()
        self._check_numbers()
        self._check_window()

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)  # only while validating: the object is frozen after

    def _normalize(self) -> None:
        if self.sparsity_steps is not None:
            self._set("sparsity_steps", tuple(float(v) for v in self.sparsity_steps))

    def _check_choices(self) -> None:
        if self.model_size is not None:
            _choice("model_size", self.model_size, MODEL_PRESETS)
        _choice("task", self.task, TASKS)
        if self.pruning_method is not None:
            _choice("pruning_method", self.pruning_method, PRUNING_METHODS)
        _choice("sparsity_schedule", self.sparsity_schedule, SPARSITY_SCHEDULES)
        _choice("pruning_scope", self.pruning_scope, PRUNING_SCOPES)
        _choice("pruning_granularity", self.pruning_granularity, GRANULARITIES)
        _choice("lr_schedule", self.lr_schedule, ("auto", *LR_SCHEDULES))
        _choice("spt_credit", self.spt_credit, SPT_CREDITS)
        _choice("pruning_updates", self.pruning_updates, PRUNING_UPDATES)
        _choice("movement_score_init", self.movement_score_init, MOVEMENT_SCORE_INITS)
        _choice("movement_schedule", self.movement_schedule, MOVEMENT_SCHEDULES)
        _choice("movement_scores_optimizer", self.movement_scores_optimizer, MOVEMENT_SCORE_OPTIMIZERS)
        _choice("embedding_updates", self.embedding_updates, EMBEDDING_UPDATES)
        _choice("jit_compile", self.jit_compile, JIT_COMPILE)
        _choice("matmul_precision", self.matmul_precision, MATMUL_PRECISIONS)
        # The two spellings of the baseline mean the same thing.
        if self.pruning_method == BASELINE or not self.enable_pruning:
            self._set("pruning_method", BASELINE)
            self._set("enable_pruning", False)

    def _check_numbers(self) -> None:
        for name in ("num_layers", "d_model", "num_heads", "dff"):
            _positive_int(name, getattr(self, name), optional=True)
        _positive_int("vocab_size", self.vocab_size, optional=True)
        for name in ("max_len", "epochs"):
            _positive_int(name, getattr(self, name))
        _positive_int("batch_size", self.batch_size, optional=True)
        if not 4 <= self.max_len <= MAX_LEN_LIMIT:
            raise ConfigError(
                f"max_len must be between 4 and {MAX_LEN_LIMIT}, got {self.max_len}; BERT uses 128 to 512"
            )
        for name in ("max_train_samples", "max_eval_samples", "movement_pruning_frequency_steps"):
            _positive_int(name, getattr(self, name), optional=True)
        if self.learning_rate is not None:
            _positive_float("learning_rate", self.learning_rate)
        _positive_float("movement_scores_learning_rate", self.movement_scores_learning_rate)
        for name in ("weight_decay", "dropout_rate", "start_sparsity", "end_sparsity", "warmup_ratio"):
            if getattr(self, name) is not None:
                _in_range(name, getattr(self, name), 0.0, 1.0, "[0, 1)")
        if not (isinstance(self.distill_alpha, (int, float)) and 0.0 <= self.distill_alpha <= 1.0):
            raise ConfigError(f"distill_alpha must be in [0, 1], got {self.distill_alpha!r}")
        _positive_float("distill_temperature", self.distill_temperature)
        if self.teacher is not None and not str(self.teacher).strip():
            raise ConfigError("teacher must name a run id or a model folder, got ''")
        if self.init_from is not None and not str(self.init_from).strip():
            raise ConfigError("init_from must name a checkpoint folder or a hub model id, got ''")
        if self.start_sparsity > self.end_sparsity:
            raise ConfigError(
                f"start_sparsity ({self.start_sparsity}) must be <= end_sparsity ({self.end_sparsity})"
            )
        if self.spt_epsilon is not None and not (0.0 < self.spt_epsilon <= 0.5):
            raise ConfigError(f"spt_epsilon must be in (0, 0.5], got {self.spt_epsilon}")
        if self.spt_min_probes < 0:
            raise ConfigError(f"spt_min_probes must be 0 or more, got {self.spt_min_probes}")
        if not (0.0 < self.spt_reward_alpha <= 1.0):
            raise ConfigError(f"spt_reward_alpha must be in (0, 1], got {self.spt_reward_alpha}")
        count = self.movement_remove_directions
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ConfigError(
                f"movement_remove_directions must be 0 or a positive integer, got {count!r}; 0 keeps "
                "the published scores"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.verbose not in (0, 1, 2):
            raise ConfigError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        if self.sparsity_steps is not None:
            _check_steps(self.sparsity_steps)
        arch = self.architecture()
        if self.init_from is None and arch.d_model % arch.num_heads:  # else the checkpoint's shape rules
            raise ConfigError(f"d_model ({arch.d_model}) must be divisible by num_heads ({arch.num_heads})")
        if self.init_from is None:  # else the method checks it against the checkpoint's kernels
            check_remove_directions(self.movement_remove_directions, min(arch.d_model, arch.dff))

    def _check_window(self) -> None:
        _positive_int("pruning_start_epoch", self.pruning_start_epoch)
        _positive_int("pruning_end_epoch", self.pruning_end_epoch)
        if self.pruning_start_epoch > self.pruning_end_epoch:
            raise ConfigError(
                f"pruning_start_epoch ({self.pruning_start_epoch}) must be <= "
                f"pruning_end_epoch ({self.pruning_end_epoch})"
            )
        if self.enable_pruning:  # the baseline has no window to cap
            for name in ("pruning_end_epoch", "pruning_start_epoch"):
                value = getattr(self, name)
                if value > self.epochs:
                    warnings.warn(
                        f"{name} {value} > epochs {self.epochs}: capped to {self.epochs}", stacklevel=4
                    )
                    self._set(name, self.epochs)

    # ----------------------------------------------------------- resolved values
    def architecture(self) -> Architecture:
        """The encoder's shape; vocab_size auto counts BERT's 30522 rows until a tokenizer fixes it."""
        return preset_architecture(
            self.model_size or DEFAULT_MODEL_SIZE,
            self.max_len,
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            vocab_size=self.vocab_size,
        )

    @property
    def method_name(self) -> str:
        """Name used in result paths: 'baseline' for no pruning."""
        method = self.pruning_method or self.with_training_defaults().pruning_method
        return BASELINE_LABEL if method == BASELINE else method

    @property
    def effective_spt_epsilon(self) -> float:
        if self.spt_epsilon is not None:
            return self.spt_epsilon
        return SPT_EPSILON_BY_SIZE[self.model_size or nearest_preset(self.architecture())]

    @property
    def model_label(self) -> str:
        """The model's name in tags and titles: the preset, or 'pretrained' for an init_from shape."""
        return self.model_size or ("pretrained" if self.init_from else DEFAULT_MODEL_SIZE)

    def with_training_defaults(self) -> GatedBertConfig:
        """The config with learning_rate, lr_schedule, warmup_ratio, dropout_rate, batch_size and
        pruning_method left at auto set: the fine-tuning defaults with init_from, else the from-scratch ones; model_size auto is
        base from scratch (with init_from the checkpoint gives the shape)."""
        defaults = FINE_TUNING_DEFAULTS if self.init_from else SCRATCH_DEFAULTS
        changes = {name: value for name, value in defaults.items() if getattr(self, name) in (None, "auto")}
        if self.model_size is None and not self.init_from:
            changes["model_size"] = DEFAULT_MODEL_SIZE
        return self.replace(**changes) if changes else self

    @property
    def effective_sparsity_steps(self) -> tuple[float, ...]:
        return self.sparsity_steps if self.sparsity_steps is not None else DEFAULT_SPARSITY_STEPS

    @property
    def effective_experiment_name(self) -> str:
        return self.experiment_name or self.task

    # --------------------------------------------------------------- round trip
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["sparsity_steps"] is not None:
            data["sparsity_steps"] = list(data["sparsity_steps"])
        return data

    def resolved_dict(self) -> dict[str, Any]:
        """The config with its architecture and experiment: what a run logs. Called on the config
        `pruning.resolve` made concrete, every value here is one the run used."""
        data = self.to_dict()
        data.update(dataclasses.asdict(self.architecture()))
        data.update(
            spt_epsilon=self.effective_spt_epsilon,
            sparsity_steps=list(self.effective_sparsity_steps),
            experiment_name=self.effective_experiment_name,
        )
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GatedBertConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> GatedBertConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> GatedBertConfig:
        """A copy with `changes`. A new pruning_method alone also sets enable_pruning to match
        (else a baseline config would normalise a new method back to the baseline)."""
        if "pruning_method" in changes and "enable_pruning" not in changes:
            changes["enable_pruning"] = changes["pruning_method"] != BASELINE
        return dataclasses.replace(self, **changes)


def field_help() -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(GatedBertConfig)}


def apply_environment(values: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Apply BENCHMARK_EPOCHS, VERBOSE and GLUE_DIR to a dict of config values."""
    environ = dict(os.environ if environ is None else environ)
    values = dict(values)
    if environ.get("BENCHMARK_EPOCHS"):
        values["epochs"] = _env_int("BENCHMARK_EPOCHS", environ["BENCHMARK_EPOCHS"])
    if environ.get("VERBOSE"):
        values["verbose"] = _env_int("VERBOSE", environ["VERBOSE"])
    if not values.get("data_dir") and environ.get("GLUE_DIR"):
        values["data_dir"] = environ["GLUE_DIR"]
    return values


def _env_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None


def check_remove_directions(count: int, smallest_side: int) -> None:
    """`movement_remove_directions` must leave something of every kernel."""
    if count >= smallest_side:
        raise ConfigError(
            f"movement_remove_directions {count} must be below the smallest kernel side ({smallest_side}); try 4"
        )


def _choice(name: str, value: Any, valid: Any) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(valid)}")


def _positive_int(name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _positive_float(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def _in_range(name: str, value: Any, low: float, high: float, text: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value < high):
        raise ConfigError(f"{name} must be in {text}, got {value!r}")


def _check_steps(steps: tuple[float, ...]) -> None:
    if not steps:
        raise ConfigError("sparsity_steps must not be empty; give percentages like 10 50 90")
    for value in steps:
        if not (0.0 < value < 100.0):
            raise ConfigError(f"sparsity_steps values must be within (0, 100) percent, got {value}")
    for before, after in zip(steps, steps[1:]):
        if after <= before:
            raise ConfigError(f"sparsity_steps must be strictly increasing, got {before} then {after}")
