"""longctx: long-context memory Transformers in JAX/Flax NNX, compiled once, tested against the papers."""

__version__ = "0.1.0"
