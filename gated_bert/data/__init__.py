"""GLUE data: loading (local TSV or the HuggingFace hub), tokenization, batching."""
