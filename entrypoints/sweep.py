"""MLproject `sweep` entry point: the `gated-bert sweep` command, nothing more."""

import sys

from gated_bert.cli import main

if __name__ == "__main__":
    main(["sweep", *sys.argv[1:]])
