"""Pretrained BERT checkpoints (HuggingFace layout) as the starting point of a run.

`checkpoint.py` finds and reads a checkpoint folder (config, files, digest), `weights.py`
reads its tensors under canonical names, `load.py` writes them into a gated model.
"""
