"""Pruning while training: schedules, scoring rules, masks and the callback."""
