"""`python plot_comparison.py`: compare every results_{method}_{task} folder here.

Writes pruning_methods_comparison_dual_axis.png (and a CSV table); arguments
are those of `gated-bert compare` (e.g. --task sst2, --parent-run-id ID).
"""

import sys

from gated_bert.cli import main

if __name__ == "__main__":
    main(["compare", *sys.argv[1:]])
