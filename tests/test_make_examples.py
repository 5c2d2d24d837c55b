"""make_examples on real NA12878 reads and on hand-built BAMs with known allele counts."""

from __future__ import annotations

import json

import numpy as np
import pysam
import pytest

from dvtrain.config import MakeExamplesConfig
from dvtrain.errors import InputError
from dvtrain.example_proto import decode_alt_allele_indices, decode_example, decode_variant
from dvtrain.fileio import read_tfrecords
from dvtrain.make_examples import make_examples

from bam_helpers import write_bam, write_ref


def _examples(path):
    return [decode_example(r) for r in read_tfrecords(path)]


def _image(ex):
    return np.frombuffer(ex["image/encoded"][0], np.uint8).reshape(ex["image/shape"])


@pytest.fixture(scope="module")
def tiny_training(tiny_stage, tmp_path_factory):
    out = tmp_path_factory.mktemp("me")
    cfg = MakeExamplesConfig(examples=str(out / "train.tfrecord@1.gz"), **tiny_stage["training"])
    return cfg, make_examples(cfg)


def test_every_giab_variant_becomes_a_labelled_candidate(tiny_training):
    cfg, res = tiny_training
    exs = _examples(res["path"])
    assert res["num_examples"] == len(exs) > 14
    labelled = {decode_variant(e["variant/encoded"][0])["start"] + 1 for e in exs if e["label"] == [1]}
    truth = {int(l.split("\t")[1]) for l in (cfg.truth_variants.read_text().splitlines()) if not l.startswith("#")}
    assert labelled == truth  # all 14 het SNPs, label 1 each
    assert res["class_counts"] == [len(exs) - 14, 14, 0]
    info = json.loads(open(res["example_info"]).read())
    assert info["shape"] == [100, 221, 7] and info["channels"] == [1, 2, 3, 4, 5, 6, 19]


def test_pileup_channels_follow_deepvariant(tiny_training, tiny):
    _, res = tiny_training
    ref = pysam.FastaFile(str(tiny / "q.fa")).fetch("q")
    ex = next(e for e in _examples(res["path"]) if e["label"] == [1] and decode_variant(e["variant/encoded"][0])["start"] > 200)
    var = decode_variant(ex["variant/encoded"][0])
    img = _image(ex)
    assert img.shape == (100, 221, 7)
    assert decode_alt_allele_indices(ex["alt_allele_indices/encoded"][0]) == [0]
    assert ex["variant_type"] == [1]
    p = var["start"]
    # reference band: rows 0-4 carry the reference bases
    values = {"A": 250, "G": 180, "T": 100, "C": 30}
    assert [int(v) for v in img[0, :, 0]] == [values.get(b, 0) for b in ref[p - 110 : p + 111]]
    centre = img[5:, 110, :]
    covered = centre[:, 3] > 0
    n = int(covered.sum())
    assert 20 < n <= 95
    supports = centre[covered, 4]
    assert set(np.unique(supports)) == {152, 254}  # het: some reads carry the alt, some not
    alt_rows = centre[covered][supports == 254]
    assert (alt_rows[:, 0] == values[var["alternate_bases"][0]]).all()
    assert (alt_rows[:, 5] == 254).all()  # alt base differs from the reference
    assert set(np.unique(centre[covered, 3])) <= {70, 240}
    assert centre[covered, 2].max() <= 254 and centre[covered, 1].max() <= 254
    assert (centre[covered, 6] > 0).any()  # insert_size channel present


def test_shards_partition_the_work_and_are_deterministic(tiny, tmp_path):
    base = dict(mode="calling", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"])
    one = make_examples(MakeExamplesConfig(examples=str(tmp_path / "one.tfrecord@1.gz"), **base))
    key = lambda e: (e["locus"][0], e["alt_allele_indices/encoded"][0])  # noqa: E731 (multi-allelic sites share a locus)
    loci_one = [key(e) for e in _examples(one["path"])]
    loci_two = []
    for task in range(2):
        r = make_examples(MakeExamplesConfig(examples=str(tmp_path / "two.tfrecord@2.gz"), task=task, **base))
        assert r["path"].endswith(f"two.tfrecord-0000{task}-of-00002.gz")
        loci_two += [key(e) for e in _examples(r["path"])]
        assert all("label" not in e for e in _examples(r["path"]))
    assert sorted(loci_one) == sorted(loci_two) and len(set(loci_two)) == len(loci_two)
    again = make_examples(MakeExamplesConfig(examples=str(tmp_path / "again.tfrecord@1.gz"), **base))
    assert open(again["path"], "rb").read() == open(one["path"], "rb").read()


def test_confident_regions_limit_training_examples(tiny, tmp_path):
    bed = tmp_path / "half.bed"
    bed.write_text("q\t0\t5000\n")
    res = make_examples(MakeExamplesConfig(
        mode="training", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
        examples=str(tmp_path / "h.tfrecord@1.gz"), truth_variants=tiny / "NA12878.chr22.tiny.giab.vcf",
        confident_regions=bed))
    starts = [decode_variant(e["variant/encoded"][0])["start"] for e in _examples(res["path"])]
    assert starts and max(starts) < 5000


# ---------------------------------------------------------------- hand-built BAMs
def _ref(tmp_path, n=600, seed=1):
    return write_ref(tmp_path, n, seed)


def _bam(tmp_path, seq, reads, name="r.bam"):
    """reads: (start, read_sequence, cigar, mapq)."""
    return write_bam(tmp_path, seq, [(f"r{i}", s, r, c, 0, q) for i, (s, r, c, q) in
                                     enumerate(sorted(reads, key=lambda x: x[0]))], name)


def _snp_reads(seq, pos, alt, n_alt, n_ref, start=250, length=100, mapq=60):
    reads = []
    for i in range(n_alt + n_ref):
        s = start + (i % 5)
        r = list(seq[s : s + length])
        if i < n_alt:
            r[pos - s] = alt
        reads.append((s, "".join(r), f"{length}M", mapq))
    return reads


@pytest.mark.parametrize("n_alt,n_ref,expected", [(1, 9, False), (2, 8, True), (2, 15, False), (3, 17, True)])
def test_snp_candidate_thresholds(tmp_path, n_alt, n_ref, expected):
    fa, seq = _ref(tmp_path)
    pos = 300
    alt = "A" if seq[pos] != "A" else "C"
    bam = _bam(tmp_path, seq, _snp_reads(seq, pos, alt, n_alt, n_ref))
    res = make_examples(MakeExamplesConfig(mode="calling", ref=fa, reads=[bam], examples=str(tmp_path / "e.tfrecord@1.gz")))
    found = [(v["start"], v["alternate_bases"]) for v in (decode_variant(e["variant/encoded"][0]) for e in _examples(res["path"]))]
    assert ((pos, [alt]) in found) == expected  # count >= 2 and fraction >= 0.12 (2/17 < 0.12)


def test_low_mapq_reads_are_ignored(tmp_path):
    fa, seq = _ref(tmp_path)
    pos = 300
    alt = "A" if seq[pos] != "A" else "C"
    bam = _bam(tmp_path, seq, _snp_reads(seq, pos, alt, 4, 4, mapq=4))
    res = make_examples(MakeExamplesConfig(mode="calling", ref=fa, reads=[bam], examples=str(tmp_path / "e.tfrecord@1.gz")))
    assert res["num_examples"] == 0


def test_deletion_candidate_is_left_normalised(tmp_path):
    fa, seq = _ref(tmp_path)
    # make a homopolymer run "GGGG" at 300..303 in the reference
    seq = seq[:299] + "TGGGGA" + seq[305:]
    fa.write_text(">c\n" + seq + "\n")
    pysam.faidx(str(fa))
    reads = []
    for i in range(10):
        s = 250 + i
        if i < 4:  # delete one G, aligned at different places in the run
            cut = 301 + (i % 3)
            r = seq[s:cut] + seq[cut + 1 : s + 101]
            reads.append((s, r, f"{cut - s}M1D{s + 100 - cut}M", 60))
        else:
            reads.append((s, seq[s : s + 100], "100M", 60))
    bam = _bam(tmp_path, seq, reads)
    res = make_examples(MakeExamplesConfig(mode="calling", ref=fa, reads=[bam], examples=str(tmp_path / "d.tfrecord@1.gz")))
    vars_ = [decode_variant(e["variant/encoded"][0]) for e in _examples(res["path"])]
    dels = [(v["start"], v["reference_bases"], v["alternate_bases"]) for v in vars_ if len(v["reference_bases"]) > 1]
    assert dels == [(299, "TG", ["T"])]  # one left-aligned candidate gathering all 4 reads
    ex = next(e for e in _examples(res["path"]) if decode_variant(e["variant/encoded"][0])["start"] == 299)
    assert ex["dvtrain/allele_counts"][2] == 4 and ex["variant_type"] == [2]


def test_bad_inputs_are_one_line_errors(tiny, tmp_path):
    base = dict(mode="calling", ref=tiny / "q.fa", examples=str(tmp_path / "x.tfrecord@1.gz"))
    with pytest.raises(InputError, match="missing.bam: BAM file does not exist"):
        make_examples(MakeExamplesConfig(reads=[tmp_path / "missing.bam"], **base))
    junk = tmp_path / "junk.bam"
    junk.write_text("not a bam")
    with pytest.raises(InputError, match="junk.bam"):
        make_examples(MakeExamplesConfig(reads=[junk], **base))
    bad_vcf = tmp_path / "renamed.vcf"
    bad_vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
                       "chr22\t186\t.\tT\tC\t50\tPASS\t.\tGT\t0/1\n")
    bed = tmp_path / "b.bed"
    bed.write_text("q\t0\t12356\n")
    with pytest.raises(InputError, match="renamed.vcf: line 3: contig 'chr22' is not in the reference"):
        make_examples(MakeExamplesConfig(mode="training", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                                         examples=str(tmp_path / "y.tfrecord@1.gz"), truth_variants=bad_vcf,
                                         confident_regions=bed))
    assert not any(p.name.startswith(("x.tfrecord", "y.tfrecord")) for p in tmp_path.iterdir())


def test_homopolymer_weighted_channel_on_real_reads(tiny, tmp_path):
    """On the real NA12878 reads: every aligned base's run (dvtrain.reads) equals the run of
    identical bases around it in the read's whole sequence, recomputed here from pysam
    (soft clips and insertions included), and each insertion anchor carries its first
    inserted base's run; the examples carry the channel (id 17) with the reference's runs
    in the reference band."""
    from dvtrain.reads import RefCache, fetch_reads

    ex = make_examples(MakeExamplesConfig(mode="calling", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                                          examples=str(tmp_path / "hp.tfrecord@1.gz"), regions=["q:3001-3600"],
                                          channels=["insert_size", "homopolymer_weighted"]))
    info = json.loads(open(ex["example_info"]).read())
    assert info["shape"] == [100, 221, 8] and info["channels"] == [1, 2, 3, 4, 5, 6, 19, 17]

    def runs(s: str) -> list[int]:
        out, i = [], 0
        while i < len(s):
            j = i
            while j < len(s) and s[j] == s[i]:
                j += 1
            out += [j - i] * (j - i)
            i = j
        return out

    px = lambda n: 254 * min(n, 30) // 30  # noqa: E731
    fasta = pysam.FastaFile(str(tiny / "q.fa"))
    ref = fasta.fetch("q").upper()
    for e in _examples(ex["path"]):
        p = decode_variant(e["variant/encoded"][0])["start"]
        assert _image(e)[0, :, 7].tolist() == [px(n) for n in runs(ref[p - 110:p + 111])]
    with pysam.AlignmentFile(str(tiny / "NA12878.chr22.tiny.bam")) as bam:
        batch = fetch_reads([bam], "q", 0, len(ref), 5, RefCache(fasta, "q"), {})
        want, want_ins = {}, set()
        for a in bam.fetch("q"):
            if a.flag & 0xF04 or a.mapping_quality < 5:
                continue
            r = runs(a.query_sequence)
            want[(a.query_name, a.is_reverse)] = [r[q] for q, _ in a.get_aligned_pairs(matches_only=True)]
            q = rp = 0
            for op, n in a.cigartuples:
                if op == 1 and rp:
                    want_ins.add((a.query_name, a.reference_start + rp - 1, r[q]))
                q += n if op in (0, 1, 4, 7, 8) else 0
                rp += n if op in (0, 2, 3, 7, 8) else 0
    got = {(batch.names[i], bool(batch.reverse[i])): batch.runs[batch.off[i]:batch.off[i + 1]].tolist()
           for i in range(len(batch))}
    assert len(got) == len(want) > 1000 and got == want
    assert max(max(v) for v in got.values()) >= 8  # the slice has real homopolymers
    got_ins = {(batch.names[r], int(a), int(h)) for r, a, h in zip(batch.ins_row, batch.ins_pos, batch.ins_run)}
    assert got_ins == want_ins and got_ins
