"""Train the genotype CNN on shuffled examples (DeepVariant's base config, scaled down).

Optimiser RMSprop (rho 0.9, momentum 0.9, epsilon 1.0) with linear warm-up then
exponential decay 0.947 every 2 epochs, label smoothing, L2 weight decay 4e-5.
After every epoch the tune set is scored; ``checkpoints/epoch-NNN.keras`` is written and
``best_model.keras`` keeps the epoch with the highest ``tune/f1_weighted``.
``init_checkpoint`` warm-starts from an existing ``.keras`` model (the baseline).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .config import TrainConfig
from .errors import InputError, ShapeMismatchError
from .example_proto import decode_example
from .fileio import atomic_output, existing_inputs, read_tfrecords
from .plots import training_curves
from .shuffle import read_dataset_config


def load_examples(pattern: str, with_labels: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, C) uint8 and labels (N,) int from TFRecord files."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    shape = None
    for path in existing_inputs(pattern):
        for rec in read_tfrecords(path):
            ex = decode_example(rec, keys={"image/encoded", "image/shape", "label"})
            if "image/encoded" not in ex or "image/shape" not in ex:
                raise InputError(path, "example without image/encoded or image/shape")
            s = tuple(ex["image/shape"])
            if shape is None:
                shape = s
            elif s != shape:
                raise ShapeMismatchError(path, f"image shape {list(s)} differs from {list(shape)}")
            images.append(np.frombuffer(ex["image/encoded"][0], dtype=np.uint8).reshape(s))
            if with_labels:
                if "label" not in ex:
                    raise InputError(path, "example has no label (use training-mode examples)")
                labels.append(int(ex["label"][0]))
    if not images:
        return np.zeros((0, 1, 1, 1), np.uint8), np.zeros((0,), np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def f1_weighted(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 3) -> float:
    total = len(y_true)
    if total == 0:
        return 0.0
    score = 0.0
    for c in range(num_classes):
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        support = tp + fn
        if support == 0:
            continue
        f1 = 2 * tp / (2 * tp + fp + fn)
        score += f1 * support / total
    return score


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Genotype probabilities for uint8 images, batch by batch (no tf.data pipeline)."""
    if len(images) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(images[i : i + batch_size]))
                           for i in range(0, len(images), batch_size)])


def _seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.experimental.enable_op_determinism()
        except Exception:  # already set
            pass


def train(config: TrainConfig, progress: Optional[Callable[[dict], None]] = None) -> dict:
    """Train; writes checkpoints, best_model.keras, train_summary.json and training.png.

    ``progress`` is called with each epoch's metrics row (``epoch``, ``epochs``, losses, tune F1).
    """
    import keras

    from .model import WarmupExponentialDecay, build_model, load_model

    train_ds = read_dataset_config(config.train_dataset_config)
    tune_ds = read_dataset_config(config.tune_dataset_config)
    x, y = load_examples(train_ds["tfrecord_path"])
    xt, yt = load_examples(tune_ds["tfrecord_path"])
    if len(x) == 0:
        raise InputError(config.train_dataset_config, "training set has no examples")
    if len(xt) == 0:
        raise InputError(config.tune_dataset_config, "tune set has no examples")
    if xt.shape[1:] != x.shape[1:]:
        raise ShapeMismatchError(config.tune_dataset_config, f"tune image shape {list(xt.shape[1:])} differs from "
                                 f"the training set's {list(x.shape[1:])}")
    _seed_everything(config.seed)
    if config.init_checkpoint is not None:
        model = load_model(config.init_checkpoint)
        if tuple(model.input_shape[1:]) != tuple(x.shape[1:]):
            raise ShapeMismatchError(config.init_checkpoint,
                                     f"model input {list(model.input_shape[1:])} does not fit examples {list(x.shape[1:])}")
    else:
        model = build_model(x.shape[1:], weight_decay=config.weight_decay)
    steps_per_epoch = int(np.ceil(len(x) / config.batch_size))
    schedule = WarmupExponentialDecay(
        config.learning_rate,
        decay_steps=int(steps_per_epoch * config.learning_rate_num_epochs_per_decay),
        decay_rate=config.learning_rate_decay_rate,
        warmup_steps=config.warmup_steps,
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=schedule, rho=config.rho, momentum=config.momentum,
                                           epsilon=config.epsilon),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["categorical_accuracy"],
    )
    exp = Path(config.experiment_dir)
    ckpt_dir = exp / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    best = {"epoch": -1, "tune/f1_weighted": -1.0}
    y1 = keras.utils.to_categorical(y, 3)
    rng = np.random.default_rng(config.seed)
    for epoch in range(config.epochs):
        # Batches straight from numpy (no tf.data): backend-portable and deterministic.
        order = rng.permutation(len(x))
        losses, accs, sizes = [], [], []
        for i in range(0, len(x), config.batch_size):
            idx = np.sort(order[i : i + config.batch_size])
            out = model.train_on_batch(x[idx], y1[idx], return_dict=True)
            losses.append(float(out["loss"]))
            accs.append(float(out["categorical_accuracy"]))
            sizes.append(len(idx))
        pred = predict(model, xt).argmax(axis=1)
        row = {
            "epoch": epoch,
            "train/loss": float(np.average(losses, weights=sizes)),
            "train/categorical_accuracy": float(np.average(accs, weights=sizes)),
            "tune/accuracy": float(np.mean(pred == yt)),
            "tune/f1_weighted": f1_weighted(yt, pred),
        }
        history.append(row)
        if progress is not None:
            progress({**row, "epochs": config.epochs})
        ckpt = ckpt_dir / f"epoch-{epoch:03d}.keras"
        with atomic_output(ckpt, suffix=".keras") as tmp:
            model.save(tmp)
        if row["tune/f1_weighted"] > best["tune/f1_weighted"]:
            best = dict(row)
            with atomic_output(exp / "best_model.keras", suffix=".keras") as tmp:
                shutil.copyfile(ckpt, tmp)
    plot = training_curves(history, exp / "training.png", title=f"{exp.parent.name or exp.name}: {len(x)} train / {len(xt)} tune examples")
    summary = {
        "best_model": str(exp / "best_model.keras"),
        "plot": str(plot),
        "best_metrics": best,
        "history": history,
        "train_examples": int(len(x)),
        "tune_examples": int(len(xt)),
        "train_class_counts": np.bincount(y, minlength=3).tolist(),
        "init_checkpoint": str(config.init_checkpoint) if config.init_checkpoint else None,
        "backend": keras.backend.backend(),
    }
    with atomic_output(exp / "train_summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
