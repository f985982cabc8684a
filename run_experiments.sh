#!/usr/bin/env bash
# Run several pruning methods side by side; every flag is `gated-bert experiments`'s.
#   ./run_experiments.sh -h
#   ./run_experiments.sh -parallel -e 3 -b 32 -m tiny -p baseline,spt --data-dir ../shared/glue
set -euo pipefail
exec python -m gated_bert.cli experiments "$@"
