"""How much memory one training process needs, and how many fit on this machine.

The estimate is linear in what grows: a fixed cost (Python, TensorFlow, MLflow,
the encoded data, and what TensorFlow's allocator keeps over a whole run),
bytes per parameter (the weights, their masks and gradients, Adam's two
moments, a method's scores, the checkpoint being written) and bytes per
activation unit (batch x layers x hidden size x sequence length, kept for the
backward pass). The per-parameter and per-activation constants are fitted to
peak resident memory of short SST-2 runs (tiny, small and base, batch 32 and
96, SPT; `benchmarks/worker_memory.py` prints them beside the estimate); the
fixed cost to a sweep worker that ran five 7-epoch trials of tiny one after
the other (2.6 GB, about 1.2 GB more than its first batches), so that short
runs are over-estimated rather than long ones under-estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

from gated_bert.architecture import parameter_count
from gated_bert.config import GatedBertConfig

START_UP_BYTES = 1900 * 2**20
BYTES_PER_PARAMETER = 65
BYTES_PER_ACTIVATION = 26
HEADROOM = 0.9  # of the available memory: the parent, the page cache and the estimate's error


@dataclass(frozen=True)
class WorkerFit:
    """How many of `wanted` workers fit: `workers` (0: not even one)."""

    wanted: int
    workers: int
    peak_bytes: int
    available_bytes: int


def peak_bytes(config: GatedBertConfig) -> int:
    """Expected peak resident memory of one process training `config` (batch size resolved)."""
    arch = config.architecture()
    activations = config.batch_size * arch.num_layers * arch.d_model * arch.max_len
    return START_UP_BYTES + BYTES_PER_PARAMETER * parameter_count(arch) + BYTES_PER_ACTIVATION * activations


def available_bytes() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def fitting_workers(config: GatedBertConfig, wanted: int, available: int | None = None) -> WorkerFit:
    """How many of `wanted` processes training `config` fit in the available memory."""
    available = available_bytes() if available is None else available
    peak = peak_bytes(config)
    return WorkerFit(wanted, min(wanted, int(available * HEADROOM // peak)), peak, available)


def gigabytes(n: int) -> str:
    return f"{n / 2**30:.1f} GB"
