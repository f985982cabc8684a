"""Export a run's model for inference: `compact.py` (the format), `exporter.py` (the command's work)."""

FORMATS = ("keras", "compact")
