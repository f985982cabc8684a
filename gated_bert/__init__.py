"""gated-bert: BERT-style encoders with gated weights, pruned while they train."""

__version__ = "0.1.0"
