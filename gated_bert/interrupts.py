"""One interrupt per process: the first SIGINT/SIGTERM stops the work, later ones wait for cleanup.

A terminal's Ctrl-C reaches every process of its group at once (the command,
its sweep workers), the command then interrupts its workers itself, and
`mlflow run` sends SIGTERM to its child after the SIGINT. A second
KeyboardInterrupt in the middle of cleanup would leave runs RUNNING and
half-written checkpoints behind, so the first signal raises KeyboardInterrupt
and disarms both; the process then ends its runs and exits.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received = threading.Event()


def received() -> bool:
    """Whether `interrupt_once` has fired in this process (a library may have turned the
    KeyboardInterrupt into an error of its own, e.g. TensorFlow while it traces a function)."""
    return _received.is_set()


def interrupt_once(signum, frame):
    _received.set()
    for each in SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise KeyboardInterrupt


interrupt_once.interrupts = True  # the run-status watch of `tracking` wraps it like Python's own handler


def stop_on_first_interrupt() -> None:
    """Install `interrupt_once` for SIGINT and SIGTERM (main thread of a command-line process only)."""
    if threading.current_thread() is threading.main_thread():
        for each in SIGNALS:
            signal.signal(each, interrupt_once)


def raises_interrupt(handler) -> bool:
    """Whether `handler` turns a signal into KeyboardInterrupt."""
    return handler is signal.default_int_handler or getattr(handler, "interrupts", False)
