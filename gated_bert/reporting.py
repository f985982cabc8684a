"""Results on disk: the per-epoch CSV, metadata JSON and plots of a run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from gated_bert.config import GatedBertConfig  # noqa: E402
from gated_bert.layers.encoder_block import PRUNABLE_ROLES  # noqa: E402


@dataclass(frozen=True)
class RunPaths:
    """Where one run writes (the spec's layout under output_root)."""

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
    return {f"final_{k}": float(v) for k, v in row.items() if k.startswith("eval_") or k == "sparsity"}


def write_curves(
    rows: list[dict[str, float]], config: GatedBertConfig, main_metric: str, paths: RunPaths
) -> None:
    """The results CSV, the metric/loss-vs-sparsity plots and the final sparsity heatmap."""
    title = f"{config.method_name} on {config.task} ({config.model_size})"
    write_csv(rows, paths.csv)
    plot_metric_vs_sparsity(rows, main_metric, title, paths.accuracy_plot)
    plot_loss_vs_sparsity(rows, title, paths.loss_plot)
    plot_sparsity_heatmap(rows[-1], config.architecture().num_layers, title, paths.heatmap)


def save_model(classifier, tokenizer, config: GatedBertConfig, paths: RunPaths) -> tuple[Path, Path, Path]:
    """model.keras (masks are weights: saved with it), tokenizer.json and config.json."""
    model_dir = paths.results_dir / f"model_{config.method_name}_{paths.timestamp}"
    model_dir.mkdir()
    model_path, tokenizer_path, config_path = (
        model_dir / "model.keras",
        model_dir / "tokenizer.json",
        model_dir / "config.json",
    )
    classifier.save(model_path)
    tokenizer.save(str(tokenizer_path))
    config_path.write_text(config.to_json())
    return model_path, tokenizer_path, config_path


def write_csv(rows: list[dict[str, float]], path: Path) -> None:
    frame = pd.DataFrame(rows)
    first = [c for c in ("epoch", "train_loss", "eval_loss", "sparsity") if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    frame.to_csv(path, index=False)


def write_metadata(path: Path, metadata: dict) -> None:
    path.write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))


def _dual_axis(rows, left_keys, left_label, title, path: Path) -> None:
    epochs = [r["epoch"] for r in rows]
    fig, left = plt.subplots(figsize=(8, 4.5))
    for key in left_keys:
        if key in rows[0]:
            left.plot(epochs, [r[key] for r in rows], marker="o", label=key)
    left.set_xlabel("epoch")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel(left_label)
    right = left.twinx()
    right.plot(epochs, [r.get("sparsity", 0.0) for r in rows], "k--", marker="s", label="sparsity")
    right.set_ylabel("encoder sparsity")
    right.set_ylim(-0.02, 1.02)
    lines = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(lines[0] + more[0], lines[1] + more[1], loc="best")
    left.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_metric_vs_sparsity(rows, main_metric: str, title: str, path: Path) -> None:
    _dual_axis(rows, [f"eval_{main_metric}"], main_metric, title, path)


def plot_loss_vs_sparsity(rows, title: str, path: Path) -> None:
    _dual_axis(rows, ["train_loss", "eval_loss"], "loss", title, path)


def sparsity_matrix(row: dict[str, float], num_layers: int) -> np.ndarray:
    """(layers x roles) matrix of per-kernel sparsity from a results row."""
    return np.array(
        [[row.get(f"sparsity/layer_{i}/{role}", 0.0) for role in PRUNABLE_ROLES] for i in range(num_layers)]
    )


def plot_sparsity_heatmap(row: dict[str, float], num_layers: int, title: str, path: Path) -> None:
    matrix = sparsity_matrix(row, num_layers)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * num_layers))
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(PRUNABLE_ROLES)), PRUNABLE_ROLES, rotation=30, ha="right")
    ax.set_yticks(range(num_layers), [f"layer {i}" for i in range(num_layers)])
    for i in range(num_layers):
        for j in range(len(PRUNABLE_ROLES)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(image, ax=ax, label="sparsity")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
