"""Start TensorFlow without its start-up log on the terminal.

TensorFlow's C++ libraries write a few lines to stderr when they load (oneDNN, "Could
not find cuda drivers", absl's "All log messages before absl::InitializeLog()"), and
TF_CPP_MIN_LOG_LEVEL does not reach all of them. Commands that train call
`import_tensorflow_quietly` at their start: the lines go to a temporary file, shown only if
the import fails. So a bad option or data folder prints its one-line error alone.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 sent to a temporary file (once per process)."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
