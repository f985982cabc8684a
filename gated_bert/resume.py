"""Continue an interrupted run: `gated-bert train --resume RUN_ID`.

Everything comes from the run itself: the config it started with (artifact
`run_config.json`), where it wrote (tag `gated_bert.paths`), the tokenizer it
encoded with (`tokenizer.json` beside its checkpoints) and its newest complete
epoch checkpoint. Options given beside `--resume` must agree with
the run's config. The run continues in the same MLflow run from its last
completed epoch (tag `resumed_from_epoch`).
"""

from __future__ import annotations

from typing import Any

from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError, DataError


def resumption_config(run_id: str, given: dict[str, Any]):
    """The run's config and its Resumption; `given` options that disagree raise ConfigError."""
    from gated_bert import tracking
    from gated_bert.reporting import RunPaths
    from gated_bert.run import PATHS_TAG, RUN_CONFIG, RUN_TOKENIZER, Resumption
    from gated_bert.training import checkpoint

    info = tracking.run_info(run_id)
    if info.status == "FINISHED":
        raise ConfigError(f"run {run_id} has already FINISHED; there is nothing to resume")
    config = GatedBertConfig.from_json(tracking.load_text(run_id, RUN_CONFIG))
    wrong = {k: v for k, v in given.items() if getattr(config, k) != v}
    if wrong:
        name, value = next(iter(wrong.items()))
        raise ConfigError(
            f"--resume {run_id}: --{name.replace('_', '-')} {value!r} differs from the run's "
            f"{getattr(config, name)!r}; give --resume alone"
        )
    if PATHS_TAG not in info.tags:
        raise DataError(
            f"run {run_id} has no {PATHS_TAG} tag: it was not started by this version of gated-bert"
        )
    paths = RunPaths.from_json(info.tags[PATHS_TAG])
    kept = paths.checkpoints_dir / RUN_TOKENIZER
    if kept.is_file():  # the very tokenizer the run encoded with (training one is not deterministic)
        config = config.replace(tokenizer=str(kept))
    return config, Resumption(run_id, paths, checkpoint.latest(paths.checkpoints_dir))


def resume(run_id: str, given: dict[str, Any] | None = None):
    """Continue run `run_id` from its newest checkpoint; returns the run's RunResult."""
    from gated_bert.run import train

    config, resumption = resumption_config(run_id, given or {})
    return train(config, resume=resumption)
