"""The genotype classifier: a small Keras 3 CNN over DeepVariant pileup tensors.

Backend-portable (TensorFlow by default, JAX on the GPU machine): only ``keras.layers``
and ``keras.ops`` are used. DeepVariant's InceptionV3 is far too heavy for a 2-core CPU;
this network keeps the same inputs/outputs (uint8 H x W x C -> 3 genotype probabilities),
scales pixels to [-1, 1] as DeepVariant does, and pools over read rows (which are
exchangeable) while keeping column position, where the candidate sits.
"""

from __future__ import annotations

import os
from typing import Sequence


import keras
from keras import layers


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

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "warmup_steps": self.warmup_steps}


def build_model(input_shape: Sequence[int], weight_decay: float = 4e-5, num_classes: int = 3) -> keras.Model:
    h, w, c = (int(x) for x in input_shape)
    reg = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    inputs = keras.Input(shape=(h, w, c), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    # No batch normalisation: its running statistics, learnt at one coverage, mis-scale
    # images at another after a short warm-start (seen as all-hom-alt predictions).
    for filters in (24, 32, 48):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", kernel_regularizer=reg)(x)
    rows = x.shape[1]
    x = layers.AveragePooling2D(pool_size=(rows, 1))(x)  # pool over reads, keep columns
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", kernel_regularizer=reg)(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes, activation="softmax", kernel_regularizer=reg, name="genotype")(x)
    return keras.Model(inputs, outputs, name="dvtrain_cnn")


def load_model(path: str | os.PathLike) -> keras.Model:
    from .errors import InputError

    try:
        return keras.models.load_model(str(path), compile=False)
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot load Keras model ({str(e).splitlines()[0]})") from None
