"""What an `experiments` invocation will run: methods x end sparsities x seeds, one shared config.

Without `--seeds` / `--end-sparsities` there is one job per method (the config's
seed and end_sparsity). With them, every pruning method runs at every end
sparsity with every seed; the baseline, which prunes nothing, runs once per seed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from gated_bert.config import BASELINE_LABEL, GatedBertConfig
from gated_bert.errors import ConfigError
from gated_bert.pretrained.resolve import with_checkpoint
from gated_bert.pruning.names import from_label, labels

DEFAULT_METHODS = (
    "random",
    "magnitude",
    "movement",
    "spt",
    "baseline",
)  # the original four and the random control
OUTPUT_MODES = ("bars", "logs", "both")
AUTO_TEACHER = "auto"  # --teacher auto: the plan's dense model of each seed, trained first


@dataclass(frozen=True)
class ExperimentPlan:
    methods: tuple[str, ...]  # method labels: baseline, magnitude, ...
    configs: tuple[GatedBertConfig, ...]  # one per job
    parallel: bool
    max_parallel_jobs: int
    output_mode: str | None  # None: ask on a terminal, bars otherwise
    labels: tuple[str, ...] = ()  # one per job: the method, or method_sparsity_seedN in a grid
    seeds: tuple[int, ...] = ()  # the grid's seeds (empty: the config's seed)
    end_sparsities: tuple[float, ...] = ()  # the grid's end sparsities (empty: the config's)
    teacher: str | None = None  # pruned jobs distil from it; "auto": from the dense job of their seed
    distil: tuple[bool, ...] = ()  # one per job: False for the undistilled rows (and dense jobs)
    undistilled_sparsities: tuple[float, ...] = ()  # pruning methods also run here without a teacher

    @property
    def teacher_auto(self) -> bool:
        return self.teacher == AUTO_TEACHER

    @property
    def is_grid(self) -> bool:
        return len(self.seeds) > 1 or len(self.end_sparsities) > 1

    @property
    def base(self) -> GatedBertConfig:
        return self.configs[0]


def parse_methods(text: str) -> tuple[str, ...]:
    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    valid = ", ".join(labels())
    if not methods:
        raise ConfigError(f"-p/--pruning-methods needs at least one of: {valid}")
    for method in methods:
        if method not in labels():
            raise ConfigError(
                f"unknown pruning method {method!r} in -p/--pruning-methods; choose from "
                f"{valid} (comma-separated)"
            )
    if len(set(methods)) != len(methods):
        raise ConfigError(f"-p/--pruning-methods lists a method twice: {text!r}")
    return methods


def parse_list(text: str | None, kind: type, flag: str) -> tuple:
    """'1,2,3' -> (1, 2, 3); None or '' -> ()."""
    if not text:
        return ()
    try:
        values = tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(
            f"{flag} must be a comma-separated list of {kind.__name__}s, got {text!r}"
        ) from None
    if len(set(values)) != len(values):
        raise ConfigError(f"{flag} lists a value twice: {text!r}")
    return values


def make_plan(
    values: dict,
    methods_text: str,
    parallel: bool,
    max_parallel_jobs: int | None,
    output_mode: str | None,
    seeds: tuple[int, ...] = (),
    end_sparsities: tuple[float, ...] = (),
    teacher: str | None = None,
    undistilled_sparsities: tuple[float, ...] = (),
    teacher_train_samples: int | None = None,
) -> ExperimentPlan:
    """Build one validated config per job from shared values (config field names).

    With `teacher`, every pruning job distils from it; with "auto", the dense baseline (added to
    the methods if missing) is trained first and each pruning job distils from its seed's one.
    `undistilled_sparsities`: every pruning method also runs at these end sparsities without a
    teacher (what distillation buys). `teacher_train_samples`: with "auto", the dense teachers
    train on this many examples instead of `max_train_samples` (a teacher may see more data
    than its students).
    """
    methods = parse_methods(methods_text)
    if teacher == AUTO_TEACHER and BASELINE_LABEL not in methods:
        methods = (BASELINE_LABEL, *methods)
    _check_options(max_parallel_jobs, output_mode, teacher, undistilled_sparsities, teacher_train_samples)
    grid = len(seeds) > 1 or len(end_sparsities) > 1 or bool(undistilled_sparsities)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jobs = [
            job
            for method in methods
            for job in _method_jobs(
                values,
                method,
                grid,
                seeds,
                end_sparsities,
                teacher,
                undistilled_sparsities,
                teacher_train_samples,
            )
        ]
    labels, configs, distil = zip(*jobs)
    for message in sorted({str(w.message) for w in caught}):
        warnings.warn(message, stacklevel=2)  # once, not once per job
    return ExperimentPlan(
        methods=methods,
        configs=configs,
        parallel=parallel,
        max_parallel_jobs=max_parallel_jobs or len(methods),
        output_mode=output_mode,
        labels=labels,
        seeds=seeds,
        end_sparsities=end_sparsities,
        teacher=teacher or None,
        distil=distil,
        undistilled_sparsities=undistilled_sparsities,
    )


def _method_jobs(
    values: dict,
    method: str,
    grid: bool,
    seeds: tuple[int, ...],
    end_sparsities: tuple[float, ...],
    teacher: str | None,
    undistilled_sparsities: tuple[float, ...],
    teacher_train_samples: int | None,
) -> list[tuple[str, GatedBertConfig, bool]]:
    """(label, config, distils) of each job of one method."""
    baseline = from_label(method) == from_label("baseline")
    rows = [(s, True) for s in ((None,) if baseline or not end_sparsities else end_sparsities)]
    rows += [] if baseline else [(s, False) for s in undistilled_sparsities]
    jobs = []
    for sparsity, distilled in rows:
        for seed in seeds or (None,):
            changes = {"pruning_method": from_label(method)}
            if teacher and teacher != AUTO_TEACHER and not baseline and distilled:
                changes["teacher"] = teacher
            if baseline and teacher == AUTO_TEACHER and teacher_train_samples:
                changes["max_train_samples"] = teacher_train_samples
            changes.update({} if seed is None else {"seed": seed})
            changes.update({} if sparsity is None else {"end_sparsity": sparsity})
            label = _label(method, sparsity, seed) if grid else method
            jobs.append(
                (
                    label if distilled or baseline else f"{label}_undistilled",
                    GatedBertConfig(**{**values, **changes}),
                    bool(teacher) and distilled and not baseline,
                )
            )
    return jobs


def _check_options(
    max_parallel_jobs: int | None,
    output_mode: str | None,
    teacher: str | None,
    undistilled_sparsities: tuple[float, ...],
    teacher_train_samples: int | None,
) -> None:
    if max_parallel_jobs is not None and max_parallel_jobs < 1:
        raise ConfigError(f"-max-parallel-jobs must be a positive integer, got {max_parallel_jobs}")
    if output_mode is not None and output_mode not in OUTPUT_MODES:
        raise ConfigError(f"unknown --output-mode {output_mode!r}; choose one of: {', '.join(OUTPUT_MODES)}")
    if undistilled_sparsities and not teacher:
        raise ConfigError(
            "--undistilled-sparsities adds runs without a teacher to a distilled grid; "
            "give --teacher (RUN_ID, FOLDER or auto) too, or leave it out"
        )
    if teacher_train_samples is not None and teacher != AUTO_TEACHER:
        raise ConfigError(
            f"--teacher-train-samples {teacher_train_samples} sizes the teachers that --teacher auto "
            f"trains; add --teacher auto, or leave it out"
        )
    if teacher_train_samples is not None and teacher_train_samples < 1:
        raise ConfigError(f"--teacher-train-samples must be a positive integer, got {teacher_train_samples}")


def _label(method: str, sparsity: float | None, seed: int | None) -> str:
    parts = (
        [method] + ([] if sparsity is None else [f"{sparsity:g}"]) + ([] if seed is None else [f"seed{seed}"])
    )
    return "_".join(parts)


def describe(plan: ExperimentPlan) -> list[str]:
    """The resolved configuration, shown before anything runs."""
    base = next((c for c in plan.configs if c.enable_pruning), plan.base)
    base = with_checkpoint(base.with_training_defaults())  # the shape and recipe that will train
    arch = base.architecture()
    steps = " ".join(f"{v:g}" for v in base.effective_sparsity_steps) if base.sparsity_steps else "auto"
    mode = "parallel" if plan.parallel else "sequential"
    return [
        "Experiment configuration:",
        f"  methods            {','.join(plan.methods)}  ({len(plan.configs)} jobs, {mode}"
        + (f", at most {plan.max_parallel_jobs} at once)" if plan.parallel else ")"),
        f"  grid               end sparsities {','.join(f'{v:g}' for v in plan.end_sparsities) or 'config'}, "
        f"seeds {','.join(map(str, plan.seeds)) or 'config'}",
        f"  task               {base.task}  (data: {base.data_dir or 'HuggingFace hub'})",
        f"  model              {base.model_label}: {arch.num_layers} layers x {arch.d_model} hidden x "
        f"{arch.num_heads} heads x {arch.dff} FFN, max_len {arch.max_len}",
        f"  training           {base.epochs} epochs, batch {base.batch_size}, lr {base.learning_rate:g} "
        f"{base.lr_schedule} (warm-up {base.warmup_ratio:g}), dropout {base.dropout_rate:g}, "
        f"weight decay {base.weight_decay:g}"
        + (f", {base.max_train_samples} training examples" if base.max_train_samples else ""),
        f"  sparsity           {base.start_sparsity:g} -> {base.end_sparsity:g} over epochs "
        f"{base.pruning_start_epoch}..{base.pruning_end_epoch}, masks updated by {base.pruning_updates}; "
        f"schedule {base.sparsity_schedule}, scope {base.pruning_scope}, steps {steps}",
        f"  spt                explore per layer {str(base.spt_explore_per_layer).lower()}, "
        f"epsilon {base.effective_spt_epsilon:g}, alpha {base.spt_reward_alpha:g}, credit {base.spt_credit}",
        f"  output root        {base.output_root}",
    ] + (
        [
            f"  teacher            {plan.teacher} (distil_alpha {base.distill_alpha:g}, T {base.distill_temperature:g})"
            + (
                f"; also without a teacher at {','.join(f'{v:g}' for v in plan.undistilled_sparsities)}"
                if plan.undistilled_sparsities
                else ""
            )
        ]
        if plan.teacher
        else []
    )
