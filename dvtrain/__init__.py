"""dvtrain: train custom DeepVariant-style callers for very-low-coverage short reads.

The core library has no Prefect imports: every stage is a plain function over files,
configured by a pydantic model from :mod:`dvtrain.config`.
"""

__version__ = "0.1.0"
