"""MLproject `train` entry point: the `gated-bert train` command, nothing more."""

import sys

from gated_bert.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
