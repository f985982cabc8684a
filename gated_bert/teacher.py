"""The teacher of a distilled run: found, checked against the student, asked once for its outputs.

`--teacher` names a FINISHED gated-bert run (its logged model is downloaded)
or a saved model folder (`model.keras`, `tokenizer.json`, `config.json`, as
every run writes under `results_*/model_*`). The teacher must have been
trained on the same task with the same tokenizer: its outputs are computed on
the student's encoded training examples. It runs without dropout, so its
outputs are computed once, before the first epoch, and kept beside the run's
checkpoints (a resumed run reads them back); the loss is in
`training/distillation.py`.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError, DataError

log = logging.getLogger("gated_bert")
RUN_ID = re.compile(r"[0-9a-f]{32}")
MODEL_FILES = ("model.keras", "tokenizer.json", "config.json")
OUTPUTS_FILE = "teacher_outputs.npy"


@dataclass
class Teacher:
    predictor: object  # gated_bert.inference.TextPredictor: classifier, tokenizer, config
    source: str  # the run id, or the folder's absolute path
    run_id: str | None

    @property
    def config(self) -> GatedBertConfig:
        return self.predictor.config


def load_teacher(spec: str) -> Teacher:
    """The teacher `spec` names (a model folder, else a run id); one-line errors otherwise."""
    from gated_bert.inference import TextPredictor

    folder = Path(spec).expanduser()
    if folder.is_dir():
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise DataError(
                f"teacher folder {str(folder)!r} lacks {', '.join(missing)}; pass a run's saved model "
                "folder (results_*/model_*) or the run's id"
            )
        return Teacher(
            TextPredictor.from_files(*(folder / n for n in MODEL_FILES)), str(folder.resolve()), None
        )
    if not RUN_ID.fullmatch(spec):
        raise DataError(
            f"teacher {spec!r} is neither a model folder nor an MLflow run id; pass a FINISHED run's id "
            "or its saved model folder (results_*/model_*)"
        )
    from gated_bert import tracking

    tracking.run_info(spec)  # an unknown run is a one-line error
    with tempfile.TemporaryDirectory() as tmp:
        predictor = TextPredictor.from_files(*tracking.model_files(spec, Path(tmp)))
    return Teacher(predictor, spec, spec)


def _tokenizer_of(config: GatedBertConfig) -> str:
    if config.init_from:
        return f"checkpoint {config.init_from}'s"
    if config.tokenizer:
        return f"{config.tokenizer}"
    return "a WordPiece vocabulary trained on the task's text"


def check_student(teacher: Teacher, config: GatedBertConfig, prepared) -> None:
    """Refuse a teacher of another task, another tokenizer or shorter inputs (ConfigError)."""
    other = teacher.config
    if other.task != config.task:
        raise ConfigError(
            f"teacher {teacher.source} was trained on {other.task} and this run is {config.task}; "
            "distil from a teacher of the same task"
        )
    if teacher.predictor.tokenizer.get_vocab() != prepared.tokenizer.get_vocab():
        raise ConfigError(
            f"teacher {teacher.source} uses another tokenizer ({_tokenizer_of(other)}, "
            f"{teacher.predictor.tokenizer.get_vocab_size()} tokens) than this run ({_tokenizer_of(config)}, "
            f"{prepared.tokenizer.get_vocab_size()} tokens); start from the teacher's checkpoint "
            "(--init-from) or give its tokenizer (--tokenizer)"
        )
    if other.max_len < config.max_len:
        raise ConfigError(
            f"teacher {teacher.source} reads at most {other.max_len} tokens and this run {config.max_len}; "
            f"pass --max-len {other.max_len} or less"
        )


def outputs_for(teacher: Teacher, split) -> np.ndarray:
    """The teacher's outputs for every example of an encoded split (rows in the split's order)."""
    from gated_bert.data.batching import sorted_eval
    from gated_bert.training.distillation import teacher_outputs
    from gated_bert.training.fit import EVAL_BATCH_SIZE

    dataset, order = sorted_eval(split, EVAL_BATCH_SIZE)
    return teacher_outputs(teacher.predictor.classifier, dataset, order, len(split))


def with_teacher_outputs(teacher: Teacher | None, prepared, folder: Path):
    """`prepared` with the teacher's outputs for its training split, computed once per run (kept in
    `folder`, the run's checkpoints folder); `prepared` itself without a teacher."""
    if teacher is None:
        return prepared
    path = Path(folder) / OUTPUTS_FILE
    if path.is_file():
        outputs = np.load(path)
        if outputs.shape[0] == len(prepared.train):
            return replace(prepared, teacher_outputs=outputs)
    log.info("teacher %s: outputs for %d training examples", teacher.source, len(prepared.train))
    outputs = outputs_for(teacher, prepared.train)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, outputs)
    return replace(prepared, teacher_outputs=outputs)


def dev_metrics(teacher: Teacher, prepared) -> dict[str, float]:
    """The teacher's metrics on the run's eval splits (`teacher_eval_<metric>[_split]`)."""
    from gated_bert.metric_names import eval_metric
    from gated_bert.metrics import compute_metrics

    values = {}
    for index, (name, split) in enumerate(prepared.evals.items()):
        suffix = "" if index == 0 else f"_{name}"
        outputs = outputs_for(teacher, split)
        for metric, value in compute_metrics(prepared.task, outputs, split.labels).items():
            values[f"teacher_{eval_metric(metric, suffix)}"] = value
    return values
