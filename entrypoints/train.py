"""MLproject `train` entry point: the `gated-bert train` command.

`mlflow run` spells out every parameter, defaults included; `--defaults-spelled-out`
tells the command so: with `-P resume=RUN_ID`, only parameters that differ from
their defaults count as given (and must match the resumed run's).
"""

import sys
from pathlib import Path

# Importable from the project folder even where the package is not installed (mlflow run).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gated_bert.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["train", "--defaults-spelled-out", *sys.argv[1:]])
