"""The sweep's search space: a default over SPT and schedule settings, or a file.

A space is a dict of `ParamSpec`s keyed by config field. The default searches
spt_epsilon, spt_reward_alpha, spt_explore_per_layer, spt_credit, spt_min_probes, the pruning window
(1 <= start < end <= epochs), the schedule's shape (step list, cubic or geometric) and, for a base
that distils from a teacher, distill_alpha and distill_temperature;
end_sparsity stays fixed so that trials compete at equal sparsity.

A YAML/JSON file narrows the default (its params replace same-named ones) or,
with `replace: true`, replaces it:

    replace: false
    params:
      spt_epsilon: {type: float, low: 0.001, high: 0.01, log: true}
      spt_explore_per_layer: {type: categorical, choices: [true]}
      learning_rate: {type: float, low: 1e-5, high: 1e-3, log: true}
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError

KINDS = ("float", "int", "categorical")
WINDOW = ("pruning_start_epoch", "pruning_end_epoch")
DISTILLATION = ("distill_alpha", "distill_temperature")  # searched only with a teacher


@dataclass(frozen=True)
class ParamSpec:
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial, name: str, low=None, high=None):
        low = self.low if low is None else low
        high = self.high if high is None else high
        if self.kind == "float":
            return trial.suggest_float(name, low, high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(name, int(low), int(high), log=self.log)
        return trial.suggest_categorical(name, list(self.choices))


def default_space(epochs: int) -> dict[str, ParamSpec]:
    return {
        "spt_epsilon": ParamSpec("float", 1e-4, 5e-2, log=True),
        "spt_reward_alpha": ParamSpec("float", 0.01, 0.5),
        "spt_explore_per_layer": ParamSpec("categorical", choices=(True, False)),
        "spt_credit": ParamSpec("categorical", choices=("saliency", "first_order")),
        "spt_min_probes": ParamSpec("int", 0, 16),
        "pruning_start_epoch": ParamSpec("int", 1, max(1, epochs - 1)),
        "pruning_end_epoch": ParamSpec("int", 2, epochs),
        "sparsity_schedule": ParamSpec("categorical", choices=("steps", "cubic", "geometric")),
        # drawn only when the base distils from a teacher (--teacher)
        "distill_alpha": ParamSpec("float", 0.1, 0.9),
        "distill_temperature": ParamSpec("float", 1.0, 8.0, log=True),
    }


def _parse_spec(name: str, raw: Any, source: str) -> ParamSpec:
    fields = {f.name for f in dataclasses.fields(GatedBertConfig)}
    if name not in fields:
        raise ConfigError(
            f"{source}: unknown config field {name!r} in the search space; valid: {sorted(fields)}"
        )
    if not isinstance(raw, dict) or raw.get("type") not in KINDS:
        raise ConfigError(f"{source}: {name} needs a mapping with type one of {KINDS}, got {raw!r}")
    kind = raw["type"]
    unknown = set(raw) - {"type", "low", "high", "log", "choices"}
    if unknown:
        raise ConfigError(
            f"{source}: {name} has unknown key(s) {sorted(unknown)}; use low, high, log or choices"
        )
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{source}: {name} is categorical and needs a non-empty list of choices")
        return ParamSpec(kind, choices=tuple(_coerce(name, c, source) for c in choices))
    try:
        low, high = float(raw["low"]), float(raw["high"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{source}: {name} ({kind}) needs numeric low and high, got {raw!r}") from None
    if not low <= high:
        raise ConfigError(f"{source}: {name} has low {low} > high {high}")
    log = bool(raw.get("log", False))
    if log and low <= 0:
        raise ConfigError(f"{source}: {name} is log-scaled and needs low > 0, got {low}")
    return ParamSpec(kind, low, high, log)


def _coerce(name: str, value: Any, source: str) -> Any:
    """YAML reads 1.0e12 as a string; give numeric fields numbers."""
    hint = typing.get_type_hints(GatedBertConfig)[name]
    numeric = next((t for t in (float, int) if t is hint or t in typing.get_args(hint)), None)
    if numeric is None or not isinstance(value, str):
        return value
    try:
        return numeric(float(value)) if numeric is int else float(value)
    except ValueError:
        raise ConfigError(f"{source}: {name} choice {value!r} is not a number") from None


def load_space(path: str | None, epochs: int) -> dict[str, ParamSpec]:
    """The default space, narrowed or replaced by the file at `path`."""
    space = default_space(epochs)
    if not path:
        return space
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"search space file {path!r} does not exist; pass an existing YAML or JSON file")
    try:
        text = file.read_text()
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(
            f"search space file {path!r} is not valid {'JSON' if file.suffix == '.json' else 'YAML'}: "
            f"{' '.join(str(err).split())[:160]}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ConfigError(f"search space file {path!r} needs a top-level 'params' mapping of config fields")
    unknown = set(data) - {"params", "replace"}
    if unknown:
        raise ConfigError(f"search space file {path!r} has unknown top-level key(s) {sorted(unknown)}")
    parsed = {name: _parse_spec(name, raw, path) for name, raw in data["params"].items()}
    return parsed if data.get("replace") else {**space, **parsed}


def suggest_config(trial, space: dict[str, ParamSpec], base: GatedBertConfig) -> GatedBertConfig:
    """Sample a config: the base with the space's fields replaced.

    The pruning window keeps 1 <= start < end <= epochs: the end epoch is drawn
    from (start, epochs] intersected with its own range.
    """
    values: dict[str, Any] = {}
    for name, spec in space.items():
        if name in WINDOW or (name in DISTILLATION and base.teacher is None):
            continue
        values[name] = spec.suggest(trial, name)
    epochs = values.get("epochs", base.epochs)
    if "pruning_start_epoch" in space or "pruning_end_epoch" in space:
        if epochs < 2:
            raise ConfigError("searching the pruning window needs epochs >= 2 (start < end)")
        start_spec = space.get("pruning_start_epoch", ParamSpec("int", 1, epochs - 1))
        end_spec = space.get("pruning_end_epoch", ParamSpec("int", 2, epochs))
        end_high = min(epochs, int(end_spec.high))
        start_low, start_high = max(1, int(start_spec.low)), min(int(start_spec.high), end_high - 1)
        if start_low > start_high:
            raise ConfigError(
                f"no pruning window fits: start in [{start_low}, {start_high}] with end <= {end_high}; "
                "widen pruning_start_epoch/pruning_end_epoch or raise epochs"
            )
        start = start_spec.suggest(trial, "pruning_start_epoch", start_low, start_high)
        end = end_spec.suggest(trial, "pruning_end_epoch", max(start + 1, int(end_spec.low)), end_high)
        values.update(pruning_start_epoch=start, pruning_end_epoch=end)
    return base.replace(**values)
