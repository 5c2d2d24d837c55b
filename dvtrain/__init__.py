"""dvtrain: train custom DeepVariant-style callers for very-low-coverage short reads.

The core library has no Prefect imports: every stage is a plain function over files,
configured by a pydantic model from :mod:`dvtrain.config`.
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter is noise for a CLI user. oneDNN's CPU kernels are off
# by default: their float results depend on the CPU's instruction set (and they announce
# themselves on stderr, unsuppressibly); set TF_ENABLE_ONEDNN_OPTS=1 for ~15% faster
# CPU training (measured: 12.6 s vs 14.7 s for 3 demo epochs).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
