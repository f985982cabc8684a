"""Per-epoch checkpoints that a run can resume from, written atomically.

Epoch N's checkpoint is the folder `epoch_NNN/` under the run's checkpoint
directory, holding:
- `model.weights.h5`: the classifier's weights (masks and movement scores included);
- `training_state.npz`: every other variable a resumed run needs, in a fixed
  order: the main optimizer's (step count, moments), the method's extra
  optimizer's, the lazy embedding moments, the dropout layers' random states,
  the pruning method's state (SPT's reward EMA, visits, probe count and random
  generator);
- `state.json`: the epoch, the history rows so far, the pruning callback's
  position and the method's non-variable state (the random control's generator).

The folder is written under a temporary name and renamed, so a kill during a
write never leaves a half-written `epoch_NNN/`; the newest `keep` are kept. When the run
finishes, `drop_training_state` removes their `training_state.npz` (nothing left to resume).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from gated_bert.errors import DataError
from gated_bert.training.dropout_replay import dropout_states

WEIGHTS = "model.weights.h5"
VARIABLES = "training_state.npz"
STATE = "state.json"


@dataclass
class TrainingState:
    """The plain-data part of a checkpoint."""

    epoch: int  # epochs completed (1-based number of the checkpoint's epoch)
    rows: list[dict[str, float]]
    pruning_step: int = 0
    current_target: float = 0.0
    method_state: dict = field(default_factory=dict)


def _is_variable(value) -> bool:
    return hasattr(value, "assign") and hasattr(value, "numpy")


def _flatten(value) -> list:
    if isinstance(value, list | tuple):
        return [v for item in value for v in _flatten(item)]
    return [value] if _is_variable(value) else []


def resumable_variables(trainer) -> dict[str, object]:
    """Every variable besides the classifier's weights that a resumed run needs, by a stable name.

    optimizer/NNNN (the main optimizer), lazy/NNNN (lazy embedding moments), dropout/NNNN (the
    dropout layers' random states), method/<state name>/NNNN (the pruning method's state, the
    optimizer of its scores included).
    """
    out = {f"optimizer/{i:04d}": v for i, v in enumerate(trainer.optimizer.variables)}
    lazy = [v for update in trainer.lazy_updates for v in update.variables]
    out.update({f"lazy/{i:04d}": v for i, v in enumerate(lazy)})
    # the dropout layers' random states are not model weights: without them a resumed run with
    # dropout would draw other masks than the uninterrupted one
    out.update({f"dropout/{i:04d}": v for i, v in enumerate(dropout_states(trainer.classifier))})
    if trainer.method is not None:
        state = trainer.method.state()
        for name in sorted(state):
            out.update({f"method/{name}/{i:04d}": v for i, v in enumerate(_flatten(state[name]))})
    return out


def method_plain_state(trainer) -> dict:
    """The method's state that is not a variable (JSON-able), e.g. a numpy generator's state."""
    if trainer.method is None:
        return {}
    return {k: v for k, v in trainer.method.state().items() if not _flatten(v) and not _is_variable(v)}


def epoch_folder(directory: Path, epoch: int) -> Path:
    return Path(directory) / f"epoch_{epoch:03d}"


def save(directory: Path, classifier: keras.Model, trainer, state: TrainingState, keep: int = 2) -> Path:
    """Write epoch `state.epoch`'s checkpoint atomically; keep the newest `keep`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = epoch_folder(directory, state.epoch)
    tmp = directory / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        classifier.save_weights(tmp / WEIGHTS)
        arrays = {name: np.asarray(v.numpy()) for name, v in resumable_variables(trainer).items()}
        np.savez(tmp / VARIABLES, **arrays)
        (tmp / STATE).write_text(json.dumps(state.__dict__, default=_plain))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError as err:  # a full disk, a folder that went away: the previous checkpoint stays intact
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(
            f"cannot write checkpoint {str(final)!r} ({err.strerror or err}); free space, then continue "
            "with gated-bert train --resume RUN_ID"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in sorted(directory.glob("epoch_[0-9][0-9][0-9]"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def drop_training_state(directory: Path) -> None:
    """A finished run cannot be resumed: delete its checkpoints' resumable state, keep their weights.

    The optimizers' moments and the method's state are about two thirds of a
    checkpoint (a tiny run's two kept epochs: 154 MB, then 59 MB).
    """
    for path in Path(directory).glob(f"epoch_[0-9][0-9][0-9]/{VARIABLES}"):
        path.unlink()


def delete(directory: Path) -> None:
    """Delete a run's checkpoints folder (every epoch, its tokenizer)."""
    shutil.rmtree(directory, ignore_errors=True)


def _plain(value):
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint's state.json")


def latest(directory: Path) -> Path | None:
    """The newest complete epoch folder, or None."""
    folders = sorted(Path(directory).glob("epoch_[0-9][0-9][0-9]")) if Path(directory).is_dir() else []
    return folders[-1] if folders else None


def read_state(folder: Path) -> TrainingState:
    return TrainingState(**json.loads((Path(folder) / STATE).read_text()))


def restore(folder: Path, classifier: keras.Model, trainer) -> TrainingState:
    """Load a checkpoint into a freshly built classifier and compiled trainer."""
    folder = Path(folder)
    classifier.load_weights(folder / WEIGHTS)
    trainer.optimizer.build(trainer.weight_variables)
    variables = resumable_variables(trainer)
    with np.load(folder / VARIABLES) as arrays:
        stored = {name: arrays[name] for name in arrays.files}
    if set(stored) != set(variables) or any(stored[k].shape != tuple(v.shape) for k, v in variables.items()):
        raise DataError(
            f"checkpoint {str(folder)!r} does not match this run's training state (another "
            "configuration or version wrote it); start a new run"
        )
    for name, variable in variables.items():
        variable.assign(stored[name])
    return read_state(folder)
