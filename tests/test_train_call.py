"""Training (warm start, best checkpoint by tune F1) and calling to a valid VCF."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pysam
import pytest

from dvtrain.call import call_variants, genotype_fields
from dvtrain.config import CallConfig, MakeExamplesConfig, ShuffleConfig, TrainConfig
from dvtrain.errors import InputError
from dvtrain.make_examples import make_examples
from dvtrain.shuffle import shuffle
from dvtrain.train import f1_weighted, train


def test_genotype_fields_follow_deepvariant_postprocess():
    gt, qual, gq, pl, flt = genotype_fields(np.array([0.01, 0.98, 0.01]))
    assert (gt, flt) == ("0/1", "PASS")
    assert qual == pytest.approx(20.0)  # -10 log10 P(hom-ref)
    assert gq == 17  # -10 log10(1 - 0.98) = 16.99
    assert pl == [0 + 20 - 0, 0, 20] or pl == [20, 0, 20]
    gt, qual, gq, pl, flt = genotype_fields(np.array([0.9, 0.09, 0.01]))
    assert (gt, flt) == ("0/0", "RefCall") and gq == 10 and pl[0] == 0
    assert genotype_fields(np.array([0.0, 0.0, 1.0]))[1] == 99  # capped, no infinities


def test_f1_weighted():
    y = np.array([0, 0, 1, 1, 2])
    assert f1_weighted(y, y) == 1.0
    assert f1_weighted(y, np.array([0, 1, 1, 1, 2])) == pytest.approx((2 * 2 / 3 + 2 * 0.8 + 1) / 5)


@pytest.fixture(scope="module")
def datasets(tiny_stage, tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    make_examples(MakeExamplesConfig(examples=str(out / "ex.tfrecord@1.gz"), **tiny_stage["training"]))
    sh = shuffle(ShuffleConfig(input_pattern_list=[str(out / "ex.tfrecord@1.gz")],
                               output_pattern_prefix=str(out / "train"), output_dataset_name="train", num_shards=1))
    calling = make_examples(MakeExamplesConfig(examples=str(out / "call.tfrecord@1.gz"), **tiny_stage["calling"]))
    return out, sh["dataset_config"], calling["path"]


@pytest.fixture(scope="module")
def trained(datasets):
    out, pbtxt, _ = datasets
    return train(TrainConfig(train_dataset_config=pbtxt, tune_dataset_config=pbtxt,
                             experiment_dir=out / "exp", epochs=3, batch_size=8))


def test_training_keeps_best_checkpoint_by_tune_f1(trained, datasets):
    out, _, _ = datasets
    hist = trained["history"]
    assert len(hist) == 3 and all(0 <= h["tune/f1_weighted"] <= 1 for h in hist)
    best = max(hist, key=lambda h: h["tune/f1_weighted"])
    assert trained["best_metrics"]["tune/f1_weighted"] == best["tune/f1_weighted"]
    assert sorted(p.name for p in (out / "exp" / "checkpoints").iterdir()) == [f"epoch-00{i}.keras" for i in range(3)]
    summary = json.loads((out / "exp" / "train_summary.json").read_text())
    # 40 sites, one of them multi-allelic (2 alts: 3 examples); the 14 GIAB SNPs are class 1. One
    # site is a 2-base insertion in a poly-A run that two reads carry with different bases
    # (AAG, AAT: merge_insertion_alleles), slippage labelled 0
    assert summary["train_examples"] == 42 and summary["train_class_counts"] == [28, 14, 0]
    # the best model travels with the examples' shape and channels (shuffle's example_info.json)
    info = json.loads((out / "exp" / "example_info.json").read_text())
    assert info["shape"] == [100, 221, 7] and info["channels"] == [1, 2, 3, 4, 5, 6, 19]
    rows = [json.loads(line) for line in (out / "exp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [h["step"] for h in hist] == [6, 12, 18]  # 42 examples, batch 8
    assert summary["best_is_init_checkpoint"] is False and summary["message"] is None


def test_warm_start_begins_from_the_init_checkpoint(trained, datasets):
    import keras

    out, pbtxt, _ = datasets
    init = keras.models.load_model(trained["best_model"], compile=False)
    warm = train(TrainConfig(train_dataset_config=pbtxt, tune_dataset_config=pbtxt, experiment_dir=out / "warm",
                             init_checkpoint=trained["best_model"], epochs=1, batch_size=8, learning_rate=1e-5))
    cold = train(TrainConfig(train_dataset_config=pbtxt, tune_dataset_config=pbtxt, experiment_dir=out / "cold",
                             epochs=1, batch_size=8, learning_rate=1e-5, seed=3))
    w_init = np.concatenate([w.ravel() for w in init.get_weights()])
    w_warm = np.concatenate([w.ravel() for w in keras.models.load_model(warm["best_model"], compile=False).get_weights()])
    w_cold = np.concatenate([w.ravel() for w in keras.models.load_model(cold["best_model"], compile=False).get_weights()])
    assert warm["init_checkpoint"] == str(trained["best_model"])
    assert np.linalg.norm(w_warm - w_init) < 0.1 * np.linalg.norm(w_cold - w_init)


def test_call_writes_sorted_indexed_vcf_deterministically(trained, datasets, tiny, tmp_path):
    _, _, calling = datasets
    a, b = tmp_path / "a.vcf.gz", tmp_path / "b.vcf.gz"
    for out in (a, b):
        res = call_variants(CallConfig(examples=calling, checkpoint=trained["best_model"], ref=tiny / "q.fa",
                                       outfile=out, sample_name="NA12878"))
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a.vcf.gz.tbi").exists()
    vf = pysam.VariantFile(str(a))
    assert list(vf.header.samples) == ["NA12878"] and "q" in vf.header.contigs
    recs = list(vf)
    assert len(recs) == res["num_records"] == 40  # one record per site (42 examples)
    assert [r.pos for r in recs] == sorted(r.pos for r in recs)
    for r in recs:
        s = r.samples["NA12878"]
        assert r.filter.keys() == (["RefCall"] if s["GT"] == (0, 0) else ["PASS"])
        assert list(r.format) == ["GT", "GQ", "DP", "AD", "VAF", "PL"]
        assert min(s["PL"]) == 0 and 0 <= s["GQ"] <= 99 and s["DP"] >= sum(s["AD"]) - 1
    assert list(vf.fetch("q", 0, 2000))  # the tabix index works
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert res["engine"] == "numpy" and res["num_examples"] == 42


def test_numpy_engine_matches_keras_on_the_trained_model(trained, datasets, tiny, tmp_path):
    """The NumPy forward pass (rows below the reads skipped) gives Keras' probabilities."""
    import keras

    from dvtrain.inference import NumpyCNN, predict_shard
    from dvtrain.example_proto import decode_example
    from dvtrain.fileio import read_tfrecords

    _, _, calling = datasets
    images = [np.frombuffer(ex["image/encoded"][0], np.uint8).reshape(ex["image/shape"])
              for ex in map(decode_example, read_tfrecords(calling))]
    want = np.asarray(keras.models.load_model(trained["best_model"], compile=False).predict_on_batch(np.stack(images)))
    got = NumpyCNN.load(trained["best_model"]).predict(images)
    assert np.abs(got - want).max() < 1e-5
    by_engine = {e: np.array([p.probs for p in predict_shard(calling, trained["best_model"], e, batch_size=16)])
                 for e in ("numpy", "keras")}
    assert np.abs(by_engine["numpy"] - by_engine["keras"]).max() < 1e-5
    calls = []
    for e in ("numpy", "keras"):
        out = tmp_path / f"{e}.vcf.gz"
        call_variants(CallConfig(examples=calling, checkpoint=trained["best_model"], ref=tiny / "q.fa", outfile=out,
                                 engine=e))
        rows = [line.split("\t") for line in gzip.open(out, "rt").read().splitlines() if not line.startswith("#")]
        calls.append([f[:5] + f[6:] for f in rows])  # all but QUAL (compared above through the probabilities)
    assert calls[0] == calls[1]


def test_call_rejects_a_missing_model(datasets, tiny, tmp_path):
    _, _, calling = datasets
    with pytest.raises(InputError, match="nope.keras"):
        call_variants(CallConfig(examples=calling, checkpoint=tmp_path / "nope.keras", ref=tiny / "q.fa",
                                 outfile=tmp_path / "x.vcf.gz"))
    assert not (tmp_path / "x.vcf.gz").exists()


def test_same_seed_same_model_same_vcf(datasets, tiny, tmp_path):
    out, pbtxt, calling = datasets
    vcfs = []
    for run in ("r1", "r2"):
        t = train(TrainConfig(train_dataset_config=pbtxt, tune_dataset_config=pbtxt, experiment_dir=tmp_path / run,
                              epochs=2, batch_size=8, seed=11))
        vcf = tmp_path / f"{run}.vcf.gz"
        call_variants(CallConfig(examples=calling, checkpoint=t["best_model"], ref=tiny / "q.fa", outfile=vcf))
        # the header records the config by file names: runs in other folders write the same bytes
        vcfs.append(gzip.open(vcf, "rt").read())
    assert vcfs[0] == vcfs[1] and "##dvtrain_config=" in vcfs[0]
