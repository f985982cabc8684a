"""Results on disk: the per-epoch CSV, metadata JSON and plots of a run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gated_bert import metric_names as names
from gated_bert.config import GatedBertConfig
from gated_bert.errors import DataError
from gated_bert.layers.encoder_block import PRUNABLE_ROLES
from gated_bert.plots import Line, dual_axis_plot, heatmap


@dataclass(frozen=True)
class RunPaths:
    """Where one run writes (results_*, checkpoints_*, experiment_logs under output_root)."""

    results_dir: Path
    checkpoints_dir: Path
    logs_dir: Path
    timestamp: str
    method: str

    @classmethod
    def for_config(cls, config: GatedBertConfig, timestamp: str) -> RunPaths:
        root = Path(config.output_root)
        method = config.method_name
        return cls(
            results_dir=root / f"results_{method}_{config.task}",
            checkpoints_dir=root / f"checkpoints_{method}_{config.task}" / timestamp,
            logs_dir=root / "experiment_logs",
            timestamp=timestamp,
            method=method,
        )

    def to_json(self) -> str:
        """The paths, absolute, as JSON (a resumed run writes to the same place from any folder)."""
        data = {k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in self.__dict__.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunPaths:
        data = json.loads(text)
        for key in ("results_dir", "checkpoints_dir", "logs_dir"):
            data[key] = Path(data[key])
        return cls(**data)

    def make_dirs(self) -> None:
        """Create the results and log folders; one that cannot be created raises DataError."""
        for directory in (self.results_dir, self.logs_dir):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise DataError(
                    f"cannot create {str(directory)!r} ({err.strerror}); pass a writable --output-root"
                ) from None

    def result_files(self) -> list[Path]:
        """The files a run writes into its results folder, besides the model."""
        return [self.csv, self.metadata, self.accuracy_plot, self.loss_plot, self.heatmap]

    def file(self, stem: str, suffix: str) -> Path:
        return self.results_dir / f"{stem}_{self.method}_{self.timestamp}{suffix}"

    @property
    def csv(self) -> Path:
        return self.file("results", ".csv")

    @property
    def metadata(self) -> Path:
        return self.file("metadata", ".json")

    @property
    def accuracy_plot(self) -> Path:
        return self.file("accuracy_sparsity", ".png")

    @property
    def loss_plot(self) -> Path:
        return self.file("loss_sparsity", ".png")

    @property
    def heatmap(self) -> Path:
        return self.file("sparsity_heatmap", ".png")

    @property
    def log_file(self) -> Path:
        return self.logs_dir / f"train_{self.method}_{self.timestamp}.log"


def final_metrics(row: dict[str, float]) -> dict[str, float]:
    """The last epoch's eval metrics and sparsity as final_* values."""
    return {
        names.final(k): float(v)
        for k, v in row.items()
        if k.startswith(names.EVAL_PREFIX) or k == names.SPARSITY
    }


def summary_metrics(
    rows: list[dict[str, float]], config: GatedBertConfig, main_metric: str
) -> dict[str, float]:
    """What a whole run says about its method, besides the final epoch:

    - `window_mean_eval_<metric>`: the mean dev metric over epochs pruning_start_epoch ..
      pruning_end_epoch (each evaluated right after that epoch's mask update: how much the
      updates hurt);
    - `best_eval_<metric>_at_target` and `..._epoch`: the best dev metric among the epochs at
      the final target sparsity (every epoch for the baseline).
    """
    key = f"{names.EVAL_PREFIX}{main_metric}"
    scored = [r for r in rows if key in r]
    if not scored:
        return {}
    window = [
        r[key] for r in scored if config.pruning_start_epoch <= r[names.EPOCH] <= config.pruning_end_epoch
    ]
    final_target = scored[-1].get(names.TARGET_SPARSITY, 0.0)
    at_target = [r for r in scored if r.get(names.TARGET_SPARSITY, 0.0) == final_target]
    best = max(at_target, key=lambda r: r[key])
    out = {f"best_{key}_at_target": float(best[key]), f"best_{key}_at_target_epoch": float(best[names.EPOCH])}
    if window:
        out[f"window_mean_{key}"] = float(np.mean(window))
    return out


def write_curves(
    rows: list[dict[str, float]], config: GatedBertConfig, main_metric: str, paths: RunPaths
) -> None:
    """The results CSV, the metric/loss-vs-sparsity plots and the final sparsity heatmap."""
    title = f"{config.method_name} on {config.task} ({config.model_label})"
    write_csv(rows, paths.csv)
    plot_metric_vs_sparsity(rows, main_metric, title, paths.accuracy_plot)
    plot_loss_vs_sparsity(rows, title, paths.loss_plot)
    plot_sparsity_heatmap(rows[-1], config.architecture().num_layers, title, paths.heatmap)


@dataclass(frozen=True)
class SavedModel:
    """The files of a saved model: Keras model, tokenizer and the run's config."""

    model: Path
    tokenizer: Path
    config: Path


def save_model(classifier, tokenizer, config: GatedBertConfig, paths: RunPaths) -> SavedModel:
    """model.keras (masks are weights: saved with it), tokenizer.json and config.json."""
    model_dir = paths.results_dir / f"model_{config.method_name}_{paths.timestamp}"
    model_dir.mkdir(exist_ok=True)  # a resumed run may have got this far before
    saved = SavedModel(model_dir / "model.keras", model_dir / "tokenizer.json", model_dir / "config.json")
    classifier.save(saved.model)
    tokenizer.save(str(saved.tokenizer))
    saved.config.write_text(config.to_json())
    return saved


def write_results(rows, classifier, prepared, config: GatedBertConfig, paths: RunPaths, metadata: dict):
    """Everything a finished run writes to disk: curves, plots, the model and the metadata."""
    write_curves(rows, config, prepared.task.main_metric, paths)
    saved = save_model(classifier, prepared.tokenizer, config, paths)
    write_metadata(paths.metadata, metadata)
    return saved


def write_csv(rows: list[dict[str, float]], path: Path) -> None:
    frame = pd.DataFrame(rows)
    leading = (names.EPOCH, names.TRAIN_LOSS, names.EVAL_LOSS, names.SPARSITY)
    first = [c for c in leading if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame.to_csv(path, index=False)


def write_metadata(path: Path, metadata: dict) -> None:
    path.write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))


def _plot_by_epoch(rows, left_keys, left_label, title, path: Path) -> None:
    epochs = tuple(r[names.EPOCH] for r in rows)
    left = [Line(epochs, tuple(r[k] for r in rows), k) for k in left_keys if k in rows[0]]
    sparsity = Line(epochs, tuple(r.get(names.SPARSITY, 0.0) for r in rows), names.SPARSITY, "k--s")
    dual_axis_plot(path, title, left_label, left, [sparsity])


def plot_metric_vs_sparsity(rows, main_metric: str, title: str, path: Path) -> None:
    _plot_by_epoch(rows, [names.eval_metric(main_metric)], main_metric, title, path)


def plot_loss_vs_sparsity(rows, title: str, path: Path) -> None:
    _plot_by_epoch(rows, [names.TRAIN_LOSS, names.EVAL_LOSS], "loss", title, path)


def sparsity_matrix(row: dict[str, float], num_layers: int) -> np.ndarray:
    """(layers x roles) matrix of per-kernel sparsity from a results row."""
    return np.array(
        [
            [row.get(names.layer_sparsity(f"layer_{i}/{role}"), 0.0) for role in PRUNABLE_ROLES]
            for i in range(num_layers)
        ]
    )


def plot_sparsity_heatmap(row: dict[str, float], num_layers: int, title: str, path: Path) -> None:
    matrix = sparsity_matrix(row, num_layers)
    layers = [f"layer {i}" for i in range(num_layers)]
    heatmap(path, matrix, layers, list(PRUNABLE_ROLES), title, "sparsity")
