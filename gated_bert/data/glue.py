"""Load a GLUE task from a local directory (original TSV layout) or the hub.

Both sources return the same `TaskData`: text columns and label ids in the
hub's numbering, so the rest of the pipeline never knows where data came from.
"""

from __future__ import annotations

import csv
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gated_bert.errors import DataError
from gated_bert.tasks import TASKS, Task, TsvLayout

HUB_DATASET = "nyu-mll/glue"
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class Split:
    """One split of a task: texts and labels (int ids, or float scores for stsb)."""

    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.text_a)

    def head(self, n: int | None) -> Split:
        if n is None or n >= len(self):
            return self
        text_b = None if self.text_b is None else self.text_b[:n]
        return Split(self.text_a[:n], text_b, self.labels[:n], self.source)


@dataclass(frozen=True)
class TaskData:
    task: Task
    train: Split
    evals: dict[str, Split]  # eval split name -> split (mnli: matched, mismatched)
    source: str  # "hub:nyu-mll/glue" or the local directory


def load_task(
    task_name: str,
    data_dir: str | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> TaskData:
    """Load `task_name` from `data_dir` (GLUE TSV layout) or, if None, the hub."""
    if task_name not in TASKS:
        raise DataError(f"unknown task {task_name!r}; choose one of: {', '.join(TASKS)}")
    task = TASKS[task_name]
    data = _load_local(task, Path(data_dir)) if data_dir else _load_hub(task)
    for name, split in [("train", data.train), *data.evals.items()]:
        if not len(split):
            raise DataError(
                f"{split.source}: the {name} split has no examples; a GLUE file needs rows after its header"
            )
    return TaskData(
        task=data.task,
        train=data.train.head(max_train_samples),
        evals={name: split.head(max_eval_samples) for name, split in data.evals.items()},
        source=data.source,
    )


# ------------------------------------------------------------------ local TSV
def _load_local(task: Task, data_dir: Path) -> TaskData:
    if not data_dir.is_dir():
        problem = "is a file, not a folder" if data_dir.exists() else "does not exist"
        raise DataError(
            f"data directory {str(data_dir)!r} {problem}; pass --data-dir pointing at a "
            f"GLUE folder that contains {task.glue_dir}/"
        )
    task_dir = data_dir / task.glue_dir
    if not task_dir.is_dir():
        raise DataError(
            f"no {task.glue_dir}/ folder in {str(data_dir)!r}; put the GLUE files for "
            f"{task.name} in {task_dir}/"
        )
    train = read_tsv(task, task_dir / task.train_file)
    evals = {name: read_tsv(task, task_dir / fname) for name, fname in task.eval_files.items()}
    return TaskData(task, train, evals, str(data_dir))


def read_tsv(task: Task, path: Path) -> Split:
    """Read one GLUE TSV file exactly as GLUE ships it (quoting disabled, BOM ok)."""
    if not path.is_file():
        raise DataError(
            f"missing file {str(path)!r}; {task.name} needs {task.train_file} and "
            f"{', '.join(task.eval_files.values())} in {path.parent}/"
        )
    layout = task.layout
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            quoting=csv.QUOTE_NONE,
            header=0 if layout.header else None,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    except pd.errors.ParserError as err:
        raise DataError(f"malformed TSV {str(path)!r}: {_one_line(err)}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"empty file {str(path)!r}; expected GLUE {task.name} rows") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    first_row = 2 if layout.header else 1  # 1-based file line of frame row 0
    if frame.shape[1] < layout.min_fields:
        raise DataError(
            f"{str(path)!r} has {frame.shape[1]} columns, expected at least {layout.min_fields} "
            f"for {task.name} ({_describe(layout)})"
        )
    needed = [c for c in (layout.text_a, layout.text_b, layout.label) if c is not None]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(
            f"{str(path)!r} lacks column(s) {missing} for {task.name}; header has {list(frame.columns)[:12]}"
        )
    text_a = frame[layout.text_a].tolist()
    text_b = frame[layout.text_b].tolist() if layout.text_b is not None else None
    labels = _parse_labels(task, frame[layout.label].tolist(), path, first_row)
    return Split(text_a, text_b, labels, str(path))


def _parse_labels(task: Task, raw: list[str], path: Path, first_row: int) -> np.ndarray:
    if task.is_regression:
        out = np.empty(len(raw), dtype=np.float32)
        for i, value in enumerate(raw):
            try:
                out[i] = float(value)
            except ValueError:
                out[i] = np.nan
            if not (0.0 <= out[i] <= 5.0):
                raise DataError(
                    f"{str(path)!r} line {first_row + i}: score {value!r} is not a number in [0, 5]"
                )
        return out
    ids = {name: i for i, name in enumerate(task.label_names)}
    ids.update({str(i): i for i in range(len(task.label_names))})
    out = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        if value not in ids:
            raise DataError(
                f"{str(path)!r} line {first_row + i}: unknown label {value!r} for {task.name}; "
                f"expected one of {sorted(ids)}"
            )
        out[i] = ids[value]
    return out


def _describe(layout: TsvLayout) -> str:
    cols = [c for c in (layout.text_a, layout.text_b, layout.label) if c is not None]
    kind = "header row" if layout.header else "no header row"
    return f"{kind}, columns {cols}"


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


# ----------------------------------------------------------------------- hub
def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(task: Task) -> TaskData:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    if not offline and not _hub_reachable():
        raise DataError(
            f"cannot reach the HuggingFace hub ({HUB_HOST}) to download {HUB_DATASET}/{task.name}; "
            "pass --data-dir DIR (or set GLUE_DIR) pointing at a local GLUE folder in the "
            "original TSV layout"
        )
    import datasets  # heavy import: only when the hub is really used

    try:
        dataset = datasets.load_dataset(HUB_DATASET, task.name)
    except Exception as err:  # network, cache or hub errors all mean the same to the user
        raise DataError(
            f"could not load {HUB_DATASET}/{task.name} from the hub ({_one_line(err)[:200]}); "
            "pass --data-dir DIR with a local GLUE folder instead"
        ) from None
    col_a, col_b = task.hub_columns

    def split(name: str) -> Split:
        part = dataset[name]
        labels = np.asarray(part["label"], dtype=np.float32 if task.is_regression else np.int64)
        return Split(
            list(part[col_a]),
            list(part[col_b]) if col_b else None,
            labels,
            f"hub:{HUB_DATASET}/{task.name}/{name}",
        )

    evals = {name: split(hub_name) for name, hub_name in task.hub_eval_splits.items()}
    return TaskData(task, split("train"), evals, f"hub:{HUB_DATASET}")
