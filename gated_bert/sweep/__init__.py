"""Optuna sweeps over SPT and schedule settings, tracked as nested MLflow runs."""
