"""Run several pruning methods side by side (sequentially or in parallel)."""
