"""make_examples options and outputs beyond the basics: multi-allelic sites, read filters,
downsampling, region exclusion, random reference sites, DeepVariant's feature spec."""

from __future__ import annotations

import numpy as np
import pysam
import pytest

from dvtrain.call import combine_site, genotypes, site_fields
from dvtrain.config import MakeExamplesConfig
from dvtrain.example_proto import decode_alt_allele_indices, decode_example, decode_variant
from dvtrain.fileio import read_tfrecords
from dvtrain.make_examples import make_examples, snp_lod

from bam_helpers import write_bam, write_ref


def _ref(tmp_path, n=800, seed=3):
    return write_ref(tmp_path, n, seed)


_bam = write_bam


def _with(seq, start, pos, alt, length=100):
    r = list(seq[start : start + length])
    r[pos - start] = alt
    return "".join(r)


def _examples(path):
    return [decode_example(r) for r in read_tfrecords(path)]


def _run(tmp_path, fa, bam, name="e", **kw):
    cfg = dict(mode="calling", ref=fa, reads=[bam], examples=str(tmp_path / f"{name}.tfrecord@1.gz"))
    cfg.update(kw)
    res = make_examples(MakeExamplesConfig(**cfg))
    return res, _examples(res["path"])


def _sites(exs):
    out = []
    for e in exs:
        v = decode_variant(e["variant/encoded"][0])
        out.append((v["start"], v["reference_bases"], tuple(v["alternate_bases"]),
                    tuple(decode_alt_allele_indices(e["alt_allele_indices/encoded"][0]))))
    return out


def _training(tmp_path, length, records=(), confident_end=None):
    """make_examples training-mode arguments: a truth VCF on contig c with ``records``
    ((1-based POS, REF, ALT, GT), all PASS) and a confident BED c:0-confident_end."""
    truth = tmp_path / "t.vcf"
    truth.write_text(f"##fileformat=VCFv4.2\n##contig=<ID=c,length={length}>\n"
                     "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
                     + "".join(f"c\t{p}\t.\t{r}\t{a}\t50\tPASS\t.\tGT\t{g}\n" for p, r, a, g in records))
    bed = tmp_path / "conf.bed"
    bed.write_text(f"c\t0\t{confident_end or length}\n")
    return dict(mode="training", truth_variants=truth, confident_regions=bed)


def _others(base):
    return [b for b in "ACGT" if b != base]


def test_multiallelic_site_gives_one_example_per_alt_and_per_pair(tmp_path):
    fa, seq = _ref(tmp_path)
    pos = 400
    a1, a2 = _others(seq[pos])[:2]
    reads = [(f"r{i}", 350 + i, _with(seq, 350 + i, pos, a1 if i < 5 else a2 if i < 10 else seq[pos]), "100M", 0)
             for i in range(14)]
    bam = _bam(tmp_path, seq, reads)
    res, exs = _run(tmp_path, fa, bam)
    alts = tuple(sorted((a1, a2)))
    assert _sites(exs) == [(pos, seq[pos], alts, (0,)), (pos, seq[pos], alts, (1,)), (pos, seq[pos], alts, (0, 1))]
    assert res["counts"]["multiallelic_sites"] == 1
    # the allele counts of a pair example add up its alts
    assert [e["dvtrain/allele_counts"][2] for e in exs] == [5, 5, 10]


def test_skipped_read_flags(tmp_path):
    fa, seq = _ref(tmp_path)
    pos = 400
    alt = _others(seq[pos])[0]
    good = [(f"ref{i}", 350 + i, seq[350 + i : 450 + i], "100M", 0) for i in range(6)]
    # 0x100 secondary, 0x200 QC fail, 0x400 duplicate, 0x800 supplementary: never counted
    bad = [(f"bad{f}-{i}", 352 + i, _with(seq, 352 + i, pos, alt), "100M", f)
           for f in (0x100, 0x200, 0x400, 0x800) for i in range(3)]
    bam = _bam(tmp_path, seq, good + bad)
    res, exs = _run(tmp_path, fa, bam)
    assert exs == []
    bam2 = _bam(tmp_path, seq, good + [(f"alt{i}", 352 + i, _with(seq, 352 + i, pos, alt), "100M", 0x10)
                                       for i in range(3)], name="r2.bam")  # reverse strand: counted
    _, exs = _run(tmp_path, fa, bam2, name="e2")
    assert [s[0] for s in _sites(exs)] == [pos]


def test_downsample_fraction_is_seeded_and_by_read_name(tmp_path):
    fa, seq = _ref(tmp_path, n=3000)
    reads = [(f"r{i}", s, seq[s : s + 100], "100M", 0) for i, s in enumerate(range(0, 2900, 5))]
    bam = _bam(tmp_path, seq, reads)
    full, _ = _run(tmp_path, fa, bam, name="full")
    half, _ = _run(tmp_path, fa, bam, name="half", downsample_fraction=0.5)
    again, _ = _run(tmp_path, fa, bam, name="again", downsample_fraction=0.5)
    other, _ = _run(tmp_path, fa, bam, name="other", downsample_fraction=0.5, seed=7)
    frac = half["counts"]["reads_kept"] / half["counts"]["reads"]
    assert full["counts"]["reads_kept"] == full["counts"]["reads"]
    assert 0.4 < frac < 0.6
    assert half["counts"] == again["counts"]
    assert other["counts"]["reads_kept"] != half["counts"]["reads_kept"]


def test_exclude_regions_and_bed_regions(tmp_path):
    fa, seq = _ref(tmp_path, n=3000)
    snps = [500, 1500, 2500]
    reads = []
    for p in snps:
        alt = _others(seq[p])[0]
        reads += [(f"r{p}-{i}", p - 50 + i, _with(seq, p - 50 + i, p, alt), "100M", 0) for i in range(6)]
    bam = _bam(tmp_path, seq, reads)
    _, exs = _run(tmp_path, fa, bam, name="all")
    assert [s[0] for s in _sites(exs)] == snps
    bed = tmp_path / "x.bed"
    bed.write_text("c\t1400\t1600\n")
    _, exs = _run(tmp_path, fa, bam, name="ex", exclude_regions=[str(bed), "c:2401-2600"])
    assert [s[0] for s in _sites(exs)] == [500]
    keep = tmp_path / "keep.bed"
    keep.write_text("c\t0\t1000\nc\t400\t1700\n")  # overlapping intervals: no duplicate examples
    _, exs = _run(tmp_path, fa, bam, name="bed", regions=[str(keep)])
    assert [s[0] for s in _sites(exs)] == [500, 1500]


def test_training_random_emit_ref_sites(tmp_path):
    fa, seq = _ref(tmp_path, n=3000)
    reads = [(f"r{i}", s, seq[s : s + 100], "100M", 0) for i, s in enumerate(range(0, 2900, 10))]
    bam = _bam(tmp_path, seq, reads)
    # one truth het that no read carries (a truth set with none in the confident regions is refused)
    common = _training(tmp_path, 3000, [(1501, seq[1500], _others(seq[1500])[0], "0/1")], confident_end=2000)
    none, exs0 = _run(tmp_path, fa, bam, name="n", **common)
    assert exs0 == []
    res, exs = _run(tmp_path, fa, bam, name="r", training_random_emit_ref_sites=0.05, **common)
    n = res["counts"]["ref_sites"]
    assert 60 < n < 140  # ~5 % of the ~2,000 covered confident positions
    assert len(exs) == n and all(e["label"] == [0] and e["variant_type"] == [0] for e in exs)
    assert all(decode_variant(e["variant/encoded"][0])["alternate_bases"] == ["<*>"] for e in exs)
    assert all(decode_variant(e["variant/encoded"][0])["start"] < 2000 for e in exs)
    res2, _ = _run(tmp_path, fa, bam, name="r2", training_random_emit_ref_sites=0.05, **common)
    assert (tmp_path / "r.tfrecord-00000-of-00001.gz").read_bytes() == (tmp_path / "r2.tfrecord-00000-of-00001.gz").read_bytes()


def test_examples_parse_with_deepvariant_feature_spec(tmp_path):
    """The TFRecords parse with DeepVariant's own feature spec (names and dtypes)."""
    tf = pytest.importorskip("tensorflow", reason="TensorFlow is needed to parse with tf.io")
    fa, seq = _ref(tmp_path)
    pos = 400
    alt = _others(seq[pos])[0]
    bam = _bam(tmp_path, seq, [(f"r{i}", 350 + i, _with(seq, 350 + i, pos, alt), "100M", 0) for i in range(5)])
    res, _ = _run(tmp_path, fa, bam, **_training(tmp_path, 800, [(pos + 1, seq[pos], alt, "1/1")]))
    spec = {
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/shape": tf.io.FixedLenFeature((3,), tf.int64),
        "label": tf.io.FixedLenFeature((1,), tf.int64),
        "locus": tf.io.FixedLenFeature((), tf.string),
        "variant/encoded": tf.io.FixedLenFeature((), tf.string),
        "alt_allele_indices/encoded": tf.io.FixedLenFeature((), tf.string),
        "variant_type": tf.io.FixedLenFeature((1,), tf.int64),
    }
    ds = tf.data.TFRecordDataset(res["path"], compression_type="GZIP")
    parsed = [tf.io.parse_single_example(r, spec) for r in ds]
    assert len(parsed) == 1
    p = parsed[0]
    assert list(p["image/shape"].numpy()) == [100, 221, 7] and int(p["label"][0]) == 2
    img = tf.io.decode_raw(p["image/encoded"], tf.uint8).numpy()
    assert img.size == 100 * 221 * 7
    assert p["locus"].numpy() == f"c:{pos + 1}-{pos + 1}".encode()


def test_postprocess_combines_multiallelic_predictions():
    assert genotypes(2) == [(0, 0), (0, 1), (1, 1), (0, 2), (1, 2), (2, 2)]
    # biallelic: the example's own distribution
    p = combine_site(1, [((0,), np.array([0.1, 0.7, 0.2]))])
    assert np.allclose(p, [0.1, 0.7, 0.2])
    # a confident 1/2 site: each single-alt image says het, the pair image says hom-alt
    preds = [((0,), np.array([0.02, 0.96, 0.02])), ((1,), np.array([0.03, 0.95, 0.02])),
             ((0, 1), np.array([0.01, 0.01, 0.98]))]
    p = combine_site(2, preds)
    assert p.sum() == pytest.approx(1.0)
    assert genotypes(2)[int(np.argmax(p))] == (1, 2)
    gt, qual, gq, pl, flt = site_fields(p, 2)
    assert gt == "1/2" and flt == "PASS" and len(pl) == 6 and min(pl) == 0 and pl[4] == 0
    # only the first alt is real: 0/1
    preds = [((0,), np.array([0.02, 0.96, 0.02])), ((1,), np.array([0.97, 0.02, 0.01])),
             ((0, 1), np.array([0.02, 0.96, 0.02]))]
    assert site_fields(combine_site(2, preds), 2)[0] == "0/1"


def test_calling_examples_at_every_giab_position(tiny_stage, tmp_path):
    """Real HiSeqX reads: calling mode makes an example at each of the 14 GIAB truth sites."""
    cfg = MakeExamplesConfig(examples=str(tmp_path / "call.tfrecord@2.gz"), task=0, **tiny_stage["calling"])
    starts = set()
    for task in range(2):
        res = make_examples(cfg.model_copy(update={"task": task}))
        starts |= {decode_variant(e["variant/encoded"][0])["start"] + 1 for e in _examples(res["path"])}
    truth = tiny_stage["training"]["truth_variants"]
    giab = {int(line.split("\t")[1]) for line in truth.read_text().splitlines() if not line.startswith("#")}
    assert len(giab) == 14 and giab <= starts


def test_labels_follow_haplotypes_when_truth_merges_two_changes(tmp_path):
    """The reads carry a homopolymer deletion and a SNP right after the run; the truth
    writes both as one complex record (AG -> C), which no key lookup or left-alignment
    turns into the reads' two candidates. The labeler labels both hom (2) and reports the
    truth event matched in labeling_metrics.json."""
    import json

    fa, seq = _ref(tmp_path)
    seq = seq[:399] + "TAAAAAG" + seq[406:]  # homopolymer A at 400..404, G at 405
    fa.write_text(">c\n" + seq + "\n")
    pysam.faidx(str(fa))
    alt_g = "C" if seq[405] != "C" else "T"
    reads = []
    for i in range(8):  # hom: one A deleted, G at 405 changed
        s = 340 + i
        rseq = seq[s:402] + seq[403:405] + alt_g + seq[406 : s + 101]
        reads.append((f"d{i}", s, rseq, f"{402 - s}M1D{s - 302}M", 0))
    bam = _bam(tmp_path, seq, reads)
    res, exs = _run(tmp_path, fa, bam, **_training(tmp_path, 800, [(405, seq[404:406], alt_g, "1|1")]))
    assert [s[:3] for s in _sites(exs)] == [(399, "TA", ("T",)), (405, seq[405], (alt_g,))]
    assert [e["label"] for e in exs] == [[2], [2]]
    metrics = json.loads(open(res["labeling_metrics"]).read())
    assert metrics["truth_variants"] == 1 and metrics["truth_matched"] == 1 and metrics["truth_unmatched"] == 0
    assert metrics["candidates_per_class"] == [0, 0, 2]


def test_insertion_anchor_takes_the_first_inserted_base_quality(tmp_path):
    """dvtrain.reads records the first inserted base's quality; the image draws it at
    the insertion's anchor column (DeepVariant's rule, docs/pileup.md)."""
    from dvtrain.pileup import BQ_PIXEL
    from dvtrain.reads import RefCache, batch_from_alignments

    fa, seq = _ref(tmp_path)
    rseq = seq[350:400] + "GT" + seq[400:448]
    header = {"HD": {"VN": "1.6"}, "SQ": [{"SN": "c", "LN": len(seq)}]}
    a = pysam.AlignedSegment(pysam.AlignmentHeader.from_dict(header))
    a.query_name, a.reference_id, a.reference_start, a.mapping_quality = "i", 0, 350, 60
    a.query_sequence, a.cigarstring = rseq, "50M2I48M"
    quals = [30] * 100
    quals[50] = 12  # the first inserted base
    a.query_qualities = pysam.qualitystring_to_array("".join(chr(q + 33) for q in quals))
    batch = batch_from_alignments([a], RefCache(pysam.FastaFile(str(fa)), "c"), {})
    assert batch.ins_row.tolist() == [0] and batch.ins_pos.tolist() == [399] and batch.ins_qual.tolist() == [12]
    assert batch.rpos.tolist() == list(range(350, 448)) and batch.off.tolist() == [0, 98]
    assert BQ_PIXEL[12] == 254 * 12 // 40


def test_insertion_consensus_picks_the_most_common_then_votes_base_by_base():
    from dvtrain.make_examples import insertion_consensus
    seq = "GGGGC" + "ATTA" + "CCCC"  # anchor C at 4; an insertion there duplicating ATTA reads ATTA
    assert insertion_consensus({(4, "C", "CATTA"): 2, (4, "C", "CAGTA"): 1}, seq) == (4, "C", "CATTA")
    # three reads, three sequences: the majority of each inserted base
    assert insertion_consensus({(4, "C", "CATGA"): 1, (4, "C", "CAGTA"): 1, (4, "C", "CTTTA"): 1},
                               seq) == (4, "C", "CATTA")
    # two reads: a tied base goes to the reference base the insertion would duplicate
    assert insertion_consensus({(4, "C", "CATGA"): 1, (4, "C", "CAGTA"): 1}, seq) == (4, "C", "CATTA")
    assert insertion_consensus({(4, "C", "CGGAA"): 1, (4, "C", "CCCAA"): 1}, seq) == (4, "C", "CCCAA")  # else ACGT order


def test_insertions_of_one_length_with_different_bases_form_one_candidate(tmp_path):
    fa, seq = _ref(tmp_path)
    pos = 400
    last = _others(seq[pos])[0]  # the inserted bases may not end in the anchor's base (left-aligned)
    first = [b for b in "ACGT" if b != seq[pos + 1]]
    reads = [(f"r{i}", 350, seq[350:pos + 1] + ins + seq[pos + 1:450], "51M3I49M", 0)
             for i, ins in enumerate([first[0] + seq[pos + 2] + last, first[1] + seq[pos + 2] + last])]
    reads += [(f"s{i}", 340 + i, seq[340 + i:440 + i], "100M", 0) for i in range(4)]
    bam = _bam(tmp_path, seq, reads)
    res, exs = _run(tmp_path, fa, bam)
    tie = seq[pos] + first[0] + seq[pos + 2] + last  # the tied first base goes to ACGT order
    assert [s[:3] for s in _sites(exs)] == [(pos, seq[pos], (tie,))]
    assert exs[0]["dvtrain/allele_counts"][2] == 2
    res, exs = _run(tmp_path, fa, bam, name="off", merge_insertion_alleles=False)
    assert exs == []  # one read each: under vsc_min_count_indels


def test_snp_lod_is_the_het_vs_hom_ref_likelihood_ratio():
    # three reads, one alt at Q30: het 0.5^3; hom-ref (e/3) * 1 * 1 with e = 10^-3
    expected = np.log10(0.5 ** 3) - np.log10(1e-3 / 3)
    got = snp_lod(np.array([[1]]), np.array([[3.0]]), np.array([3]))
    assert got[0, 0] == pytest.approx(expected)
    # two alt reads (Q20 + Q40) of eight
    expected = np.log10(0.5 ** 8) - np.log10(1e-2 / 3) - np.log10(1e-4 / 3)
    assert snp_lod(np.array([[2]]), np.array([[6.0]]), np.array([8]))[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize("depth, alt_bq, threshold, kept", [
    (3, 40, 2.0, True),     # 4 + 0.48 - 0.90 = 3.57
    (3, 15, 2.0, False),    # 1.5 + 0.48 - 0.90 = 1.07: a low-quality base
    (3, 15, None, True),    # no filter: DeepVariant's rules only
    (8, 40, 2.0, True),     # 4.48 - 2.41 = 2.07
    (8, 40, 2.5, False),    # one read of eight, however good
])
def test_vsc_min_snp_lod_filters_snp_candidates_by_base_quality_and_depth(tmp_path, depth, alt_bq, threshold, kept):
    fa, seq = _ref(tmp_path)
    pos = 400
    alt = _others(seq[pos])[0]
    reads = [("alt", 350, _with(seq, 350, pos, alt), "100M", 0, 60, alt_bq)]
    reads += [(f"ref{i}", 340 + i, seq[340 + i:440 + i], "100M", 0) for i in range(depth - 1)]
    bam = _bam(tmp_path, seq, reads)
    res, exs = _run(tmp_path, fa, bam, vsc_min_count_snps=1, vsc_min_snp_lod=threshold)
    assert [s[:3] for s in _sites(exs)] == ([(pos, seq[pos], (alt,))] if kept else [])
