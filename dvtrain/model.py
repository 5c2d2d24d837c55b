"""The genotype classifiers: uint8 pileup tensors H x W x C -> P(hom-ref, het, hom-alt).

Backend-portable (TensorFlow by default, JAX on the GPU machine): only ``keras.layers``,
``keras.ops`` and ``keras.applications`` are used. Four architectures
(``TrainConfig.architecture``), each scaling pixels to [-1, 1] as DeepVariant does
(the per-read features of read_sums / read_evidence: to [0, 1]) and ending in a 3-way softmax:

* ``small_cnn`` (model name ``dvtrain_cnn``): three stride-2 convolutions,
  average pooling over read rows (which are exchangeable) keeping column position, where
  the candidate sits, a dense layer, dropout, softmax. Small enough for a 2-core CPU.
* ``read_sums`` (the training default, model name ``dvtrain_read_sums``): per-read
  evidence at the candidate and nothing else. The read rows (below the 5 reference rows) of
  the 5 columns around the candidate go through two bias-free 1 x 5 / 1 x 1 ReLU
  convolutions, one read at a time, and are summed over reads. An empty row is all zeros
  and adds nothing, so the sum counts evidence the way a genotype likelihood does (each
  read contributes its own base, quality, strand and mapping quality), whatever the image
  height. A linear 1 x 5 convolution (16 features, no activation) is summed over reads
  beside them: ReLU units that die in training cannot take read counts with them. A dense
  layer, dropout and softmax follow. At 4x it is as accurate as ``read_evidence`` or more,
  about 5x faster to train and 2x faster to call (docs/accuracy.md, ninth session).
* ``read_evidence`` (model name ``dvtrain_read_evidence``): ``small_cnn``'s whole-image
  trunk plus ``read_sums``' features, joined before the dense layer. In trained models
  nearly all of the trunk's last-layer units were dead (docs/accuracy.md).
* ``inception_v3`` (model name ``dvtrain_inception_v3``): DeepVariant's backbone,
  ``keras.applications.InceptionV3(weights=None, include_top=False)`` on the example
  shape (any channel count; height and width at least 75), global average pooling,
  dropout, softmax. About 22 M weights.

``backbone_dropout_rate`` is the rate of the dropout before the softmax in all of them;
``weight_decay`` an L2 penalty on every convolution and dense kernel. With
``mixed_precision`` the layers compute in float16 (``mixed_float16``) and the softmax
layer stays float32.

:func:`warm_start` copies a checkpoint's weights into a freshly built model layer by
layer, also when the channel count differs (the first convolution's kernel keeps the
first min(C_old, C_new) input channels; new channels start at zero).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from typing import Iterator, Optional, Sequence

import numpy as np

import keras
from keras import layers

ARCHITECTURES = ("small_cnn", "inception_v3", "read_evidence", "read_sums")
MODEL_NAMES = {"small_cnn": "dvtrain_cnn", "inception_v3": "dvtrain_inception_v3",
               "read_evidence": "dvtrain_read_evidence", "read_sums": "dvtrain_read_sums"}
#: keras.applications.InceptionV3's smallest input
INCEPTION_MIN_SIZE = 75


@keras.saving.register_keras_serializable(package="dvtrain")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``learning_rate``, then staircase exponential decay (DeepVariant's
    schedule: rate 0.947 every 2 epochs)."""

    def __init__(self, learning_rate: float, decay_steps: int, decay_rate: float, warmup_steps: int = 0):
        self.learning_rate = float(learning_rate)
        self.decay_steps = max(1, int(decay_steps))
        self.decay_rate = float(decay_rate)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        decayed = self.learning_rate * ops.power(self.decay_rate, ops.floor(step / self.decay_steps))
        if self.warmup_steps <= 0:
            return decayed
        warm = self.learning_rate * (step + 1.0) / float(self.warmup_steps)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def value(self, step: int) -> float:
        """The rate at optimizer iteration ``step`` as a Python float (no backend tensors)."""
        decayed = self.learning_rate * self.decay_rate ** (step // self.decay_steps)
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1.0) / float(self.warmup_steps)
        return float(decayed)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "warmup_steps": self.warmup_steps}


_SEEDING = threading.Lock()


@contextlib.contextmanager
def _layer_seeds(seed: Optional[int]) -> Iterator[None]:
    """Layers and initializers built without an explicit seed (Dropout's SeedGenerator, the
    kernel initializers) take one from Python's *global* ``random`` when constructed. Any
    other thread of the process (Prefect's log and event workers, a concurrent task) that
    calls ``random`` in between shifts those seeds, so a model built inside a flow was
    not reproducible. With ``seed``, construction draws from a private generator instead."""
    if seed is None:
        yield
        return
    from keras.src.random import seed_generator

    with _SEEDING:
        shared = seed_generator.python_random
        seed_generator.python_random = random.Random(seed)
        try:
            yield
        finally:
            seed_generator.python_random = shared


def build_model(input_shape: Sequence[int], weight_decay: float = 4e-5, num_classes: int = 3,
                dropout_rate: float = 0.2, architecture: str = "small_cnn",
                mixed_precision: bool = False, seed: Optional[int] = None) -> keras.Model:
    """A fresh model of ``architecture`` for uint8 images of ``input_shape``.

    ``seed``: the initial weights and dropout masks follow from it alone (else from the
    caller's global seeding, which other threads can disturb). ``mixed_precision`` builds
    under Keras' ``mixed_float16`` policy (restored afterwards); the output layer computes
    in float32 either way.
    """
    with _layer_seeds(seed):
        return _build_model(input_shape, weight_decay, num_classes, dropout_rate, architecture, mixed_precision)


def _build_model(input_shape: Sequence[int], weight_decay: float, num_classes: int, dropout_rate: float,
                 architecture: str, mixed_precision: bool) -> keras.Model:
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r} (one of {', '.join(ARCHITECTURES)})")
    shape = tuple(int(x) for x in input_shape)
    previous = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        if architecture == "inception_v3":
            return _inception_v3(shape, weight_decay, num_classes, dropout_rate, mixed_precision)
        if architecture in ("read_evidence", "read_sums"):
            return _read_model(shape, weight_decay, num_classes, dropout_rate, mixed_precision, architecture)
        return _small_cnn(shape, weight_decay, num_classes, dropout_rate, mixed_precision)
    finally:
        keras.config.set_dtype_policy(previous)


def _small_cnn(shape, weight_decay, num_classes, dropout_rate, mixed_precision) -> keras.Model:
    reg = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    inputs = keras.Input(shape=tuple(shape), dtype="uint8", name="image")
    x = _context(inputs, reg)
    return keras.Model(inputs, _head(x, reg, num_classes, dropout_rate, mixed_precision), name=MODEL_NAMES["small_cnn"])


def _context(inputs, reg):
    """small_cnn's trunk: the whole image (reference context, neighbouring reads) -> a vector."""
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    # No batch normalisation: its running statistics, learnt at one coverage, mis-scale
    # images at another after a short warm-start (seen as all-hom-alt predictions).
    for filters in (24, 32, 48):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_regularizer=reg)(x)
    rows = x.shape[1]
    x = layers.AveragePooling2D(pool_size=(rows, 1))(x)  # pool over reads, keep columns
    return layers.Flatten()(x)


def _head(x, reg, num_classes, dropout_rate, mixed_precision):
    """Dense 64, dropout, softmax (float32 under mixed precision)."""
    x = layers.Dense(64, activation="relu", kernel_regularizer=reg)(x)
    x = layers.Dropout(dropout_rate)(x)
    head = {"dtype": "float32"} if mixed_precision else {}
    return layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="genotype", **head)(x)


def _read_model(shape, weight_decay, num_classes, dropout_rate, mixed_precision, architecture: str) -> keras.Model:
    """read_sums: the per-read sums and the head; read_evidence: small_cnn's trunk beside them."""
    reg = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    inputs = keras.Input(shape=tuple(shape), dtype="uint8", name="image")
    trunk = [_context(inputs, reg)] if architecture == "read_evidence" else []
    x = layers.Concatenate()([*trunk, *_read_features(inputs, reg, architecture)])
    return keras.Model(inputs, _head(x, reg, num_classes, dropout_rate, mixed_precision),
                       name=MODEL_NAMES[architecture])


def _read_features(inputs, reg, architecture: str, half: int = 2) -> list:
    """Per-read evidence at the candidate, summed over reads: [ReLU sums (32), linear sums (16)].

    The read rows (5..) of the 2*half+1 columns centred on the candidate, pixels scaled to
    [0, 1] so an empty row stays 0 through the bias-free layers, go through 1 x 5 and 1 x 1
    ReLU convolutions one read at a time. Beside them a linear 1 x 5 projection of each read
    is summed the same way: ReLU units die in training (measured: most of them, in every
    trained model); a linear sum cannot, so counts such as ref-supporting reads always reach
    the dense layer (docs/accuracy.md, eighth session).
    """
    h, w, _ = inputs.shape[1:]
    if h < 6 or w < 2 * half + 1:
        raise ValueError(f"{architecture} needs at least 6 rows and {2 * half + 1} columns (these are {h}x{w})")
    centre = w // 2
    r = layers.Cropping2D(((5, 0), (centre - half, w - centre - half - 1)))(inputs)
    reads = r = layers.Rescaling(1.0 / 255.0)(r)
    r = layers.Conv2D(32, (1, 2 * half + 1), use_bias=False, activation="relu", kernel_regularizer=reg)(r)
    r = layers.Conv2D(32, 1, use_bias=False, activation="relu", kernel_regularizer=reg)(r)
    counts = layers.Conv2D(16, (1, 2 * half + 1), use_bias=False, kernel_regularizer=reg)(reads)
    return [_sum_over_reads(r, h), _sum_over_reads(counts, h)]


def _sum_over_reads(r, h: int):
    """Per-read features summed over the h - 5 read rows, scaled by 1/10 (so 4x and 30x sums
    stay in range): an average times the row count, which keeps every weight independent
    of the image height."""
    r = layers.AveragePooling2D(pool_size=(h - 5, 1))(r)
    r = layers.Rescaling(float(h - 5) / 10.0)(r)
    return layers.Flatten()(r)


def _inception_v3(shape, weight_decay, num_classes, dropout_rate, mixed_precision) -> keras.Model:
    h, w, c = shape
    if min(h, w) < INCEPTION_MIN_SIZE:
        raise ValueError(f"inception_v3 needs images of at least {INCEPTION_MIN_SIZE}x{INCEPTION_MIN_SIZE} "
                         f"(these are {h}x{w})")
    inputs = keras.Input(shape=(h, w, c), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    # Built on our tensor, so its layers join this model's graph (one flat list of layers).
    backbone = keras.applications.InceptionV3(weights=None, include_top=False, input_tensor=x, pooling="avg")
    x = layers.Dropout(dropout_rate)(backbone.output)
    head = {"dtype": "float32"} if mixed_precision else {}
    reg = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="genotype", **head)(x)
    model = keras.Model(inputs, outputs, name=MODEL_NAMES["inception_v3"])
    if reg is not None:  # keras.applications takes no regularizer: attach it to the kernels
        for layer in model.layers:
            if isinstance(layer, (layers.Conv2D, layers.Dense)) and layer.name != "genotype":
                layer.kernel_regularizer = reg
                layer.kernel.regularizer = reg
    return model


def load_model(path: str | os.PathLike) -> keras.Model:
    from .errors import InputError

    try:
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot load Keras model ({str(e).splitlines()[0]})") from None


def architecture_of(model: keras.Model) -> str | None:
    """The architecture name (``small_cnn``, ``read_sums``, ...) of models this module built, else None."""
    return next((a for a, n in MODEL_NAMES.items() if n == model.name), None)


def _weighted_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if layer.weights]


def warm_start(model: keras.Model, source: keras.Model, path: str | os.PathLike) -> dict:
    """Copy ``source``'s weights into ``model`` (same architecture and image width).

    The height may differ: no weight of any architecture depends on it (the small CNN
    pools over all read rows, the read sums add over them, InceptionV3 pools globally), so
    a generic model trained on 100-row images warm-starts a low-coverage model on 32-row
    images.

    Layers with weights are paired in order (auto-generated layer names differ between
    processes). Every weight must have the same shape, except the kernels of the
    convolutions that read the image (small_cnn's first; read_sums' two per-read 1 x 5
    ones; read_evidence's first and its two per-read ones) when the channel count differs:
    their first min(C_old, C_new) input channels are copied, extra new channels start at
    zero (so the warm-started model first answers as the checkpoint did on the channels
    they share). Anything else is an :class:`~dvtrain.errors.InputError` naming the
    checkpoint. Returns
    ``{"channels_from", "channels_to"}``.
    """
    from .errors import InputError

    want, have = architecture_of(model), architecture_of(source)
    if have is not None and want is not None and have != want:
        raise InputError(path, f"checkpoint is a {have} model; config.architecture is {want}")
    src_shape, dst_shape = tuple(source.input_shape[1:]), tuple(model.input_shape[1:])
    if len(src_shape) != 3:
        raise InputError(path, f"checkpoint input shape {list(src_shape)} is not height x width x channels")
    spatial = f"checkpoint was trained on {src_shape[0]}x{src_shape[1]} images; these examples are " \
              f"{dst_shape[0]}x{dst_shape[1]}"
    if src_shape[1] != dst_shape[1]:
        raise InputError(path, spatial)
    src_layers, dst_layers = _weighted_layers(source), _weighted_layers(model)
    kinds = [type(x).__name__ for x in src_layers], [type(x).__name__ for x in dst_layers]
    if kinds[0] != kinds[1]:
        raise InputError(path, f"checkpoint has a different architecture ({source.name}: {len(src_layers)} layers "
                               f"with weights) from config.architecture {want or model.name} ({len(dst_layers)})")
    for src, dst in zip(src_layers, dst_layers):
        old, new = src.get_weights(), dst.get_weights()
        values = []
        for a, b in zip(old, new):
            if a.shape == b.shape:
                values.append(a)
            elif isinstance(dst, layers.Conv2D) and a.ndim == 4 and a.shape[:2] == b.shape[:2] \
                    and a.shape[3] == b.shape[3] and (a.shape[2], b.shape[2]) == (src_shape[2], dst_shape[2]):
                kernel = np.zeros(b.shape, dtype=b.dtype)
                c = min(a.shape[2], b.shape[2])
                kernel[:, :, :c, :] = a[:, :, :c, :]
                values.append(kernel)
            elif src_shape[0] != dst_shape[0]:
                raise InputError(path, f"{spatial}, and layer {src.name} ({type(src).__name__}) depends on the height")
            else:
                raise InputError(path, f"layer {src.name} ({type(src).__name__}) weights {list(a.shape)} do not fit "
                                       f"{list(b.shape)}: a different architecture")
        dst.set_weights(values)
    return {"channels_from": int(src_shape[2]), "channels_to": int(dst_shape[2])}
