"""Training options, resume, warm start, best-model export and outputs, on tiny synthetic examples."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dvtrain.cli import main
from dvtrain.config import TrainConfig
from dvtrain.errors import InputError
from dvtrain.example_proto import encode_example
from dvtrain.fileio import TFRecordWriter
from dvtrain.tensorboard import FILE_VERSION, encode_event, frame, read_scalars
from dvtrain.train import STATE_FILE, class_weight_vector, train, tune_metrics

REPO = Path(__file__).resolve().parents[1]
SHAPE = (12, 17, 3)


def write_dataset(folder: Path, name: str, n: int, shape=SHAPE, seed: int = 0, noise: int = 60,
                  labels=None, flip: bool = False) -> Path:
    """``folder/name.dataset_config.pbtxt`` (+ shard, example_info.json), as ``dvtrain shuffle`` writes them.

    The label sets the mean of channel 0 (hom-ref dark, het mid, hom-alt bright) under noise:
    learnable, not trivially. With ``flip`` the images are drawn for the opposite class
    (2 - label): a set that teaches the reverse of the plain one.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n) if labels is None else np.asarray(labels)
    shard = folder / f"{name}-00000-of-00001.tfrecord.gz"
    with TFRecordWriter(shard) as w:
        for label in labels:
            img = rng.integers(0, 255, shape).astype(np.int64)
            drawn = 2 - int(label) if flip else int(label)
            img[..., 0] = np.clip(60 + 70 * drawn + rng.integers(-noise, noise + 1, shape[:2]), 0, 255)
            w.write(encode_example({"image/encoded": [img.astype(np.uint8).tobytes()], "image/shape": list(shape),
                                    "label": [int(label)]}))
    (folder / f"{name}.example_info.json").write_text(
        json.dumps({"version": "test", "shape": list(shape), "channels": list(range(1, shape[2] + 1))}))
    pbtxt = folder / f"{name}.dataset_config.pbtxt"
    counts = np.bincount(labels, minlength=3)
    pbtxt.write_text(f'name: "{name}"\ntfrecord_path: "{folder}/{name}-?????-of-00001.tfrecord.gz"\n'
                     f"num_examples: {n}\n" + "".join(f"# class{c}: {counts[c]}\n" for c in range(3)))
    return pbtxt


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train-data")
    return {"root": root, "train": write_dataset(root, "train", 40, seed=1), "tune": write_dataset(root, "tune", 24, seed=2),
            "train4": write_dataset(root, "train4", 40, shape=(12, 17, 4), seed=3),
            "tune4": write_dataset(root, "tune4", 24, shape=(12, 17, 4), seed=4)}


def cfg(data, exp, **kw) -> TrainConfig:
    base = dict(train_dataset_config=data["train"], tune_dataset_config=data["tune"], experiment_dir=exp,
                epochs=2, batch_size=8, seed=5)
    return TrainConfig(**{**base, **kw})


def weights_of(path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(str(path), compile=False).get_weights()


def state_arrays(exp) -> dict:
    with np.load(Path(exp) / STATE_FILE) as z:
        return {k: z[k] for k in z.files if k != "events"}


@pytest.fixture(scope="module")
def init_model(data, tmp_path_factory) -> Path:
    """A model trained 3 epochs on the 3-channel set: the warm-start point."""
    out = train(cfg(data, tmp_path_factory.mktemp("init"), epochs=3, learning_rate=3e-3))
    return Path(out["best_model"])


# ------------------------------------------------------------------ config
def test_config_uses_deepvariant_names_and_defaults():
    c = TrainConfig(train_dataset_pbtxt="a", tune_dataset_pbtxt="b", experiment_dir="e", num_epochs=3,
                    model_type="inception_v3", class_weights="1,2.5,4")
    assert (c.train_dataset_config, c.epochs, c.architecture, c.class_weights) == (Path("a"), 3, "inception_v3",
                                                                                    [1.0, 2.5, 4.0])
    d = TrainConfig(train_dataset_config="a", tune_dataset_config="b", experiment_dir="e")
    assert (d.learning_rate_decay_rate, d.learning_rate_num_epochs_per_decay, d.optimizer, d.backbone_dropout_rate,
            d.early_stopping_patience, d.tune_every_steps, d.best_checkpoint_metric, d.weight_decay) == (
        0.947, 2.0, "rmsprop", 0.2, 10, 100_000, "tune/f1_weighted", 4e-5)
    assert (d.architecture, d.class_weights, d.mixed_precision) == ("read_sums", "none", False)
    assert (d.use_ema, d.ema_momentum) == (True, 0.99)  # DeepVariant's base config
    for bad in ({"best_checkpoint_metric": "tune/auc"}, {"class_weights": [1, 2]}, {"class_weights": "heavy"},
                {"optimizer": "adagrad"}, {"backbone_dropout_rate": 1.0}):
        with pytest.raises(ValueError):
            TrainConfig(train_dataset_config="a", tune_dataset_config="b", experiment_dir="e", **bad)


def test_tune_metrics_and_class_weights():
    y = np.array([0, 1, 1, 2, 2, 2])
    probs = np.eye(3)[[0, 1, 2, 2, 2, 1]] * 0.9 + 0.1 / 3
    m = tune_metrics(y, probs)
    assert m["tune/categorical_accuracy"] == pytest.approx(4 / 6) == m["tune/f1_micro"]
    assert (m["tune/f1_homref"], m["tune/f1_het"], m["tune/f1_homalt"]) == pytest.approx((1.0, 0.5, 2 / 3))
    assert m["tune/f1_macro"] == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert m["tune/loss"] == pytest.approx(-(4 * np.log(0.9 + 0.1 / 3) + 2 * np.log(0.1 / 3)) / 6)
    assert class_weight_vector("none", y) is None
    assert class_weight_vector("balanced", y) == pytest.approx([6 / 3, 6 / 6, 6 / 9])
    assert class_weight_vector("balanced", np.array([1, 1, 2])) == pytest.approx([1.0, 0.5, 1.0])  # absent: 1
    assert class_weight_vector([1, 2, 3], y) == pytest.approx([1, 2, 3])


# ------------------------------------------------------------------ resume
def test_stopped_runs_resume_to_the_same_weights_and_history(data, init_model, tmp_path):
    """Stopped at an evaluation (mid-epoch) and between evaluations, resumed twice: same as one go.
    The state in experiment_dir wins over init_checkpoint on resume."""
    # 5 batches/epoch: evaluations mid-epoch; TensorBoard train scalars flushed between evaluations
    kw = dict(epochs=3, tune_every_steps=3, log_every_steps=2, init_checkpoint=init_model)
    whole = train(cfg(data, tmp_path / "whole", **kw))

    class Stop(Exception):
        pass

    def stop_at_eval(row):
        if row["step"] == 6:  # the second evaluation, in the middle of epoch 2
            raise Stop

    with pytest.raises(Stop):
        train(cfg(data, tmp_path / "parts", **kw), progress=stop_at_eval)
    saved = json.loads((tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()[-1])
    assert saved["step"] == 6 and saved["epoch"] == 1

    def kill_between(step, total):
        assert total == 15
        if step == 12:  # saved at step 10 (end of epoch 2); the events of step 12 are in the file
            raise Stop

    with pytest.raises(Stop):
        train(cfg(data, tmp_path / "parts", **kw), on_step=kill_between)
    events = next((tmp_path / "parts" / "tensorboard").glob("events.out.tfevents.*"))
    assert max(s for s, _, _ in read_scalars(events)) == 12
    with open(events, "ab") as fh:  # and a writer killed in the middle of a record
        fh.write(frame(encode_event(13, 0.0, {"train/loss": 9.0}))[:20])
    parts = train(cfg(data, tmp_path / "parts", **kw))

    assert parts["resumed_from"] == {"step": 10, "epoch": 2, "batch": 0}
    assert whole["resumed_from"] is None
    assert parts["history"] == whole["history"] and len(whole["history"]) == 7
    assert parts["initial_metrics"] == whole["initial_metrics"] is not None
    assert parts["best_metrics"] == whole["best_metrics"] and parts["steps"] == whole["steps"] == 15
    a, b = state_arrays(tmp_path / "whole"), state_arrays(tmp_path / "parts")
    assert a.keys() == b.keys() and any(k.startswith("opt_") for k in a)
    for k in a:
        if k != "meta":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # weights, optimizer slots, seed state
    for x, y in zip(weights_of(whole["best_model"]), weights_of(parts["best_model"])):
        np.testing.assert_array_equal(x, y)
    # one event per step and tag (no replayed duplicates), the same values
    sa, sb = read_scalars(whole["tensorboard"]), read_scalars(parts["tensorboard"])
    assert sa == sb and len({(s, t) for s, t, _ in sb}) == len(sb)
    assert [p.name for p in (tmp_path / "parts").rglob(".*")] == []  # no temp files left

    # a finished run started again does nothing; more epochs continue it
    again = train(cfg(data, tmp_path / "parts", **kw))
    assert again["history"] == whole["history"] and again["resumed_from"]["epoch"] == 3
    more = train(cfg(data, tmp_path / "parts", **{**kw, "epochs": 4}))
    assert more["history"][:7] == whole["history"] and more["steps"] == 20


def test_changed_settings_start_afresh(data, tmp_path):
    first = train(cfg(data, tmp_path, epochs=1))
    second = train(cfg(data, tmp_path, epochs=1, learning_rate=5e-4))
    assert second["resumed_from"] is None and len(second["history"]) == 1
    assert any("not resuming" in n and "learning_rate" in n for n in second["notes"])
    assert second["history"] != first["history"]


# ------------------------------------------------------------------ warm start and best model
def test_warm_start_copies_channels_and_refuses_other_shapes(init_model, tmp_path):
    import keras

    from dvtrain.model import build_model, load_model, warm_start

    source = load_model(init_model)  # the default architecture, read_sums
    old = source.get_weights()
    for channels in (4, 2):
        keras.utils.set_random_seed(1)
        model = build_model((12, 17, channels), architecture="read_sums")
        assert warm_start(model, source, init_model) == {"channels_from": 3, "channels_to": channels}
        new = model.get_weights()
        c = min(3, channels)
        adapted = 0
        for x, y in zip(new, old):
            if x.shape == y.shape:
                np.testing.assert_array_equal(x, y)
                continue
            adapted += 1  # a kernel reading the image: shared channels copied, added ones zero
            np.testing.assert_array_equal(x[:, :, :c, :], y[:, :, :c, :])
            assert not x[:, :, c:, :].any()
        assert adapted == 2  # the two per-read 1 x 5 convolutions
    with pytest.raises(InputError, match=r"init.*trained on 12x17 images; these examples are 12x21"):
        warm_start(build_model((12, 21, 3), architecture="read_sums"), source, tmp_path / "init.keras")
    # another height: every weight carries over (a 100-row generic model -> 32-row low-coverage images)
    taller = build_model((20, 17, 3), architecture="read_sums")
    warm_start(taller, source, init_model)
    for x, y in zip(taller.get_weights(), old):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(InputError, match=r"init\.keras: checkpoint is a read_sums model; config.architecture is inception_v3"):
        warm_start(build_model((80, 80, 3), architecture="inception_v3"), source, tmp_path / "init.keras")
    with pytest.raises(InputError, match=r"init\.keras: checkpoint is a read_sums model; config.architecture is read_evidence"):
        warm_start(build_model((12, 17, 3), architecture="read_evidence"), source, tmp_path / "init.keras")


def test_warm_start_with_more_channels_trains(data, init_model, tmp_path):
    out = train(cfg(data, tmp_path, train_dataset_config=data["train4"], tune_dataset_config=data["tune4"],
                    init_checkpoint=init_model, epochs=1))
    assert out["warm_start"] == {"channels_from": 3, "channels_to": 4}
    assert weights_of(out["best_model"])[0].shape[2] == 4
    info = json.loads(Path(out["example_info"]).read_text())
    assert Path(out["example_info"]).parent == Path(out["best_model"]).parent
    assert info["shape"] == [12, 17, 4] and info["channels"] == [1, 2, 3, 4]


def test_best_model_is_the_init_checkpoint_when_nothing_beats_it(data, tmp_path, capsys):
    """A warm-start model already perfect on the tune set, trained on a set that teaches the
    reverse, is never beaten (ties would need a lower tune loss); early stopping ends the run
    after ``early_stopping_patience`` evaluations."""
    easy = write_dataset(tmp_path, "easy", 48, seed=7, noise=5)
    flipped = write_dataset(tmp_path, "flipped", 48, seed=8, noise=5, flip=True)
    # without weight averaging: 36 steps are too few for the average to catch up
    perfect = train(cfg(data, tmp_path / "perfect", train_dataset_config=easy, tune_dataset_config=easy,
                        epochs=8, learning_rate=5e-3, use_ema=False))
    assert perfect["best_metrics"]["tune/f1_weighted"] == 1.0
    out = train(cfg(data, tmp_path / "warm", train_dataset_config=flipped, tune_dataset_config=easy, epochs=5,
                    init_checkpoint=perfect["best_model"], early_stopping_patience=2, tune_every_steps=2,
                    learning_rate=1e-2))
    assert out["best_is_init_checkpoint"] and out["initial_metrics"]["tune/f1_weighted"] == 1.0
    assert "no tune evaluation beat the warm-start model" in out["message"]
    assert out["stopped_early"] and len(out["history"]) == 2 and out["steps"] == 4
    assert out["best_metrics"]["epoch"] == -1
    for x, y in zip(weights_of(out["best_model"]), weights_of(perfect["best_model"])):
        np.testing.assert_array_equal(x, y)
    summary = json.loads((tmp_path / "warm" / "train_summary.json").read_text())
    assert summary["best_is_init_checkpoint"] is True and summary["message"] == out["message"]
    rows = [json.loads(line) for line in (tmp_path / "warm" / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["init", "tune", "tune"] and rows[0]["step"] == 0
    # the CLI says so on stderr
    rc = main(["train", "--train_dataset_pbtxt", str(flipped), "--tune_dataset_pbtxt", str(easy), "--experiment_dir",
               str(tmp_path / "cli"), "--init_checkpoint", perfect["best_model"], "--no-progress",
               "--config.num_epochs=1", "--config.learning_rate=0.01", "--config.batch_size=8", "--config.use_ema=false"])
    assert rc == 0
    assert "no tune evaluation beat the warm-start model" in capsys.readouterr().err


# ------------------------------------------------------------------ outputs
def test_outputs_tensorboard_metrics_and_plot(data, tmp_path):
    out = train(cfg(data, tmp_path, epochs=2, log_every_steps=2))
    hist = out["history"]
    assert [r["step"] for r in hist] == [5, 10] and [r["epoch"] for r in hist] == [0, 1]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "phase"} for r in rows] == hist
    scalars = read_scalars(out["tensorboard"])
    train_steps = sorted({s for s, t, _ in scalars if t == "train/loss"})
    assert train_steps == [2, 4, 5, 6, 8, 10]  # every log_every_steps and at each evaluation
    tune = {(s, t): v for s, t, v in scalars if t.startswith("tune/")}
    for r in hist:
        assert tune[(r["step"], "tune/f1_weighted")] == pytest.approx(r["tune/f1_weighted"], rel=1e-6)
        assert tune[(r["step"], "tune/loss")] == pytest.approx(r["tune/loss"], rel=1e-6)
    lr = {s: v for s, t, v in scalars if t == "train/learning_rate"}
    assert lr[2] == pytest.approx(2e-3 / 20, rel=1e-6)  # warm-up: (step + 1) / 20 of 1e-3 at iteration 1
    assert (tmp_path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch-000.keras", "epoch-001.keras"]
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow not installed: event file checked with dvtrain's own reader only")
    from tensorflow.compat.v1.train import summary_iterator

    events = list(summary_iterator(out["tensorboard"]))
    assert events[0].file_version == FILE_VERSION
    tf_scalars = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
    assert tf_scalars == scalars
    assert {t for _, t, _ in tf_scalars} >= {"train/loss", "train/categorical_accuracy", "train/learning_rate",
                                             "tune/loss", "tune/f1_weighted", "tune/categorical_accuracy"}


def test_best_checkpoint_metric_loss_is_lower_is_better(data, tmp_path):
    out = train(cfg(data, tmp_path, epochs=3, best_checkpoint_metric="tune/loss"))
    losses = [r["tune/loss"] for r in out["history"]]
    assert out["best_metrics"]["tune/loss"] == min(losses)
    assert [r["improved"] for r in out["history"]] == [losses[i] < min(losses[:i], default=np.inf) for i in range(3)]


def test_a_tie_on_the_metric_goes_to_the_lower_tune_loss(data, tmp_path):
    from dvtrain.train import is_better

    best = {"tune/f1_weighted": 0.995, "tune/loss": 0.38}
    assert is_better("tune/f1_weighted", {"tune/f1_weighted": 0.995, "tune/loss": 0.06}, best)
    assert not is_better("tune/f1_weighted", {"tune/f1_weighted": 0.995, "tune/loss": 0.5}, best)
    assert not is_better("tune/f1_weighted", {"tune/f1_weighted": 0.993, "tune/loss": 0.01}, best)
    assert is_better("tune/f1_weighted", {"tune/f1_weighted": 0.997, "tune/loss": 0.9}, best)
    assert is_better("tune/f1_weighted", {"tune/f1_weighted": 0.995 + 1e-12, "tune/loss": 0.06}, best)
    assert not is_better("tune/loss", {"tune/f1_weighted": 1.0, "tune/loss": 0.38}, best)
    assert is_better("tune/f1_weighted", {"tune/f1_weighted": 0.0, "tune/loss": 9.0}, None)
    # in a run: the exported model is the best F1, the lowest loss among its ties
    out = train(cfg(data, tmp_path, epochs=6, tune_every_steps=2))
    hist = out["history"]
    best_f1 = max(r["tune/f1_weighted"] for r in hist)
    tied = [r for r in hist if abs(r["tune/f1_weighted"] - best_f1) <= 1e-9]
    assert out["best_metrics"]["step"] == min(tied, key=lambda r: r["tune/loss"])["step"]
    flags, top = [], None
    for r in hist:
        up = top is None or r["tune/f1_weighted"] > top["tune/f1_weighted"] + 1e-9 or (
            abs(r["tune/f1_weighted"] - top["tune/f1_weighted"]) <= 1e-9 and r["tune/loss"] < top["tune/loss"])
        flags.append(up)
        top = r if up else top
    assert [r["improved"] for r in hist] == flags


def test_class_weights_change_the_loss(data, tmp_path):
    plain = train(cfg(data, tmp_path / "plain", epochs=1))
    weighted = train(cfg(data, tmp_path / "weighted", epochs=1, class_weights=[5.0, 1.0, 1.0]))
    assert weighted["class_weights"] == [5.0, 1.0, 1.0] and plain["class_weights"] is None
    assert weighted["history"][0]["train/loss"] != plain["history"][0]["train/loss"]
    balanced = train(cfg(data, tmp_path / "balanced", epochs=1, class_weights="balanced"))
    counts = np.array(balanced["train_class_counts"])
    assert balanced["class_weights"] == pytest.approx(list(counts.sum() / (3 * counts)), rel=1e-5)


def test_ema_weights_are_evaluated_and_exported(data, tmp_path):
    """use_ema: the optimizer keeps average = 0.99 * average + 0.01 * weights after every batch
    (the weights themselves on the first); the twin that is tuned and exported holds the
    averages, the model trains on its own weights. Without EMA the twin is the model."""
    import keras

    from dvtrain.model import build_model
    from dvtrain.train import averaged_weights, compile_for_training, load_examples

    x, y = load_examples(str(data["root"] / "train-?????-of-00001.tfrecord.gz"))
    y1 = keras.utils.to_categorical(y, 3)
    for use_ema in (True, False):
        keras.utils.set_random_seed(3)
        model = build_model(SHAPE, architecture="small_cnn")
        compile_for_training(model, cfg(data, tmp_path, use_ema=use_ema, learning_rate=1e-2), steps_per_epoch=5)
        trainable = {id(v) for v in model.trainable_variables}
        np.testing.assert_array_equal(averaged_weights(model, model.optimizer)[0], model.get_weights()[0])  # step 0
        expected = None
        for step in range(4):
            model.train_on_batch(x[step * 8:(step + 1) * 8], y1[step * 8:(step + 1) * 8])
            now = model.get_weights()
            expected = now if expected is None else [0.99 * e + 0.01 * w for e, w in zip(expected, now)]
        got = averaged_weights(model, model.optimizer)
        for v, g, e, w in zip(model.weights, got, expected, model.get_weights()):
            if use_ema and id(v) in trainable:
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6, err_msg=v.path)
            else:
                np.testing.assert_array_equal(g, w, err_msg=v.path)
        moved = [not np.allclose(g, w) for g, w in zip(got, model.get_weights())]
        assert any(moved) == use_ema
    # a training run exports the averages, not the raw weights it would resume from
    for use_ema in (True, False):
        exp = tmp_path / f"run-{use_ema}"
        train(cfg(data, exp, epochs=1, learning_rate=1e-2, use_ema=use_ema))
        raw = [a for k, a in state_arrays(exp).items() if k.startswith("model_")]
        exported = weights_of(exp / "checkpoints" / "epoch-000.keras")
        found = [any(a.shape == b.shape and np.array_equal(a, b) for a in raw) for b in exported]
        assert all(found) != use_ema


def test_mixed_precision_without_a_gpu_falls_back_to_float32(data, tmp_path):
    from dvtrain.train import has_gpu

    if has_gpu():
        pytest.skip("a GPU is visible: mixed precision is used, not refused")
    out = train(cfg(data, tmp_path, epochs=1, mixed_precision=True))
    assert out["mixed_precision"] is False
    assert any("mixed_precision" in n and "float32" in n for n in out["notes"])


def test_mixed_precision_path_resumes_and_exports_float32(data, tmp_path, monkeypatch):
    """The GPU path, forced on the CPU: mixed_float16 layers, a loss-scale optimizer whose state
    resumes like any other, float32 exported models."""
    import dvtrain.train as train_module
    from dvtrain.model import load_model

    monkeypatch.setattr(train_module, "has_gpu", lambda: True)
    kw = dict(epochs=2, mixed_precision=True, tune_every_steps=3)
    whole = train(cfg(data, tmp_path / "whole", **kw))

    class Stop(Exception):
        pass

    def stop(row):
        if row["step"] == 5:
            raise Stop

    with pytest.raises(Stop):
        train(cfg(data, tmp_path / "parts", **kw), progress=stop)
    parts = train(cfg(data, tmp_path / "parts", **kw))
    assert whole["mixed_precision"] is True and parts["resumed_from"]["step"] == 5
    assert parts["history"] == whole["history"]
    a, b = state_arrays(tmp_path / "whole"), state_arrays(tmp_path / "parts")
    for k in a:
        if k != "meta":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # Keras' LossScaleOptimizer keeps its dynamic loss scale (initially 2**15) among the optimizer variables
    assert any(k.startswith("opt_") and a[k].shape == () and float(a[k]) == 2.0 ** 15 for k in a)
    model = load_model(whole["best_model"])
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


@pytest.mark.slow  # a 22 M-weight model: ~30-60 s on 2 cores
def test_inception_v3_architecture(tmp_path):
    ds = write_dataset(tmp_path, "big", 8, shape=(75, 80, 5), seed=3)
    out = train(TrainConfig(train_dataset_config=ds, tune_dataset_config=ds, experiment_dir=tmp_path / "exp",
                            architecture="inception_v3", epochs=1, batch_size=4, backbone_dropout_rate=0.5))
    from dvtrain.model import load_model

    model = load_model(out["best_model"])
    assert model.name == "dvtrain_inception_v3" and tuple(model.input_shape[1:]) == (75, 80, 5)
    assert model.count_params() > 20_000_000 and model.layers[-2].rate == 0.5
    assert model.layers[-1].get_config()["activation"] == "softmax"
    small = write_dataset(tmp_path, "small", 4, shape=(32, 80, 5))
    with pytest.raises(InputError, match="small.dataset_config.pbtxt: inception_v3 needs images of at least 75x75"):
        train(TrainConfig(train_dataset_config=small, tune_dataset_config=small, experiment_dir=tmp_path / "x",
                          architecture="inception_v3", epochs=1))


# ------------------------------------------------------------------ CLI
def test_cli_config_overrides(data, tmp_path, capsys):
    base = ["train", "--train_dataset_pbtxt", str(data["train"]), "--tune_dataset_pbtxt", str(data["tune"]),
            "--experiment_dir", str(tmp_path), "--no-progress"]
    assert main(base + ["--config.learning_rat=0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "dvtrain: error: --config.learning_rat: unknown training option (did you mean --config.learning_rate?)"
    assert main(base + ["--config.optimizer=adagrad"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dvtrain: error: --config.optimizer: ") and "\n" not in err
    assert main(base + ["--config.learning_rate", "-1"]) == 2
    assert "--config.learning_rate: Input should be greater than 0" in capsys.readouterr().err
    assert main(base + ["--config.num_epochs=1", "--config.optimizer=adam", "--config.learning_rate=0.0005",
                        "--config.batch_size", "16", "--config.class_weights=1,2,3", "--config.tune_every_steps=2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["optimizer"], out["class_weights"], out["steps"]) == ("adam", [1.0, 2.0, 3.0], 3)
    assert [r["step"] for r in json.loads((tmp_path / "train_summary.json").read_text())["history"]] == [2, 3]


# ------------------------------------------------------------------ backends
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_training_runs_under_each_keras_backend(backend, data, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed in this environment (KERAS_BACKEND={backend} cannot be tried)")
    # Under JAX, TensorFlow imports are refused (the GPU machine has none; Keras would
    # otherwise pick it up for its data adapters): TFRecords and event files must not need it.
    block_tf = (
        "import importlib.abc\n"
        "class NoTF(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'tensorflow':\n"
        "            raise ImportError('tensorflow is blocked in this test')\n"
        "sys.meta_path.insert(0, NoTF())\n"
    )
    code = (
        "import json, sys\n" + (block_tf if backend == "jax" else "") +
        "from dvtrain.config import TrainConfig\nfrom dvtrain.train import train\nfrom dvtrain.model import load_model\n"
        "out = train(TrainConfig(train_dataset_config=sys.argv[1], tune_dataset_config=sys.argv[2],"
        " experiment_dir=sys.argv[3], epochs=2, batch_size=8, tune_every_steps=3))\n"
        "m = load_model(out['best_model'])\n"
        "print(json.dumps({'backend': out['backend'], 'steps': out['steps'], 'evals': len(out['history']),"
        " 'shape': list(m.input_shape[1:]), 'tf_loaded': 'tensorflow' in sys.modules}))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code, str(data["train"]), str(data["tune"]), str(tmp_path)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend and result["steps"] == 10 and result["evals"] == 5  # steps 3, 5, 6, 9, 10
    assert result["shape"] == list(SHAPE)
    if backend == "jax":
        assert not result["tf_loaded"]


def test_model_seed_holds_while_other_threads_use_random():
    """Prefect's worker threads call Python's global ``random``; a model built with a seed
    must not depend on that (its initializers and dropout seeds come from a private generator)."""
    import hashlib
    import random
    import threading

    import numpy as np

    from dvtrain.model import build_model

    def digest(model) -> str:
        return hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()

    quiet = digest(build_model((12, 17, 3), architecture="read_evidence", seed=5))
    stop = threading.Event()
    noise = threading.Thread(target=lambda: [random.random() for _ in iter(stop.is_set, True)])
    noise.start()
    try:
        noisy = [digest(build_model((12, 17, 3), architecture="read_evidence", seed=5)) for _ in range(3)]
    finally:
        stop.set()
        noise.join()
    assert noisy == [quiet] * 3
    assert digest(build_model((12, 17, 3), architecture="read_evidence", seed=6)) != quiet


def test_op_determinism_is_switched_as_configured(data, tmp_path):
    """TensorFlow's op determinism follows TrainConfig.op_determinism (on by default): off,
    the run trains; on again, two runs give the same weights."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("op determinism is a TensorFlow switch")
    from tensorflow.python.framework import config as tf_config

    train(cfg(data, tmp_path / "off", op_determinism=False))
    assert not tf_config.is_op_determinism_enabled()
    a = train(cfg(data, tmp_path / "a"))
    assert tf_config.is_op_determinism_enabled()
    b = train(cfg(data, tmp_path / "b"))
    for x, y in zip(weights_of(a["best_model"]), weights_of(b["best_model"])):
        np.testing.assert_array_equal(x, y)
