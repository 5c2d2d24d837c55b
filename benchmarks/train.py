"""Benchmark: training and calling throughput of the four architectures on this machine's CPU.

    python benchmarks/train.py [--examples 256] [--inception-examples 96] [--batch-size 32]
                               [--shape 100x221x7] [--dataset PBTXT] [--output benchmarks/results/train.json]
    python benchmarks/train.py --class-weights --train-dataset PBTXT --tune-dataset PBTXT [--seeds 42,1,2]

For ``read_sums`` (the default), ``read_evidence``, ``small_cnn`` and ``inception_v3``
(``TrainConfig`` defaults otherwise: RMSprop, warm-up and decay schedule, label smoothing,
L2, dropout 0.2), on images of ``--shape`` (default
[100, 221, 7], make_examples' default; the demo's low-coverage examples are 32x221x8):

* ``train ex/s``: examples per second through ``train_on_batch`` (batch ``--batch-size``),
  exactly as ``dvtrain.train`` feeds them, after one untimed batch (tracing / compilation);
* ``predict ex/s``: examples per second through ``predict_on_batch`` at batch 64 (the
  ``dvtrain call`` default; the numbers are Keras', not those of call's NumPy engine), after one
  untimed batch.

Images are seeded random pixels (convolution cost does not depend on the values), or the
first examples of ``--dataset`` (a dataset_config.pbtxt, e.g. shuffled demo examples).
The Keras backend is ``KERAS_BACKEND`` (default tensorflow); the 1-minute load average is
recorded before each measurement, since the machine may be shared. Results are written to
``--output`` with the machine's details, under ``shapes`` keyed by the shape (and as
``results`` for the default shape); the table is printed.

``--class-weights --train-dataset A.pbtxt --tune-dataset B.pbtxt`` instead trains
``small_cnn`` with ``class_weights`` none / balanced / 3,1,1 for each of ``--seeds`` (default
config otherwise, ``--epochs`` 8) and records each best model's tune metrics under
``class_weights`` in the same file (minutes, not seconds: 9 trainings). The recorded numbers
come from the demo data: ``dvtrain make-examples --mode training`` on ``lowcov.bam`` with
``truth.vcf.gz`` / ``truth.bed`` for chr1 (train) and chr21 (tune), each shuffled to one shard.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "train.json"
SHAPE = (100, 221, 7)
PREDICT_BATCH = 64


def _images(n: int, dataset: str | None, seed: int, shape: tuple[int, int, int] = SHAPE):
    import numpy as np

    if dataset:
        from dvtrain.shuffle import read_dataset_config
        from dvtrain.train import load_examples

        x, y = load_examples(read_dataset_config(dataset)["tfrecord_path"], limit=n)
        if len(x) < n:
            x, y = np.resize(x, (n, *x.shape[1:])), np.resize(y, n)  # repeat a small set
        return x, y
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 3, n)


def bench(architecture: str, n: int, batch_size: int, dataset: str | None, seed: int = 1,
          shape: tuple[int, int, int] = SHAPE) -> dict:
    import keras
    import numpy as np

    from dvtrain.config import TrainConfig
    from dvtrain.model import build_model
    from dvtrain.train import compile_for_training

    x, y = _images(n + batch_size, dataset, seed, shape)  # + one untimed batch
    y1 = keras.utils.to_categorical(y, 3)
    keras.utils.set_random_seed(seed)
    t = time.perf_counter()
    model = build_model(x.shape[1:], architecture=architecture)
    config = TrainConfig(train_dataset_config="-", tune_dataset_config="-", experiment_dir="-",
                         architecture=architecture, batch_size=batch_size)
    compile_for_training(model, config, steps_per_epoch=max(1, n // batch_size))
    build_s = time.perf_counter() - t
    load = os.getloadavg()[0]
    t = time.perf_counter()
    model.train_on_batch(x[:batch_size], y1[:batch_size])
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(batch_size, len(x), batch_size):
        model.train_on_batch(x[i:i + batch_size], y1[i:i + batch_size])
    train_s = time.perf_counter() - t
    model.predict_on_batch(x[:PREDICT_BATCH])
    t = time.perf_counter()
    for i in range(0, n, PREDICT_BATCH):
        np.asarray(model.predict_on_batch(x[i:i + PREDICT_BATCH]))
    predict_s = time.perf_counter() - t
    return {
        "architecture": architecture, "params": int(model.count_params()), "examples": n, "batch_size": batch_size,
        "build_compile_s": round(build_s, 2), "first_batch_s": round(first_s, 2),
        "train_s": round(train_s, 2), "train_examples_per_s": round(n / train_s, 1),
        "predict_batch_size": PREDICT_BATCH, "predict_s": round(predict_s, 2),
        "predict_examples_per_s": round(n / predict_s, 1), "load_avg_1m_before": round(load, 2),
    }


CLASS_WEIGHTS = ("none", "balanced", [3.0, 1.0, 1.0])
TUNE_KEYS = ("tune/f1_weighted", "tune/f1_macro", "tune/f1_homref", "tune/f1_het", "tune/f1_homalt",
             "tune/categorical_accuracy")


def class_weight_runs(train_ds: str, tune_ds: str, seeds: list[int], epochs: int, workdir: Path) -> dict:
    """Best-model tune metrics of the default architecture trained with each class_weights setting and seed."""
    from dvtrain.config import TrainConfig
    from dvtrain.train import train

    rows = []
    for seed in seeds:
        for cw in CLASS_WEIGHTS:
            name = cw if isinstance(cw, str) else ",".join(f"{w:g}" for w in cw)
            t = time.perf_counter()
            out = train(TrainConfig(train_dataset_config=train_ds, tune_dataset_config=tune_ds, epochs=epochs, seed=seed,
                                    class_weights=cw, experiment_dir=workdir / f"{name}-{seed}"))
            best = out["best_metrics"]
            rows.append({"class_weights": name, "seed": seed, "weights": out["class_weights"],
                         "best_epoch": best["epoch"] + 1, **{k: round(best[k], 4) for k in TUNE_KEYS},
                         "wall_s": round(time.perf_counter() - t, 1)})
            print(json.dumps(rows[-1]), flush=True)
    means = {}
    for cw in CLASS_WEIGHTS:
        name = cw if isinstance(cw, str) else ",".join(f"{w:g}" for w in cw)
        picked = [r for r in rows if r["class_weights"] == name]
        means[name] = {k: round(sum(r[k] for r in picked) / len(picked), 4) for k in TUNE_KEYS}
    return {"train_dataset": train_ds, "tune_dataset": tune_ds, "epochs": epochs, "seeds": seeds,
            "train_class_counts": out["train_class_counts"], "tune_class_counts": out["tune_class_counts"],
            "runs": rows, "mean_over_seeds": means}


def _merge(path: Path, update: dict) -> None:
    """Update the top-level keys of the JSON at ``path``; ``shapes`` is merged by shape."""
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        result = {}
    if "shapes" in update:
        update = {**update, "shapes": {**result.get("shapes", {}), **update["shapes"]}}
    result.update(update)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=256,
                    help="timed examples for read_sums, read_evidence and small_cnn")
    ap.add_argument("--inception-examples", type=int, default=96, help="timed examples for inception_v3")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--shape", default="x".join(map(str, SHAPE)), help="image HxWxC of the random pixels")
    ap.add_argument("--dataset", help="dataset_config.pbtxt to take images from (default: random pixels)")
    ap.add_argument("--class-weights", action="store_true", help="run the class-weights comparison instead")
    ap.add_argument("--train-dataset", help="--class-weights: training dataset_config.pbtxt")
    ap.add_argument("--tune-dataset", help="--class-weights: tune dataset_config.pbtxt")
    ap.add_argument("--seeds", default="42,1,2", help="--class-weights: comma-separated seeds")
    ap.add_argument("--epochs", type=int, default=8, help="--class-weights: epochs per training")
    ap.add_argument("--workdir", type=Path, help="--class-weights: where the trainings write (default: a temp dir)")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "backend": keras.backend.backend(), "keras": keras.__version__}
    if args.class_weights:
        if not (args.train_dataset and args.tune_dataset):
            ap.error("--class-weights needs --train-dataset and --tune-dataset")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench-class-weights-") as tmp:
            res = class_weight_runs(args.train_dataset, args.tune_dataset, [int(s) for s in args.seeds.split(",")],
                                    args.epochs, args.workdir or Path(tmp))
        print("class_weights | " + " | ".join(TUNE_KEYS))
        for name, m in res["mean_over_seeds"].items():
            print(f"{name} | " + " | ".join(str(m[k]) for k in TUNE_KEYS))
        _merge(args.output, {"class_weights": {**res, "machine": machine}})
        return 0

    shape = tuple(int(v) for v in args.shape.split("x"))
    if len(shape) != 3 or min(shape) < 1:
        ap.error(f"--shape {args.shape}: expected HxWxC, e.g. 32x221x8")
    rows = [bench("read_sums", args.examples, args.batch_size, args.dataset, shape=shape),
            bench("read_evidence", args.examples, args.batch_size, args.dataset, shape=shape),
            bench("small_cnn", args.examples, args.batch_size, args.dataset, shape=shape)]
    if min(shape[:2]) >= 75:  # InceptionV3's stem needs 75 x 75
        rows.append(bench("inception_v3", args.inception_examples, args.batch_size, args.dataset, shape=shape))
    else:
        print(f"inception_v3 skipped: it needs images of at least 75 x 75, not {shape[0]} x {shape[1]}")
    header = ("architecture", "params", "examples", "train ex/s", "predict ex/s", "first batch s", "load")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(" | ".join(str(v) for v in (r["architecture"], f"{r['params']:,}", r["examples"],
                                           r["train_examples_per_s"], r["predict_examples_per_s"],
                                           r["first_batch_s"], r["load_avg_1m_before"])))
    run = {"shape": list(shape), "images": args.dataset or "random uint8 pixels (seeded)", "machine": machine,
           "results": rows}
    update = {"benchmark": "training (train_on_batch) and calling (predict_on_batch) throughput on CPU",
              "shapes": {args.shape: run}}
    if shape == SHAPE:
        update.update(run)
    _merge(args.output, update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
