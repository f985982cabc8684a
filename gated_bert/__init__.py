"""gated-bert: BERT-style encoders with gated weights, pruned while they train."""

import contextlib

__version__ = "0.1.0"

# PostgreSQL over TLS (sslmode=require): the psycopg wheel bundles its own OpenSSL, which must
# load before TensorFlow's libraries; loaded after them, the first TLS connection aborts the
# process ("free(): invalid pointer"). Every gated-bert module imports this package first.
with contextlib.suppress(ImportError):
    import psycopg  # noqa: F401
