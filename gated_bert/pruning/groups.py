"""Structured granularity: whole attention heads and FFN neurons as the units of pruning.

A group is the set of weights that only work together:
- head h of a block: columns h*dh:(h+1)*dh of `query`, `key` and `value` and
  rows h*dh:(h+1)*dh of `attention_output` (dh = d_model / num_heads);
- neuron j of a block: column j of `ffn_in` and row j of `ffn_out`.

`pruning_granularity`: `weight` (single weights, the default), `neuron` (FFN
neurons only; attention stays dense), `head` (heads only; the FFN stays
dense) or `structured` (both, each kind reaching the target on its own).
A group's importance is its weights' importances reduced (L2 norm for
magnitude, sum for the others: `PruningMethod.group_reduce`); a group whose
weights are all pruned stays pruned. Sparsity is then exact in groups:
round(target * groups) of them are removed, per block or across blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gated_bert.config import GRANULARITIES  # noqa: F401  (defined once, with the config)
from gated_bert.pruning.masks import mask_for, split_like

PRUNED = -1.0  # the importance of a pruned weight (see methods.base)


@dataclass(frozen=True)
class GroupKind:
    """One kind of group: its name and, per kernel role, the axis whose slices form the groups."""

    name: str
    axes: dict  # role -> "columns" (groups along the last axis) or "rows" (the first axis)
    per_head: bool  # a group spans dh slices (heads) instead of one (neurons)


HEADS = GroupKind(
    "head", {"query": "columns", "key": "columns", "value": "columns", "attention_output": "rows"}, True
)
NEURONS = GroupKind("neuron", {"ffn_in": "columns", "ffn_out": "rows"}, False)
KINDS = {"weight": (), "neuron": (NEURONS,), "head": (HEADS,), "structured": (HEADS, NEURONS)}


def kinds_of(granularity: str) -> tuple[GroupKind, ...]:
    return KINDS[granularity]


def group_view(array: np.ndarray, axis: str, width: int) -> np.ndarray:
    """`array` as (groups, weights per group): slices of `width` columns or rows per group."""
    array = np.asarray(array)
    if axis == "columns":
        rows, columns = array.shape
        return array.reshape(rows, columns // width, width).transpose(1, 0, 2).reshape(columns // width, -1)
    return array.reshape(array.shape[0] // width, -1)


def expand(group_mask: np.ndarray, axis: str, width: int, shape: tuple[int, int]) -> np.ndarray:
    """A per-group 0/1 vector as a weight mask of `shape` (the inverse of `group_view`)."""
    line = np.repeat(np.asarray(group_mask, dtype=np.float32), width)
    return np.broadcast_to(line[None, :] if axis == "columns" else line[:, None], shape).copy()


def reduce_groups(rows: np.ndarray, how: str) -> np.ndarray:
    """One importance per group (row): L2 norm or sum of the active weights; PRUNED if none is."""
    pruned = np.all(rows == PRUNED, axis=1)
    active = np.where(rows == PRUNED, 0.0, rows.astype(np.float64))
    value = np.sqrt((active**2).sum(axis=1)) if how == "l2" else active.sum(axis=1)
    return np.where(pruned, PRUNED, value)


def _width(kind: GroupKind, num_heads: int, kernel) -> int:
    return kernel.layer.mask.shape[-1] // num_heads if kind.per_head else 1


def group_importances(
    kernels, importances, kind: GroupKind, num_heads: int, how: str
) -> dict[int, np.ndarray]:
    """Block index -> one importance per group of `kind` in that block."""
    rows: dict[int, list[np.ndarray]] = {}
    for kernel, importance in zip(kernels, importances):
        if kernel.role in kind.axes:
            view = group_view(importance, kind.axes[kernel.role], _width(kind, num_heads, kernel))
            rows.setdefault(kernel.layer_index, []).append(view)
    return {block: reduce_groups(np.concatenate(parts, axis=1), how) for block, parts in rows.items()}


def structured_masks(
    kernels, importances, sparsity: float, granularity: str, scope: str, num_heads: int, how: str
) -> list[np.ndarray]:
    """Weight masks that remove round(sparsity * groups) whole groups of each kind
    (per block, or across blocks with the global scope); kernels of no kind stay dense."""
    masks = [np.ones(np.shape(importance), dtype=np.float32) for importance in importances]
    for kind in kinds_of(granularity):
        scores = group_importances(kernels, importances, kind, num_heads, how)
        blocks = sorted(scores)
        if scope == "global":
            kept = dict(
                zip(
                    blocks,
                    split_like(
                        mask_for(np.concatenate([scores[b] for b in blocks]), sparsity),
                        [scores[b] for b in blocks],
                    ),
                )
            )
        else:
            kept = {block: mask_for(scores[block], sparsity) for block in blocks}
        for i, kernel in enumerate(kernels):
            if kernel.role in kind.axes:
                width = _width(kind, num_heads, kernel)
                masks[i] = expand(kept[kernel.layer_index], kind.axes[kernel.role], width, masks[i].shape)
    return masks


def group_sparsity(kernels, granularity: str, num_heads: int) -> dict[str, float]:
    """Fraction of the groups of each kind whose weights are all masked, e.g. {"head": 0.5}."""
    out = {}
    for kind in kinds_of(granularity):
        masks = [kernel.layer.mask.numpy() for kernel in kernels]
        scores = group_importances(
            kernels, [np.where(m > 0, 1.0, PRUNED) for m in masks], kind, num_heads, "sum"
        )
        flat = np.concatenate(list(scores.values()))
        out[kind.name] = float(np.mean(flat == PRUNED))
    return out
