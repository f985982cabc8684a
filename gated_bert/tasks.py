"""The GLUE task registry: columns, labels, files and metrics of every task.

One explicit dict, `TASKS`; everything else looks tasks up here rather than
matching on names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TsvLayout:
    """Where a task's fields are in GLUE's original TSV files.

    Columns are header names when `header` is True, else 0-based positions.
    `min_fields` is the number of fields every row must have.
    """

    header: bool
    text_a: str | int
    text_b: str | int | None
    label: str | int
    min_fields: int


@dataclass(frozen=True)
class Task:
    name: str
    glue_dir: str  # folder name in the original GLUE download
    hub_columns: tuple[str, str | None]  # text columns in nyu-mll/glue
    label_names: tuple[str, ...]  # hub order: index == label id; () for regression
    train_file: str
    eval_files: dict[str, str]  # eval split name -> file in glue_dir
    hub_eval_splits: dict[str, str]  # eval split name -> hub split
    layout: TsvLayout
    metrics: tuple[str, ...]  # computed on every eval split
    main_metric: str

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_outputs(self) -> int:
        return 1 if self.is_regression else len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return self.hub_columns[1] is not None

    @property
    def direction(self) -> str:
        """Optimization direction of `main_metric`."""
        return "maximize"


_DEV = {"dev": "dev.tsv"}
_HUB_DEV = {"dev": "validation"}
_PAIR_INDEX_LAYOUT = TsvLayout(True, "sentence1", "sentence2", "label", 4)

TASKS: dict[str, Task] = {
    "sst2": Task(
        "sst2",
        "SST-2",
        ("sentence", None),
        ("negative", "positive"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        TsvLayout(True, "sentence", None, "label", 2),
        ("accuracy",),
        "accuracy",
    ),
    "mnli": Task(
        "mnli",
        "MNLI",
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        "train.tsv",
        {"matched": "dev_matched.tsv", "mismatched": "dev_mismatched.tsv"},
        {"matched": "validation_matched", "mismatched": "validation_mismatched"},
        TsvLayout(True, "sentence1", "sentence2", "gold_label", 12),
        ("accuracy",),
        "accuracy",
    ),
    "qnli": Task(
        "qnli",
        "QNLI",
        ("question", "sentence"),
        ("entailment", "not_entailment"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        TsvLayout(True, "question", "sentence", "label", 4),
        ("accuracy",),
        "accuracy",
    ),
    "rte": Task(
        "rte",
        "RTE",
        ("sentence1", "sentence2"),
        ("entailment", "not_entailment"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        _PAIR_INDEX_LAYOUT,
        ("accuracy",),
        "accuracy",
    ),
    "wnli": Task(
        "wnli",
        "WNLI",
        ("sentence1", "sentence2"),
        ("not_entailment", "entailment"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        _PAIR_INDEX_LAYOUT,
        ("accuracy",),
        "accuracy",
    ),
    "mrpc": Task(
        "mrpc",
        "MRPC",
        ("sentence1", "sentence2"),
        ("not_equivalent", "equivalent"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        TsvLayout(True, "#1 String", "#2 String", "Quality", 5),
        ("accuracy", "f1"),
        "f1",
    ),
    "cola": Task(
        "cola",
        "CoLA",
        ("sentence", None),
        ("unacceptable", "acceptable"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        TsvLayout(False, 3, None, 1, 4),
        ("matthews_corrcoef", "accuracy"),
        "matthews_corrcoef",
    ),
    "stsb": Task(
        "stsb",
        "STS-B",
        ("sentence1", "sentence2"),
        (),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        TsvLayout(True, "sentence1", "sentence2", "score", 10),
        ("pearson", "spearman"),
        "pearson",
    ),
    "qqp": Task(
        "qqp",
        "QQP",
        ("question1", "question2"),
        ("not_duplicate", "duplicate"),
        "train.tsv",
        _DEV,
        _HUB_DEV,
        TsvLayout(True, "question1", "question2", "is_duplicate", 6),
        ("accuracy", "f1"),
        "f1",
    ),
}
