"""Training: the train step with pruning hooks, callbacks and the fit loop."""
