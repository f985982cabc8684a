"""Command-line options generated from the settings dataclasses.

Every `train` option is a `GatedBertConfig` field, every `sweep` option a
`SweepSettings` field, with the field's type, default and help text; the
`experiments` short flags map onto config fields the same way. The MLproject
parameters are generated from the same fields (`gated_bert/mlproject.py`),
so nothing repeats a default by hand.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import click

from gated_bert.config import GatedBertConfig, apply_environment, field_help

NONE_WORDS = ("", "none", "auto", "null")
UNSET_WORDS = ("", "auto", "null")  # for fields where "none" is a value (pruning_method)


class OptionalParam(click.ParamType):
    """int/float/str that also accepts '', 'auto' or 'none' for "not given" ('none' stays a value
    for fields where it is one: pruning_method)."""

    def __init__(self, inner: type, unset_words: tuple[str, ...] = NONE_WORDS):
        self.inner = inner
        self.unset_words = unset_words
        self.name = f"{inner.__name__}|auto"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() in self.unset_words):
            return None
        if isinstance(value, self.inner):
            return value
        try:
            return self.inner(value)
        except ValueError:
            self.fail(f"{value!r} is not a valid {self.inner.__name__} (or 'auto')", param, ctx)


class StepsParam(click.ParamType):
    """Sparsity steps in percent: '10 25 50', '10,25,50' or 'auto'."""

    name = "steps|auto"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, tuple):
            return value
        text = str(value).strip()
        if text.lower() in NONE_WORDS:
            return None
        try:
            return tuple(float(v) for v in text.replace(",", " ").split())
        except ValueError:
            self.fail(f"{value!r} is not a list of numbers like '10 25 50 90' (or 'auto')", param, ctx)


def click_type(cls: type, name: str):
    """The click type of dataclass field `name`: optional fields also take 'auto'."""
    hint = typing.get_type_hints(cls)[name]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint)
    if typing.get_origin(base) is tuple:
        return StepsParam()
    if base is bool:
        return click.BOOL
    if optional:
        field = next(f for f in dataclasses.fields(cls) if f.name == name)
        if field.metadata.get("none_is_a_value"):
            return OptionalParam(base, UNSET_WORDS)
        return OptionalParam(base)
    return {int: click.INT, float: click.FLOAT, str: click.STRING}[base]


def field_options(cls: type, skip: tuple[str, ...] = (), defaults: dict | None = None):
    """Decorator: one `--field-name VALUE` option per field of dataclass `cls`, defaulting to the
    field's default or to `defaults[name]` (a command's own, e.g. the sweep's budget)."""
    defaults = defaults or {}

    def decorate(func):
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip:
                continue
            default = defaults.get(f.name, f.default)
            func = click.option(
                f"--{f.name.replace('_', '-')}",
                f.name,
                type=click_type(cls, f.name),
                default=default,
                show_default=True if default is not None else "auto",
                help=f.metadata.get("help", ""),
            )(func)
        return func

    return decorate


config_options = field_options(GatedBertConfig)


def build_config(values: dict) -> GatedBertConfig:
    """Config from option values, after BENCHMARK_EPOCHS / VERBOSE / GLUE_DIR."""
    fields = {f.name for f in dataclasses.fields(GatedBertConfig)}
    return GatedBertConfig(**apply_environment({k: v for k, v in values.items() if k in fields}))


@dataclass(frozen=True)
class ShortFlag:
    """An `experiments` flag: its short and long spellings and the config field it sets."""

    short: str
    long: str
    field: str


# The original description's run_experiments.sh flags (spellings kept as they are).
EXPERIMENT_FLAGS = (
    ShortFlag("-e", "--epochs", "epochs"),
    ShortFlag("-b", "--batch-size", "batch_size"),
    ShortFlag("-l", "--learning-rate", "learning_rate"),
    ShortFlag("-m", "--model-size", "model_size"),
    ShortFlag("-i", "--init-from", "init_from"),
    ShortFlag("-s", "--start-sparsity", "start_sparsity"),
    ShortFlag("-f", "--end-sparsity", "end_sparsity"),
    ShortFlag("-ps", "--pruning-start", "pruning_start_epoch"),
    ShortFlag("-pe", "--pruning-end", "pruning_end_epoch"),
    ShortFlag("-ss", "--sparsity-steps", "sparsity_steps"),
    ShortFlag("-se", "--spt-explore", "spt_explore_per_layer"),
    ShortFlag("-t", "--task", "task"),
    ShortFlag("-ml", "--max-len", "max_len"),
    ShortFlag("", "--data-dir", "data_dir"),
    ShortFlag("", "--max-train-samples", "max_train_samples"),
    ShortFlag("", "--output-root", "output_root"),
    # beyond the original script: the training recipe and the pruning settings the results vary
    ShortFlag("", "--lr-schedule", "lr_schedule"),
    ShortFlag("", "--warmup-ratio", "warmup_ratio"),
    ShortFlag("", "--dropout-rate", "dropout_rate"),
    ShortFlag("", "--weight-decay", "weight_decay"),
    ShortFlag("", "--pruning-updates", "pruning_updates"),
    ShortFlag("", "--movement-pruning-frequency-steps", "movement_pruning_frequency_steps"),
    ShortFlag("", "--movement-score-init", "movement_score_init"),
    ShortFlag("", "--movement-scores-learning-rate", "movement_scores_learning_rate"),
    ShortFlag("", "--movement-remove-directions", "movement_remove_directions"),
    ShortFlag("", "--spt-credit", "spt_credit"),
    ShortFlag("", "--sparsity-schedule", "sparsity_schedule"),
    ShortFlag("", "--pruning-scope", "pruning_scope"),
    ShortFlag("", "--distill-alpha", "distill_alpha"),
    ShortFlag("", "--distill-temperature", "distill_temperature"),
    ShortFlag("", "--experiment-name", "experiment_name"),
)
TRUE_FALSE = click.Choice(["true", "false"], case_sensitive=False)


def _experiment_option(flag: ShortFlag):
    f = next(f for f in dataclasses.fields(GatedBertConfig) if f.name == flag.field)
    kind = click_type(GatedBertConfig, f.name)
    default = f.default
    if kind is click.BOOL:  # the original script spells booleans true/false
        kind, default = TRUE_FALSE, str(default).lower()
    spellings = [s for s in (flag.short, flag.long) if s]
    return click.option(
        *spellings,
        flag.field,
        type=kind,
        default=default,
        show_default=True if default is not None else "auto",
        help=field_help()[f.name],
    )


def experiment_options(func):
    """The config-field flags of `experiments`, each with the config's default and help."""
    for flag in reversed(EXPERIMENT_FLAGS):
        func = _experiment_option(flag)(func)
    return func


def experiment_values(values: dict) -> dict:
    """Config values from parsed `experiments` flags (true/false -> bool), after the environment."""
    out = {}
    for flag in EXPERIMENT_FLAGS:
        value = values[flag.field]
        if click_type(GatedBertConfig, flag.field) is click.BOOL:
            value = str(value).lower() == "true"
        out[flag.field] = value
    return apply_environment(out)
