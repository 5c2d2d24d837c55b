"""dvtrain: train custom DeepVariant-style callers for very-low-coverage short reads.

The core library has no Prefect imports: every stage is a plain function over files,
configured by a pydantic model from :mod:`dvtrain.config`.
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise for a CLI user.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
