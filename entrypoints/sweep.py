"""MLproject `sweep` entry point: the `gated-bert sweep` command, nothing more."""

import sys
from pathlib import Path

# Importable from the project folder even where the package is not installed (mlflow run).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gated_bert.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["sweep", *sys.argv[1:]])
