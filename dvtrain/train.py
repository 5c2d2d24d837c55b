"""Train the genotype classifier on shuffled examples (DeepVariant's training loop, scaled down).

Settings are :class:`~dvtrain.config.TrainConfig`'s (DeepVariant's base config names). Batches
come straight from numpy in a seeded order and go through ``train_on_batch`` (no tf.data),
so the loop runs under any Keras backend and never needs TensorFlow to read TFRecords.

The tune set is scored at the end of every epoch and every ``tune_every_steps`` batches.
Each evaluation appends a row to ``metrics.jsonl`` and the TensorBoard log, keeps
``best_model.keras`` at the best ``best_checkpoint_metric`` so far (a tie goes to the lower
``tune/loss``), and saves the
resumable state (``train_state.npz``: weights, optimizer slots and iteration count, dropout
seed state, epoch and batch position, batch-order RNG state, best so far, history,
early-stopping count, TensorBoard events). A run started again in the same
``experiment_dir`` with the same settings and inputs continues from that state (also when
``init_checkpoint`` is given): its weights and history are those of an uninterrupted run.
``epochs``, ``early_stopping_patience`` and ``log_every_steps`` may change between the two
(e.g. to extend a finished run); any other change starts afresh, with a warning.

With ``init_checkpoint``, the warm-start model is scored on the tune set before training and
is the best-so-far to beat: if no evaluation beats it, ``best_model.keras`` is that model and
``train_summary.json`` says so (``best_is_init_checkpoint``, ``message``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import __version__
from .config import LOWER_IS_BETTER, TrainConfig
from .errors import InputError, ShapeMismatchError, require_keras_model
from .example_proto import decode_example
from .fileio import atomic_output, content_key, existing_inputs, read_tfrecords
from .plots import training_curves
from .shuffle import read_dataset_config
from .tensorboard import ScalarLog

log = logging.getLogger(__name__)

STATE_FILE = "train_state.npz"
STATE_VERSION = 1
CLASS_NAMES = ("homref", "het", "homalt")
#: settings that may differ between a stopped run and its resumption
RESUMABLE_CHANGES = frozenset({"experiment_dir", "epochs", "early_stopping_patience", "log_every_steps",
                               "calling_vsc_min_snp_lod"})


def load_examples(pattern: str, with_labels: bool = True, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, C) uint8 and labels (N,) int from TFRecord files (the first ``limit``; 0: all)."""
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
            pixels = ex["image/encoded"][0]
            if len(pixels) != math.prod(s):
                raise InputError(path, f"image/encoded has {len(pixels)} bytes, image/shape {list(s)} needs {math.prod(s)}")
            images.append(np.frombuffer(pixels, dtype=np.uint8).reshape(s))
            if with_labels:
                if "label" not in ex:
                    raise InputError(path, "example has no label (use training-mode examples)")
                label = int(ex["label"][0])
                if not 0 <= label <= 2:
                    raise InputError(path, f"label {label} is not 0, 1 or 2")
                labels.append(label)
            if limit and len(images) >= limit:
                break
        if limit and len(images) >= limit:
            break
    if not images:
        return np.zeros((0, 1, 1, 1), np.uint8), np.zeros((0,), np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


# ------------------------------------------------------------------ metrics
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


def tune_metrics(y_true: np.ndarray, probs: np.ndarray, label_smoothing: float = 0.0) -> dict:
    """DeepVariant's tune/* metrics of genotype probabilities against labels.

    ``tune/loss`` is the training loss without regularisation or class weights
    (categorical cross-entropy with the same label smoothing). F1 of a class that is
    neither present nor predicted is 0; ``f1_macro`` averages the classes that are present
    or predicted; ``f1_micro`` equals accuracy for one label per example.
    """
    pred = probs.argmax(axis=1)
    onehot = np.eye(3)[y_true]
    target = onehot * (1.0 - label_smoothing) + label_smoothing / 3.0
    loss = float(np.mean(-np.sum(target * np.log(np.clip(probs.astype(np.float64), 1e-7, 1.0)), axis=1)))
    accuracy = float(np.mean(pred == y_true))
    out = {"tune/loss": loss, "tune/categorical_accuracy": accuracy, "tune/accuracy": accuracy,
           "tune/f1_weighted": f1_weighted(y_true, pred), "tune/f1_micro": accuracy}
    per_class = []
    for c, name in enumerate(CLASS_NAMES):
        tp = int(np.sum((pred == c) & (y_true == c)))
        wrong = int(np.sum((pred == c) != (y_true == c)))
        f1 = 2 * tp / (2 * tp + wrong) if tp + wrong else None
        out[f"tune/f1_{name}"] = f1 or 0.0
        if f1 is not None:
            per_class.append(f1)
    out["tune/f1_macro"] = float(np.mean(per_class)) if per_class else 0.0
    return out


TIE = 1e-9  # metric values closer than this are equal (the same counts give the same F1)


def is_better(metric: str, row: dict, best: Optional[dict]) -> bool:
    """Whether the tune evaluation ``row`` beats ``best`` on ``metric``. A tie on a count-based
    metric goes to the lower ``tune/loss``: on a small tune set one example moves F1 by a step
    and equal values are common, while the loss still tells a settled model from an early one."""
    if best is None:
        return True
    value, ref = row[metric], best[metric]
    if metric in LOWER_IS_BETTER:
        return value < ref
    if abs(value - ref) > TIE:
        return value > ref
    return row["tune/loss"] < best["tune/loss"]


def predict(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Genotype probabilities for uint8 images, batch by batch (no tf.data pipeline)."""
    if len(images) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    return np.concatenate([np.asarray(model.predict_on_batch(images[i : i + batch_size]), dtype=np.float32)
                           for i in range(0, len(images), batch_size)])


def class_weight_vector(setting, labels: np.ndarray) -> Optional[np.ndarray]:
    """Per-class loss weights: None (``none``), ``balanced`` (N / (3 * count), 1 for absent
    classes) or the three given numbers."""
    if setting == "none":
        return None
    if setting == "balanced":
        counts = np.bincount(labels, minlength=3).astype(np.float64)
        return np.where(counts > 0, len(labels) / (3.0 * np.maximum(counts, 1)), 1.0)
    return np.asarray(setting, dtype=np.float64)


# ------------------------------------------------------------------ inputs
def _example_info_candidates(dataset_config: Path, tfrecord_path: str) -> list[Path]:
    out = []
    name = dataset_config.name
    if name.endswith(".dataset_config.pbtxt"):
        out.append(dataset_config.parent / (name[: -len(".dataset_config.pbtxt")] + ".example_info.json"))
    m = re.match(r"^(.*)-\?+-of-[\d?]+\.tfrecord(\.gz)?$", tfrecord_path)
    if m:
        out.append(Path(m.group(1) + ".example_info.json"))
    out.append(Path(tfrecord_path).parent / "example_info.json")  # where DeepVariant's shuffle and train keep it
    if not any(c in tfrecord_path for c in "*?[@"):  # one file, e.g. make_examples output used unshuffled
        out.append(Path(tfrecord_path + ".example_info.json"))  # where DeepVariant's make_examples writes it
    return out


def dataset_example_info(dataset_config: str | Path, tfrecord_path: str, shape: tuple) -> dict:
    """The dataset's ``example_info.json`` (PREFIX.example_info.json from our shuffle, or the
    output folder's example_info.json, DeepVariant's place, or FILE.example_info.json beside one
    unshuffled file, where its make_examples writes it), checked
    against the examples' shape; one built from the shape when there is none."""
    for path in _example_info_candidates(Path(dataset_config), tfrecord_path):
        if path.is_file():
            try:
                info = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise InputError(path, "not valid JSON") from None
            if not isinstance(info, dict):
                raise InputError(path, "example_info.json is not a JSON object")
            if info.get("shape") is not None and list(info["shape"]) != list(shape):
                raise ShapeMismatchError(path, f"says image shape {info['shape']}; the examples are {list(shape)}")
            return info
    return {"version": f"dvtrain-{__version__}", "shape": list(shape), "channels": None}


def _load_data(config: TrainConfig) -> dict:
    train_ds = read_dataset_config(config.train_dataset_config)
    tune_ds = read_dataset_config(config.tune_dataset_config)
    train_files = existing_inputs(train_ds["tfrecord_path"])
    tune_files = existing_inputs(tune_ds["tfrecord_path"])
    x, y = load_examples(train_ds["tfrecord_path"], limit=config.limit)
    xt, yt = load_examples(tune_ds["tfrecord_path"], limit=config.num_validation_examples)
    if len(x) == 0:
        raise InputError(config.train_dataset_config, "training set has no examples")
    if len(np.unique(y)) < 2:
        raise InputError(config.train_dataset_config, f"training set has only one class (label {int(y[0])}, "
                                                      f"{len(y)} examples): a genotype classifier needs two or more")
    if len(xt) == 0:
        raise InputError(config.tune_dataset_config, "tune set has no examples")
    if xt.shape[1:] != x.shape[1:]:
        raise ShapeMismatchError(config.tune_dataset_config, f"tune image shape {list(xt.shape[1:])} differs from "
                                 f"the training set's {list(x.shape[1:])}")
    info = dataset_example_info(config.train_dataset_config, train_ds["tfrecord_path"], x.shape[1:])
    tune_info = dataset_example_info(config.tune_dataset_config, tune_ds["tfrecord_path"], xt.shape[1:])
    if info.get("channels") and tune_info.get("channels") and info["channels"] != tune_info["channels"]:
        raise ShapeMismatchError(config.tune_dataset_config, f"tune channels {tune_info['channels']} differ from "
                                 f"the training set's {info['channels']}")
    return {"x": x, "y": y, "xt": xt, "yt": yt, "info": info, "train_files": train_files, "tune_files": tune_files}


def _fingerprint(config: TrainConfig, data: dict) -> dict:
    """What a resumable state must have been trained with: settings plus input contents
    (not paths: a retried Prefect task may see the same inputs under other scratch paths)."""
    settings = config.model_dump(mode="json", exclude=set(RESUMABLE_CHANGES) | {
        "train_dataset_config", "tune_dataset_config", "init_checkpoint"})
    init = config.init_checkpoint
    return {
        "settings": settings,
        "train_data": [content_key(p) for p in data["train_files"]],
        "tune_data": [content_key(p) for p in data["tune_files"]],
        "init_checkpoint": content_key(init) if init is not None and Path(init).is_file() else None,
        "example_shape": list(data["x"].shape[1:]),
    }


# ------------------------------------------------------------------ backend helpers
def _seed_everything(seed: int, op_determinism: bool = True) -> None:
    """Seed every RNG and reset Keras' global state: layers are named from process-wide
    counters (``conv2d_7``), so without the reset a model trained second in a process
    (the custom model after the baseline) saves a different config than one trained first.
    With TensorFlow, switch its op determinism on or off (``TrainConfig.op_determinism``)."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not exported

        if op_determinism:
            tf_config.enable_op_determinism()
        else:
            tf_config.disable_op_determinism()


def has_gpu() -> bool:
    """Whether the Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform in ("gpu", "cuda", "rocm") for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # a backend without a usable device list: treat as CPU
        return False
    return False


def _optimizer(config: TrainConfig, schedule):
    import keras

    # the moving average lives in the optimizer's variables (saved with the resumable state);
    # the model's own weights are never overwritten by it (DeepVariant: ema_overwrite_frequency None)
    ema = {"use_ema": config.use_ema, "ema_momentum": config.ema_momentum, "ema_overwrite_frequency": None}
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=schedule, beta_1=config.beta_1, beta_2=config.beta_2,
                                     epsilon=config.epsilon, **ema)
    if config.optimizer == "nadam":
        return keras.optimizers.Nadam(learning_rate=schedule, beta_1=config.beta_1, beta_2=config.beta_2,
                                      epsilon=config.epsilon, **ema)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule, momentum=config.momentum, **ema)
    return keras.optimizers.RMSprop(learning_rate=schedule, rho=config.rho, momentum=config.momentum,
                                    epsilon=config.epsilon, **ema)


def averaged_weights(model, optimizer) -> list[np.ndarray]:
    """``model.get_weights()`` with each trainable variable replaced by the optimizer's
    moving average of it (``use_ema``); the model's own weights before the first step or
    without EMA. Non-trainable variables are the model's."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer under mixed precision
    averages = getattr(inner, "_model_variables_moving_average", None) if inner.use_ema else None
    if not averages or int(_numpy(inner.iterations)) == 0:
        return model.get_weights()
    by_var = {id(v): a for v, a in zip(model.trainable_variables, averages) if a is not None}
    return [_numpy(by_var.get(id(v), v)) for v in model.weights]


def compile_for_training(model, config: TrainConfig, steps_per_epoch: int):
    """Compile ``model`` with the config's optimizer, learning-rate schedule (returned) and loss;
    build the optimizer's slots."""
    import keras

    from .model import WarmupExponentialDecay

    schedule = WarmupExponentialDecay(
        config.learning_rate,
        decay_steps=int(steps_per_epoch * config.learning_rate_num_epochs_per_decay),
        decay_rate=config.learning_rate_decay_rate,
        warmup_steps=config.warmup_steps,
    )
    model.compile(
        optimizer=_optimizer(config, schedule),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["categorical_accuracy"],
    )
    model.optimizer.build(model.trainable_variables)
    return schedule


def _numpy(variable) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))


# ------------------------------------------------------------------ resumable state
def _save_state(path: Path, model, optimizer, meta: dict, events: ScalarLog) -> None:
    arrays = {f"model_{i:05d}": _numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"opt_{i:05d}": _numpy(v) for i, v in enumerate(optimizer.variables)})
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    arrays["events"] = np.frombuffer(events.to_bytes(), dtype=np.uint8)
    with atomic_output(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _read_state(path: Path, fingerprint: dict) -> tuple[Optional[dict], Optional[str]]:
    """(state, None) to resume; (None, why) when there is a state that cannot be used."""
    if not path.is_file():
        return None, None
    try:
        with np.load(path) as z:
            meta = json.loads(z["meta"].tobytes())
            state = {
                "meta": meta,
                "model": [z[k] for k in sorted(k for k in z.files if k.startswith("model_"))],
                "opt": [z[k] for k in sorted(k for k in z.files if k.startswith("opt_"))],
                "events": z["events"].tobytes(),
            }
    except Exception as e:  # unreadable (e.g. copied half-way): start afresh
        return None, f"cannot read {path} ({type(e).__name__}: {e})"
    if meta.get("version") != STATE_VERSION:
        return None, f"{path} has state version {meta.get('version')}, not {STATE_VERSION}"
    if meta.get("fingerprint") != fingerprint:
        old = meta.get("fingerprint") or {}
        changed = sorted(k for k in set(old.get("settings", {})) | set(fingerprint["settings"])
                         if old.get("settings", {}).get(k) != fingerprint["settings"].get(k))
        changed += [k for k in ("train_data", "tune_data", "init_checkpoint", "example_shape")
                    if old.get(k) != fingerprint[k]]
        return None, f"{path} was trained with other settings or inputs (changed: {', '.join(changed) or 'format'})"
    return state, None


def _restore(model, optimizer, state: dict) -> Optional[str]:
    """Assign the saved variables; a reason string (and nothing assigned) when they do not fit."""
    pairs = [(model.variables, state["model"]), (optimizer.variables, state["opt"])]
    for variables, values in pairs:
        if len(variables) != len(values):
            return f"the saved state has {len(values)} variables where the model has {len(variables)}"
        for v, a in zip(variables, values):
            if tuple(v.shape) != a.shape:
                return f"saved variable {v.path} has shape {list(a.shape)}, the model's {list(v.shape)}"
    for variables, values in pairs:
        for v, a in zip(variables, values):
            v.assign(a)
    return None


# ------------------------------------------------------------------ the loop
class _Exporter:
    """The model that is evaluated and exported: an uncompiled float32 twin of the trained
    model holding its (EMA-averaged) weights. Saved ``.keras`` files carry no optimizer slots
    and load on any backend, with or without a GPU."""

    def __init__(self, build: Callable):
        self._build = build
        self.twin = None

    def sync(self, model, optimizer):
        """Copy the weights to evaluate and export (``averaged_weights``) into the twin; returns it."""
        if self.twin is None:
            self.twin = self._build()
        self.twin.set_weights(averaged_weights(model, optimizer))
        return self.twin

    def save(self, path: Path) -> None:
        """Save the twin as last synced."""
        with atomic_output(path, suffix=".keras") as tmp:
            self.twin.save(tmp)


def _write_metrics(path: Path, meta: dict) -> None:
    rows = ([{"phase": "init", **meta["init"]}] if meta.get("init") else []) + \
           [{"phase": "tune", **row} for row in meta["history"]]
    with atomic_output(path) as tmp:
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def _clean_outputs(exp: Path) -> None:
    """Remove what an earlier, different run left (its epochs could outnumber this run's)."""
    for pattern in ("checkpoints/epoch-*.keras", "tensorboard/events.out.tfevents.*", "tensorboard/.dvtrain-events.*",
                    "best_model.keras",
                    "metrics.jsonl", "train_summary.json", "training.png", STATE_FILE):
        for path in exp.glob(pattern):
            path.unlink()


def train(config: TrainConfig, progress: Optional[Callable[[dict], None]] = None,
          on_step: Optional[Callable[[int, int], None]] = None) -> dict:
    """Train (or resume); writes checkpoints, best_model.keras (+ example_info.json), metrics.jsonl,
    TensorBoard events, training.png, train_state.npz and train_summary.json into experiment_dir.

    ``progress`` gets each tune evaluation's row (``epoch``, ``step``, ``epochs_completed``, train and
    tune metrics, ``epochs``), after the state is saved: an exception it raises stops the run
    at a resumable point. ``on_step(step, total_steps)`` is called after every batch.
    """
    import keras

    from .model import build_model, load_model, warm_start

    exp = Path(config.experiment_dir)
    if config.init_checkpoint is not None:  # fail before loading data or writing anything
        require_keras_model(config.init_checkpoint, "init_checkpoint")
    data = _load_data(config)
    x, y, xt, yt = data["x"], data["y"], data["xt"], data["yt"]
    notes: list[str] = []

    def note(message: str) -> None:
        log.warning("%s", message)
        notes.append(message)

    mixed = config.mixed_precision
    if mixed and not has_gpu():
        mixed = False
        note("mixed_precision: no GPU visible to the Keras backend; training in float32 instead")

    fingerprint = _fingerprint(config, data)
    state, why = _read_state(exp / STATE_FILE, fingerprint)
    if why:
        note(f"not resuming: {why}; starting afresh")

    _seed_everything(config.seed, config.op_determinism)

    def build(mixed_precision: bool):
        try:
            return build_model(x.shape[1:], weight_decay=config.weight_decay, dropout_rate=config.backbone_dropout_rate,
                               architecture=config.architecture, mixed_precision=mixed_precision, seed=config.seed)
        except ValueError as e:
            raise InputError(config.train_dataset_config, str(e)) from None

    model = build(mixed)
    exporter = _Exporter(lambda: build(False))
    n, batch_size = len(x), config.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = steps_per_epoch * config.epochs
    schedule = compile_for_training(model, config, steps_per_epoch)
    optimizer = model.optimizer  # a LossScaleOptimizer around ours under mixed precision

    if state is not None:
        why = _restore(model, optimizer, state)
        if why:
            note(f"not resuming: {why}; starting afresh")
            state = None  # the model is as built: _restore assigns nothing when it refuses
    metric = config.best_checkpoint_metric
    best_path, state_path = exp / "best_model.keras", exp / STATE_FILE
    metrics_path, ckpt_dir = exp / "metrics.jsonl", exp / "checkpoints"
    resumed_from = None
    if state is not None:
        meta = state["meta"]
        events = ScalarLog.from_bytes(exp / "tensorboard", meta["events_name"], state["events"])
        events.resume()
        resumed_from = {"step": meta["step"], "epoch": meta["epoch"], "batch": meta["batch"]}
        log.info("resuming %s at epoch %d batch %d (step %d)", exp, meta["epoch"], meta["batch"], meta["step"])
    else:
        _clean_outputs(exp)
        events = ScalarLog(exp / "tensorboard")
        meta = {
            "version": STATE_VERSION, "fingerprint": fingerprint, "events_name": events.name,
            "step": 0, "epoch": 0, "batch": 0, "rng": np.random.default_rng(config.seed).bit_generator.state,
            "history": [], "init": None, "best": None, "bad_evals": 0, "stopped_early": False, "warm_start": None,
        }
        if config.init_checkpoint is not None:
            source = load_model(config.init_checkpoint)
            meta["warm_start"] = warm_start(model, source, config.init_checkpoint)
            del source
            ws = meta["warm_start"]
            if ws["channels_from"] != ws["channels_to"]:
                log.info("warm start: %s has %d input channels, the examples %d; copied the first %d",
                         config.init_checkpoint, ws["channels_from"], ws["channels_to"],
                         min(ws["channels_from"], ws["channels_to"]))
            row = {"epoch": -1, "step": 0, "epochs_completed": 0.0,
                   **tune_metrics(yt, predict(exporter.sync(model, optimizer), xt), config.label_smoothing)}
            meta["init"], meta["best"] = row, {**row, "source": "init_checkpoint"}
            events.add(0, {k: v for k, v in row.items() if k.startswith("tune/")})
            exporter.save(best_path)
            _checkpoint(exp, meta, events, model, optimizer, state_path, metrics_path)

    weights = class_weight_vector(config.class_weights, y)
    sample_weights = None if weights is None else weights[y].astype(np.float32)
    y1 = keras.utils.to_categorical(y, 3)
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    stopped = bool(config.early_stopping_patience and meta["bad_evals"] >= config.early_stopping_patience)
    if stopped and meta["epoch"] < config.epochs:  # resumed with a smaller patience
        meta["stopped_early"] = True
    since_eval = [0.0, 0.0, 0]  # loss sum, accuracy sum, examples: train metrics of the evaluation row
    since_log = [0.0, 0.0, 0, 0]  # the same for the TensorBoard train scalars, + steps

    def train_scalars(step: int) -> None:
        if since_log[3]:
            events.add(step, {"train/loss": since_log[0] / since_log[2],
                              "train/categorical_accuracy": since_log[1] / since_log[2],
                              "train/learning_rate": schedule.value(step - 1)})
        since_log[:] = [0.0, 0.0, 0, 0]

    while meta["epoch"] < config.epochs and not stopped:
        epoch = meta["epoch"]
        epoch_rng = rng.bit_generator.state
        order = rng.permutation(n)
        for b in range(meta["batch"], steps_per_epoch):
            idx = np.sort(order[b * batch_size : (b + 1) * batch_size])
            out = model.train_on_batch(x[idx], y1[idx], sample_weight=None if sample_weights is None else
                                       sample_weights[idx], return_dict=True)
            step = meta["step"] = meta["step"] + 1
            loss, acc = float(out["loss"]), float(out["categorical_accuracy"])
            for acc_list in (since_eval, since_log):
                acc_list[0] += loss * len(idx)
                acc_list[1] += acc * len(idx)
                acc_list[2] += len(idx)
            since_log[3] += 1
            if step % config.log_every_steps == 0:
                train_scalars(step)
                events.flush()  # live for TensorBoard; a resume cuts what lies past the saved state
            if on_step is not None:
                on_step(step, total_steps)
            epoch_end = b == steps_per_epoch - 1
            if not (epoch_end or step % config.tune_every_steps == 0):
                continue
            # ---- tune evaluation: row, best model, checkpoint, state
            train_scalars(step)
            row = {"epoch": epoch, "step": step, "epochs_completed": round(step / steps_per_epoch, 4),
                   "train/loss": since_eval[0] / since_eval[2],
                   "train/categorical_accuracy": since_eval[1] / since_eval[2],
                   "train/learning_rate": schedule.value(step - 1),
                   **tune_metrics(yt, predict(exporter.sync(model, optimizer), xt), config.label_smoothing)}
            since_eval[:] = [0.0, 0.0, 0]
            best = meta["best"]
            row["improved"] = is_better(metric, row, best)
            meta["history"].append(row)
            events.add(step, {k: v for k, v in row.items() if k.startswith("tune/")})
            if epoch_end:
                ckpt = ckpt_dir / f"epoch-{epoch:03d}.keras"
                exporter.save(ckpt)
            if row["improved"]:
                meta["best"], meta["bad_evals"] = {**row, "source": "training"}, 0
                if epoch_end:
                    with atomic_output(best_path, suffix=".keras") as tmp:
                        shutil.copyfile(ckpt, tmp)
                else:
                    exporter.save(best_path)
            else:
                meta["bad_evals"] += 1
            stopped = bool(config.early_stopping_patience and meta["bad_evals"] >= config.early_stopping_patience)
            meta["stopped_early"] = stopped and not (epoch_end and epoch + 1 >= config.epochs)
            meta["epoch"], meta["batch"] = (epoch + 1, 0) if epoch_end else (epoch, b + 1)
            meta["rng"] = rng.bit_generator.state if epoch_end else epoch_rng
            _checkpoint(exp, meta, events, model, optimizer, state_path, metrics_path)
            if progress is not None:
                progress({**row, "epochs": config.epochs})
            if stopped:
                log.info("early stopping: %d evaluations without a better %s", meta["bad_evals"], metric)
                break

    return _finish(config, exp, meta, data, events, notes, resumed_from, mixed, weights,
                   steps_per_epoch, keras.backend.backend())


def _checkpoint(exp: Path, meta: dict, events: ScalarLog, model, optimizer, state_path: Path,
                metrics_path: Path) -> None:
    """The outputs an evaluation updates, then the state that points past them."""
    events.flush()
    _write_metrics(metrics_path, meta)
    _save_state(state_path, model, optimizer, meta, events)


def _finish(config: TrainConfig, exp: Path, meta: dict, data: dict, events: ScalarLog, notes: list[str],
            resumed_from: Optional[dict], mixed: bool, weights, steps_per_epoch: int, backend: str) -> dict:
    best = meta["best"]
    metric = config.best_checkpoint_metric
    from_init = best.get("source") == "init_checkpoint"
    message = None
    if from_init:
        init_value = meta["init"][metric]
        tried = [r[metric] for r in meta["history"]]
        best_tried = (min(tried) if metric in LOWER_IS_BETTER else max(tried)) if tried else None
        message = (f"no tune evaluation beat the warm-start model ({metric} {init_value:.4f}"
                   + (f"; best of {len(tried)} evaluations {best_tried:.4f}" if tried else "; no evaluations")
                   + f"): best_model.keras is init_checkpoint {config.init_checkpoint}")
        log.warning("%s", message)
    info_path = exp / "example_info.json"
    info = dict(data["info"])  # the training examples' shape, channels and make_examples options ...
    if config.calling_vsc_min_snp_lod is not None:  # ... and what calling with this model adds to them
        info["calling"] = {"vsc_min_snp_lod": config.calling_vsc_min_snp_lod}
    with atomic_output(info_path) as tmp:
        tmp.write_text(json.dumps(info, sort_keys=True) + "\n")
    history = meta["history"]
    x, y, yt = data["x"], data["y"], data["yt"]
    plot = training_curves(history, exp / "training.png",
                           title=f"{exp.parent.name or exp.name}: {len(x)} train / {len(data['xt'])} tune examples")
    summary = {
        "best_model": str(exp / "best_model.keras"),
        "example_info": str(info_path),
        "plot": str(plot),
        "metrics": str(exp / "metrics.jsonl"),
        "tensorboard": str(events.path),
        "state": str(exp / STATE_FILE),
        "best_checkpoint_metric": metric,
        "best_metrics": {k: v for k, v in best.items() if k != "source"},
        "best_is_init_checkpoint": from_init,
        "message": message,
        "initial_metrics": meta["init"],
        "history": history,
        "train_examples": int(len(x)),
        "tune_examples": int(len(yt)),
        "train_class_counts": np.bincount(y, minlength=3).tolist(),
        "tune_class_counts": np.bincount(yt, minlength=3).tolist(),
        "class_weights": None if weights is None else [round(float(w), 6) for w in weights],
        "init_checkpoint": str(config.init_checkpoint) if config.init_checkpoint else None,
        "warm_start": meta["warm_start"],
        "architecture": config.architecture,
        "optimizer": config.optimizer,
        "mixed_precision": mixed,
        "backend": backend,
        "steps": meta["step"],
        "steps_per_epoch": steps_per_epoch,
        "epochs_completed": round(meta["step"] / steps_per_epoch, 4),
        "stopped_early": meta["stopped_early"],
        "resumed_from": resumed_from,
        "notes": notes,
    }
    with atomic_output(exp / "train_summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
