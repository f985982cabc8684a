"""Pruning while training: schedules, scoring rules, masks, the schedule's cursor and the callback.

`pruning.resolve.resolve(config)` makes the method-dependent defaults of a config concrete.
"""
