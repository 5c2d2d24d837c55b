"""dvtrain call: postprocess rules (FILTER, FORMAT, multi-allelic sites), the VCF header,
the numpy inference engine against Keras, gVCF reference blocks, determinism."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest

from dvtrain.call import call_variants, combine_site, postprocess, site_fields
from dvtrain.gvcf import cut_blocks, merge_blocks
from dvtrain.inference import NumpyCNN, Prediction
from dvtrain.config import CallConfig, MakeExamplesConfig
from dvtrain.errors import InputError
from dvtrain.example_proto import (bytes_values, decode_example, encode_alt_allele_indices, encode_example, encode_variant,
                                   feature_lists, int_values)
from dvtrain.fileio import TFRecordWriter
from dvtrain.gvcf import gvcf_blocks_path, reference_confidence
from dvtrain.make_examples import make_examples

from bam_helpers import write_ref

REPO = Path(__file__).resolve().parents[1]
SHAPE = (12, 21, 7)


# ---------------------------------------------------------------- helpers
def _pred(pos, ref, alts, sub, probs, counts=None, chrom="c"):
    return Prediction(chrom, pos, ref, tuple(alts), tuple(sub), tuple(probs), tuple(counts) if counts else None)


def _fields(line):
    f = line.split("\t")
    return f[6], dict(zip(f[8].split(":"), f[9].split(":"))), f


def _image(rng, height, shape=SHAPE):
    img = np.zeros(shape, dtype=np.uint8)
    img[:height] = rng.integers(1, 255, (height,) + shape[1:], dtype=np.uint8)
    return img


def _write_examples(path, sites, seed=0, shape=SHAPE):
    """sites: (chrom, pos, ref, alts, [(sub, height, counts or None), ...]) -> one TFRecord file."""
    rng = np.random.default_rng(seed)
    with TFRecordWriter(path) as w:
        for chrom, pos, ref, alts, examples in sites:
            for sub, height, counts in examples:
                feats = {"image/encoded": _image(rng, height, shape).tobytes(), "image/shape": list(shape),
                         "variant/encoded": encode_variant(chrom, pos, ref, list(alts)),
                         "alt_allele_indices/encoded": encode_alt_allele_indices(list(sub)),
                         "locus": f"{chrom}:{pos + 1}".encode(), "variant_type": 1}
                if counts is not None:
                    feats["dvtrain/allele_counts"] = list(counts)
                w.write(encode_example(feats))
    return path


def _bam(tmp_path, seq, reads, name, samples=("S1",), contig="c"):
    """Sorted, indexed BAM with one read group per sample; reads are (name, start, sequence)."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": contig, "LN": len(seq)}],
              "RG": [{"ID": f"rg{i}", "SM": sm, "PL": "ILLUMINA"} for i, sm in enumerate(samples)]}
    path = tmp_path / name
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for qname, start, rseq in sorted(reads, key=lambda r: (r[1], r[0])):
            a = pysam.AlignedSegment()
            a.query_name, a.reference_id, a.reference_start = qname, 0, start
            a.query_sequence, a.cigarstring, a.mapping_quality, a.flag = rseq, f"{len(rseq)}M", 60, 0
            a.query_qualities = pysam.qualitystring_to_array("I" * len(rseq))
            a.set_tag("RG", "rg0")
            out.write(a)
    pysam.index(str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """.keras files of dvtrain's small_cnn on SHAPE images: random weights ("random"), and
    models whose output is a fixed distribution whatever the image (zero last kernel,
    bias = log p): "het" [0.05, 0.9, 0.05] and "homref" [0.9, 0.06, 0.04]."""
    import keras

    from dvtrain.model import build_model

    out = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(3)
    paths = {}
    for name, probs in (("random", None), ("het", [0.05, 0.9, 0.05]), ("homref", [0.9, 0.06, 0.04])):
        m = build_model(SHAPE)
        if probs is not None:
            head = m.get_layer("genotype")
            k, _ = head.get_weights()
            head.set_weights([np.zeros_like(k), np.log(np.array(probs, dtype=np.float32))])
        paths[name] = out / f"{name}.keras"
        m.save(paths[name])
    for arch in ("read_evidence", "read_sums"):
        paths[f"random_{arch}"] = out / f"random_{arch}.keras"
        build_model(SHAPE, architecture=arch).save(paths[f"random_{arch}"])
    return paths


# ---------------------------------------------------------------- FILTER / FORMAT / multi-allelic
def test_filter_column_follows_deepvariant():
    het = np.array([0.05, 0.9, 0.05])
    assert site_fields(het, 1)[4] == "PASS" and site_fields(het, 1)[0] == "0/1"
    gt, qual, gq, pl, flt = site_fields(np.array([0.9, 0.06, 0.04]), 1)
    assert (gt, flt, gq, pl[0]) == ("0/0", "RefCall", 10, 0)
    # QUAL = -10 log10 0.05 = 13.0: below a qual_filter of 20 a variant call is LowQual ...
    gt, qual, _, _, flt = site_fields(het, 1, qual_filter=20)
    assert (gt, flt) == ("0/1", "LowQual") and qual == pytest.approx(13.0103, abs=1e-3)
    # ... a hom-ref call stays RefCall, and depth 0 is a NoCall whatever the model says
    assert site_fields(np.array([0.9, 0.06, 0.04]), 1, qual_filter=20)[4] == "RefCall"
    assert site_fields(het, 1, depth=0)[0::4] == ("./.", "NoCall")
    assert site_fields(het, 1, depth=3)[4] == "PASS"


def test_format_fields_from_allele_counts():
    lines = [r.line for r in postprocess([
        _pred(10, "A", ["G"], (0,), [0.05, 0.9, 0.05], counts=[8, 5, 3]),
        _pred(20, "C", ["T"], (0,), [0.05, 0.9, 0.05]),  # no dvtrain/allele_counts
        _pred(30, "G", ["A"], (0,), [0.05, 0.9, 0.05], counts=[0, 0, 0]),
    ], {"c": 100})]
    assert all(line.split("\t")[8] == "GT:GQ:DP:AD:VAF:PL" for line in lines)
    flt, s, f = _fields(lines[0])
    assert flt == "PASS" and (s["GT"], s["DP"], s["AD"], s["VAF"]) == ("0/1", "8", "5,3", "0.375")
    assert s["GQ"] == "10" and s["PL"] == "13,0,13" and f[5] == "13.0"
    flt, s, _ = _fields(lines[1])
    assert flt == "PASS" and (s["DP"], s["AD"], s["VAF"]) == (".", ".", ".")
    flt, s, _ = _fields(lines[2])
    assert flt == "NoCall" and s["GT"] == "./." and s["DP"] == "0"


def test_multiallelic_site_takes_the_minimum_over_covering_examples():
    a = np.array([0.1, 0.6, 0.3])  # example of alt 1
    b = np.array([0.2, 0.7, 0.1])  # example of alt 2
    ab = np.array([0.05, 0.15, 0.8])  # example of both alts
    # genotype order 0/0 0/1 1/1 0/2 1/2 2/2; each takes the minimum over the examples
    # holding one of its alleles, of P(number of its alleles in that example)
    raw = [min(0.1, 0.2, 0.05), min(0.6, 0.15), min(0.3, 0.8), min(0.7, 0.15), min(0.6, 0.7, 0.8), min(0.1, 0.8)]
    assert np.allclose(combine_site(2, [((0,), a), ((1,), b), ((0, 1), ab)]), np.array(raw) / sum(raw))
    recs = postprocess([_pred(5, "AT", ["A", "GT"], (0,), a, [10, 2, 5]),
                        _pred(5, "AT", ["A", "GT"], (1,), b, [10, 2, 3]),
                        _pred(5, "AT", ["A", "GT"], (0, 1), ab, [10, 2, 8])], {"c": 100})
    assert len(recs) == 1
    flt, s, f = _fields(recs[0].line)
    assert f[3:5] == ["AT", "A,GT"] and s["GT"] == "1/2" and flt == "PASS"
    assert s["AD"] == "2,5,3" and s["VAF"] == "0.5,0.3" and len(s["PL"].split(",")) == 6
    assert recs[0].end - recs[0].start == 2


def test_records_sort_by_reference_order_then_position():
    recs = postprocess([_pred(50, "A", ["G"], (0,), [0.1, 0.8, 0.1], chrom="b"),
                        _pred(7, "A", ["G"], (0,), [0.1, 0.8, 0.1], chrom="c"),
                        _pred(3, "A", ["G"], (0,), [0.1, 0.8, 0.1], chrom="b")], {"c": 100, "b": 100})
    assert [(r.line.split("\t")[0], r.start) for r in recs] == [("c", 7), ("b", 3), ("b", 50)]
    with pytest.raises(InputError, match="'zz'"):
        postprocess([_pred(1, "A", ["G"], (0,), [0.1, 0.8, 0.1], chrom="zz")], {"c": 100})


# ---------------------------------------------------------------- the numpy engine
@pytest.mark.parametrize("name", ["random", "random_read_evidence", "random_read_sums"])
def test_numpy_engine_matches_keras(models, name):
    import keras

    rng = np.random.default_rng(1)
    heights = [0, 1, 2, 3, 5, 6, 7, 8, 11, 12, 12, 4, 9, 10] * 5  # every height, empty and full images included
    images = [_image(rng, h) for h in heights]
    keras_model = keras.models.load_model(models[name], compile=False)
    want = np.asarray(keras_model.predict_on_batch(np.stack(images)))
    net = NumpyCNN.load(models[name])
    assert net.input_shape == SHAPE
    # the first convolution runs on raw pixels where a Rescaling reads the image (read_sums
    # crops first); the per-read sums are concatenated
    assert (net.fused is not None) == (name != "random_read_sums")
    assert any(op[0] == "concat" for op in net.ops) == (name != "random")
    got = net.predict(images)
    assert np.abs(got - want).max() < 1e-5
    assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))
    # the result of one image does not depend on the others in its batch
    assert np.abs(net.predict(images[7:8]) - got[7:8]).max() < 1e-6


def test_numpy_engine_declines_other_architectures(tmp_path):
    import keras

    inputs = keras.Input(shape=SHAPE, dtype="uint8")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "other.keras")
    from dvtrain.inference import UnsupportedModel, load_engine

    with pytest.raises(UnsupportedModel, match="MaxPooling2D"):
        NumpyCNN.load(tmp_path / "other.keras")
    assert load_engine(tmp_path / "other.keras", "auto").name == "keras"
    with pytest.raises(InputError, match="numpy engine"):
        load_engine(tmp_path / "other.keras", "numpy")


def test_zero_copy_feature_lists_agree_with_decode_example():
    rec = encode_example({"image/encoded": bytes(range(256)) * 3, "image/shape": [3, 16, 16],
                          "dvtrain/allele_counts": [7, 3, 2**40], "neg": [-5], "f": [0.5, 1.5],
                          "variant/encoded": encode_variant("c", 9, "A", ["G", "T"])})
    lists, decoded = feature_lists(rec), decode_example(rec)
    assert set(lists) == set(decoded)
    image = bytes_values(lists["image/encoded"][1])[0]
    assert isinstance(image, memoryview) and image.obj is rec  # call_variants copies no image bytes
    assert bytes(image) == decoded["image/encoded"][0] == bytes(range(256)) * 3
    assert int_values(lists["dvtrain/allele_counts"][1]) == decoded["dvtrain/allele_counts"] == [7, 3, 2**40]
    assert decoded["neg"] == [-5] and decoded["f"] == [0.5, 1.5] and decoded["image/shape"] == [3, 16, 16]
    assert decode_example(rec, keys={"neg"}) == {"neg": [-5]}
    with pytest.raises(ValueError, match="truncated"):
        feature_lists(rec[:-3])


# ---------------------------------------------------------------- whole call: filters, header, sample
@pytest.fixture(scope="module")
def calling_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("calling")
    fa = d / "ref.fa"
    fa.write_text(">c\n" + "ACGT" * 50 + "\n>d\n" + "GATTACA" * 10 + "\n")
    pysam.faidx(str(fa))
    sites = [("c", 10, "A", ["G"], [((0,), 8, (12, 6, 6))]),
             ("c", 40, "A", ["G"], [((0,), 3, (0, 0, 0))]),  # depth 0
             ("c", 70, "ACGT", ["A", "AC"], [((0,), 12, (9, 3, 4)), ((1,), 5, (9, 3, 2)), ((0, 1), 6, (9, 3, 6))]),
             ("d", 5, "T", ["C"], [((0,), 0, None)])]  # no allele counts
    ex = _write_examples(d / "ex.tfrecord-00000-of-00001.gz", sites)
    return {"ref": fa, "examples": str(d / "ex.tfrecord@1.gz"), "dir": d, "path": ex}


def _vcf(path):
    vf = pysam.VariantFile(str(path))
    return vf, list(vf)


@pytest.mark.parametrize("engine", ["numpy", "keras"])
def test_call_filters_end_to_end(models, calling_inputs, tmp_path, engine):
    kw = dict(examples=calling_inputs["examples"], ref=calling_inputs["ref"], engine=engine)
    res = call_variants(CallConfig(checkpoint=models["het"], outfile=tmp_path / "het.vcf.gz", **kw))
    assert res["engine"] == engine and res["num_examples"] == 6
    _, recs = _vcf(tmp_path / "het.vcf.gz")
    assert [(r.chrom, r.pos, list(r.filter)) for r in recs] == [
        ("c", 11, ["PASS"]), ("c", 41, ["NoCall"]), ("c", 71, ["PASS"]), ("d", 6, ["PASS"])]
    assert recs[1].samples[0]["GT"] == (None, None)
    assert recs[0].samples[0]["AD"] == (6, 6) and recs[0].samples[0]["DP"] == 12
    assert recs[3].samples[0]["DP"] is None and recs[3].samples[0]["AD"] == (None,)
    assert res["filters"] == {"PASS": 3, "RefCall": 0, "LowQual": 0, "NoCall": 1} and res["num_variants"] == 3
    call_variants(CallConfig(checkpoint=models["het"], outfile=tmp_path / "lq.vcf.gz", qual_filter=20, **kw))
    # the 1/2-looking multi-allelic site: P(0/1) = 0.9 / 1.95 after combining, QUAL 15.9
    assert [list(r.filter) for r in _vcf(tmp_path / "lq.vcf.gz")[1]] == [["LowQual"], ["NoCall"], ["LowQual"], ["LowQual"]]
    call_variants(CallConfig(checkpoint=models["homref"], outfile=tmp_path / "ref.vcf.gz", **kw))
    recs = _vcf(tmp_path / "ref.vcf.gz")[1]
    assert [list(r.filter) for r in recs] == [["RefCall"], ["NoCall"], ["RefCall"], ["RefCall"]]
    assert recs[0].samples[0]["GT"] == (0, 0) and recs[0].qual == pytest.approx(0.5, abs=0.05)


def test_header_contigs_sample_from_read_groups_and_config(models, calling_inputs, tmp_path):
    d = calling_inputs["dir"]
    seq = "ACGT" * 50
    bam = _bam(d, seq, [("r1", 0, seq[:50])], "one.bam", samples=("NA24385",))
    cfg = CallConfig(examples=calling_inputs["examples"], ref=calling_inputs["ref"], checkpoint=models["het"],
                     outfile=tmp_path / "a.vcf.gz", reads=[bam])
    res = call_variants(cfg)
    vf, _ = _vcf(tmp_path / "a.vcf.gz")
    assert list(vf.header.samples) == ["NA24385"] == [res["sample_name"]]
    assert {c: vf.header.contigs[c].length for c in vf.header.contigs} == {"c": 200, "d": 70}
    assert set(vf.header.filters) == {"PASS", "RefCall", "LowQual", "NoCall"}
    assert {"GT", "GQ", "DP", "AD", "VAF", "PL"} <= set(vf.header.formats)
    text = gzip.open(tmp_path / "a.vcf.gz", "rt").read()
    assert text.startswith("##fileformat=VCFv4.2\n")
    meta = next(line for line in text.splitlines() if line.startswith("##dvtrain_config="))
    recorded = json.loads(meta.split("=", 1)[1])
    assert recorded["checkpoint"] == models["het"].name and recorded["reads"] == [bam.name]
    assert "outfile" not in recorded and str(tmp_path) not in text  # where files lie is not part of what it says
    # an explicit sample name wins; two samples in the read groups are an error
    call_variants(cfg.model_copy(update={"sample_name": "mine", "outfile": tmp_path / "b.vcf.gz"}))
    assert list(pysam.VariantFile(str(tmp_path / "b.vcf.gz")).header.samples) == ["mine"]
    two = _bam(d, seq, [("r1", 0, seq[:50])], "two.bam", samples=("NA24385", "NA12878"))
    with pytest.raises(InputError, match="two samples"):
        call_variants(cfg.model_copy(update={"reads": [two], "outfile": tmp_path / "c.vcf.gz"}))
    other = _bam(d, seq, [("r1", 0, seq[:50])], "other.bam", samples=("NA12878",))
    with pytest.raises(InputError, match="other.bam.*two samples"):
        call_variants(cfg.model_copy(update={"reads": [bam, other], "outfile": tmp_path / "c.vcf.gz"}))
    assert not (tmp_path / "c.vcf.gz").exists()
    # no read group SM and no name: SAMPLE
    call_variants(cfg.model_copy(update={"reads": [], "outfile": tmp_path / "e.vcf.gz"}))
    assert list(pysam.VariantFile(str(tmp_path / "e.vcf.gz")).header.samples) == ["SAMPLE"]


def test_cli_records_its_command_line_and_reports_bad_read_groups(models, calling_inputs, tmp_path):
    d = calling_inputs["dir"]
    args = ["--examples", calling_inputs["examples"], "--checkpoint", models["het"], "--ref", calling_inputs["ref"],
            "--outfile", tmp_path / "cli.vcf.gz", "--qual_filter", "2.5"]
    proc = subprocess.run([sys.executable, "-m", "dvtrain.cli", "call", *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = gzip.open(tmp_path / "cli.vcf.gz", "rt").read()
    cmd = [line for line in text.splitlines() if line.startswith("##dvtrain_command=")]
    assert cmd == [f"##dvtrain_command=dvtrain call --examples {calling_inputs['examples']} --checkpoint {models['het']} "
                   f"--ref {calling_inputs['ref']} --outfile {tmp_path / 'cli.vcf.gz'} --qual_filter 2.5"]
    assert 'LowQual,Description="Variant call with QUAL below the qual_filter threshold (2.5)"' in text
    seq = "ACGT" * 50
    two = _bam(d, seq, [("r1", 0, seq[:50])], "cli-two.bam", samples=("A", "B"))
    proc = subprocess.run([sys.executable, "-m", "dvtrain.cli", "call", *map(str, args), "--reads", str(two)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"dvtrain: error: {two}: read groups name two samples, 'A' and 'B'; "
                                                "give sample_name to choose"]


def test_same_inputs_same_bytes_whatever_the_worker_count(models, calling_inputs, tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    sites = [("c", p, "A", ["G"], [((0,), 1 + p % 12, (9, 4, 5))]) for p in range(0, 190, 7)]
    _write_examples(d / "ex.tfrecord-00000-of-00002.gz", sites[::2], seed=1)
    _write_examples(d / "ex.tfrecord-00001-of-00002.gz", sites[1::2], seed=2)
    outs = []
    for i, threads in enumerate((1, 2, 2)):
        out = tmp_path / f"run{i}.vcf.gz"
        res = call_variants(CallConfig(examples=str(d / "ex.tfrecord@2.gz"), ref=calling_inputs["ref"],
                                       checkpoint=models["random"], outfile=out, threads=threads))
        outs.append((out.read_bytes(), (tmp_path / f"run{i}.vcf.gz.tbi").read_bytes()))
    assert res["num_records"] == len(sites) and outs[0] == outs[1] == outs[2]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_call_rejects_broken_inputs(models, calling_inputs, tmp_path):
    kw = dict(examples=calling_inputs["examples"], ref=calling_inputs["ref"], outfile=tmp_path / "x.vcf.gz")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a zip")
    with pytest.raises(InputError, match="junk.keras"):
        call_variants(CallConfig(checkpoint=junk, **kw))
    wide = _write_examples(tmp_path / "w.tfrecord-00000-of-00001.gz", [("c", 1, "A", ["G"], [((0,), 2, None)])],
                           shape=(12, 23, 7))
    with pytest.raises(InputError, match=r"image shape \[12, 23, 7\] does not fit the model"):
        call_variants(CallConfig(checkpoint=models["het"], **dict(kw, examples=str(wide))))
    with pytest.raises(InputError, match="make_examples --gvcf"):
        call_variants(CallConfig(checkpoint=models["het"], gvcf_outfile=tmp_path / "g.g.vcf.gz", **kw))
    assert not (tmp_path / "x.vcf.gz").exists()


# ---------------------------------------------------------------- gVCF
def test_reference_confidence_model():
    gq, pl = reference_confidence(np.array([0, 1, 2, 4, 5, 30, 3]), np.array([0, 1, 2, 4, 5, 30, 4]))
    # 1 read: P(0/0) = 1 / (1 + 0.5 + 0.001) after the per-read likelihoods 0.999, 0.5, 0.001
    assert gq[1] == math.floor(-10 * math.log10(1 - 0.999 / (0.999 + 0.5 + 0.001)))
    assert list(gq[:6]) == [1, 4, 6, 12, 15, 90]  # no reads: hom-ref is 1 of 3 equally likely genotypes
    assert list(pl[4]) == [0, 15, 150] and list(pl[0]) == [0, 0, 0] and list(pl[5]) == [0, 90, 900]
    assert gq[6] == 0 and pl[6][0] > 0  # one of four reads differs: het fits better than hom-ref


def test_blocks_join_across_partitions_and_are_cut_around_calls():
    # two blocks touching at 10000 in one GQ bin join; GQ and MIN_DP are the minimum
    blocks = [(0, 9990, 10000, 13, 4, "0,13,130"), (0, 10000, 10020, 12, 5, "0,12,120"),
              (0, 10020, 10030, 16, 5, "0,16,160"), (1, 0, 5, 13, 4, "0,13,130")]
    merged = merge_blocks(blocks, 5)
    assert merged == [(0, 9990, 10020, 12, 4, "0,12,120"), (0, 10020, 10030, 16, 5, "0,16,160"),
                      (1, 0, 5, 13, 4, "0,13,130")]
    from dvtrain.call import CallRecord

    calls = [CallRecord(0, 9995, 9996, "PASS", ""), CallRecord(0, 10018, 10023, "PASS", ""),  # a deletion's REF
             CallRecord(1, 4, 5, "RefCall", "")]
    assert [b[:3] for b in cut_blocks(merged, calls)] == [(0, 9990, 9995), (0, 9996, 10018), (0, 10023, 10030),
                                                          (1, 0, 4)]


def test_gvcf_on_a_hand_built_bam(models, tmp_path):
    fa, seq = write_ref(tmp_path, n=600, seed=5)
    alt = "A" if seq[150] != "A" else "C"
    snp = seq[:150] + alt + seq[151:]
    reads = [(f"v{i}", 100, snp[100:200]) for i in range(3)] + [("r0", 100, seq[100:200]),  # 4 reads, SNP in 3
                                                                  ("r1", 180, seq[180:260])]  # then 5, then 1 read
    bam = _bam(tmp_path, seq, reads, "g.bam", samples=("G1",))
    cfg = MakeExamplesConfig(mode="calling", ref=fa, reads=[bam], examples=str(tmp_path / "g.tfrecord@1.gz"),
                             gvcf=True, pileup_image_height=SHAPE[0], pileup_image_width=SHAPE[1])
    me = make_examples(cfg)
    assert me["num_examples"] == 1 and Path(me["gvcf_blocks"]) == gvcf_blocks_path(me["path"])
    plain = make_examples(cfg.model_copy(update={"gvcf": False, "examples": str(tmp_path / "p.tfrecord@1.gz")}))
    assert Path(plain["path"]).read_bytes() == Path(me["path"]).read_bytes()  # --gvcf leaves the examples alone
    assert not gvcf_blocks_path(plain["path"]).exists()
    res = call_variants(CallConfig(examples=me["path"], ref=fa, checkpoint=models["het"], reads=[bam],
                                   outfile=tmp_path / "g.vcf.gz", gvcf_outfile=tmp_path / "g.g.vcf.gz"))
    vf, recs = _vcf(tmp_path / "g.g.vcf.gz")
    assert list(vf.header.samples) == ["G1"] and "MIN_DP" in vf.header.formats and "END" in vf.header.info
    rows = [(r.pos, r.stop, r.alts, r.samples[0].get("MIN_DP"), r.samples[0]["GQ"], list(r.filter)) for r in recs]
    gq4, gq5, gq1 = (int(reference_confidence(np.array([n]), np.array([n]))[0][0]) for n in (4, 5, 1))
    assert rows == [
        (101, 150, ("<*>",), 4, gq4, []),  # 1-based: positions 101-150, 4 reads
        (151, 151, (alt,), None, 10, ["PASS"]),  # the SNP, a normal call
        (152, 180, ("<*>",), 4, gq4, []),
        (181, 200, ("<*>",), 5, gq5, []),  # 5 reads: GQ 15, another bin than 4 reads' 12
        (201, 260, ("<*>",), 1, gq1, []),
    ]
    assert recs[0].ref == seq[100] and "\tEND=150\t" in str(recs[0]) and recs[0].qual == 0
    assert recs[0].samples[0]["GT"] == (0, 0) and recs[0].samples[0]["PL"] == (0, gq4, 10 * gq4)
    assert res["num_ref_blocks"] == 4 and res["gvcf_outfile"] == str(tmp_path / "g.g.vcf.gz")
    assert list(vf.fetch("c", 170, 175))[0].pos == 152  # indexed
    # the VCF has just the call; the gVCF is deterministic
    assert [r.pos for r in _vcf(tmp_path / "g.vcf.gz")[1]] == [151]
    first = (tmp_path / "g.g.vcf.gz").read_bytes()
    call_variants(CallConfig(examples=me["path"], ref=fa, checkpoint=models["het"], reads=[bam],
                             outfile=tmp_path / "g2.vcf.gz", gvcf_outfile=tmp_path / "g2.g.vcf.gz"))
    assert (tmp_path / "g2.g.vcf.gz").read_bytes() == first


def test_gvcf_needs_calling_mode(tmp_path):
    with pytest.raises(ValueError, match=r"gvcf \(make-examples --gvcf_blocks\) needs --mode calling"):
        MakeExamplesConfig(mode="training", ref=tmp_path / "r.fa", reads=[tmp_path / "r.bam"], examples="x@1.gz",
                           truth_variants=tmp_path / "t.vcf", confident_regions=tmp_path / "c.bed", gvcf=True)


def test_gvcf_does_not_depend_on_sharding(tiny, tmp_path):
    """Real reads over 12.4 kb (two 10 kb partitions): 1 or 2 shards give the same gVCF
    records, blocks joined across the partition (and shard) boundary."""
    import keras

    from dvtrain.model import build_model

    keras.utils.set_random_seed(1)
    model = tmp_path / "m.keras"
    build_model([100, 221, 7]).save(model)
    bodies = []
    for n in (1, 2):
        spec = str(tmp_path / f"s{n}" / f"e.tfrecord@{n}.gz")
        for t in range(n):
            make_examples(MakeExamplesConfig(mode="calling", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                                             examples=spec, task=t, gvcf=True))
        res = call_variants(CallConfig(examples=spec, ref=tiny / "q.fa", checkpoint=model, outfile=tmp_path / f"{n}.vcf.gz",
                                       gvcf_outfile=tmp_path / f"{n}.g.vcf.gz"))
        bodies.append([line for line in gzip.open(tmp_path / f"{n}.g.vcf.gz", "rt").read().splitlines()
                       if not line.startswith("#")])
    assert bodies[0] == bodies[1] and res["num_records"] == 40
    recs = list(pysam.VariantFile(str(tmp_path / "2.g.vcf.gz")))
    blocks = [r for r in recs if r.alts == ("<*>",)]
    assert len(blocks) + 40 == len(recs) and len(blocks) == res["num_ref_blocks"]
    assert any(r.start < 10_000 < r.stop for r in blocks)  # a block spans the partition boundary
    assert [r.start for r in recs] == sorted(r.start for r in recs)
    in_block, in_call = np.zeros(12356, dtype=int), np.zeros(12356, dtype=int)
    for r in recs:  # blocks overlap nothing (two calls may overlap each other)
        (in_block if r.alts == ("<*>",) else in_call)[r.start:r.stop] += 1
    assert in_block.max() == 1 and not (in_block & (in_call > 0)).any() and in_call.max() >= 1
