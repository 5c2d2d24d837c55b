"""dvtrain.simulate: reference, truth, confident regions and aligned reads."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pysam
import pytest

from dvtrain.bed import IntervalIndex, read_bed
from dvtrain.config import GENERIC_PROFILE, LOWCOV_PROFILE, SimulateConfig
from dvtrain.errors import DvtrainError
from dvtrain.simulate import simulate
from dvtrain.variants import normalize, read_vcf

CONTIGS = {"chr1": 30_000, "chr20": 20_000}
GENERIC = GENERIC_PROFILE.model_copy(update={"coverage": 10.0})
LOWCOV = LOWCOV_PROFILE


def small_config(outdir: Path, **kw) -> SimulateConfig:
    args = dict(outdir=outdir, contigs=CONTIGS, profiles=[GENERIC, LOWCOV], seed=7, threads=2)
    args.update(kw)
    return SimulateConfig(**args)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    result = simulate(small_config(out))
    return out, result


def _ref(out: Path) -> dict[str, str]:
    fa = pysam.FastaFile(str(out / "ref.fa"))
    return {c: fa.fetch(c).upper() for c in fa.references}


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


# ------------------------------------------------------------------ layout
def test_output_layout_and_dataset_json(sim):
    out, result = sim
    names = {p.name for p in out.iterdir()}
    expected = {
        "ref.fa", "ref.fa.fai", "truth.vcf.gz", "truth.vcf.gz.tbi", "truth.bed", "segdups.bed",
        "generic.bam", "generic.bam.bai", "lowcov.bam", "lowcov.bam.bai", "dataset.json",
    }
    assert names == expected  # no temp files left behind
    assert result["ref"] == str(out / "ref.fa")
    assert result["bams"] == {"generic": str(out / "generic.bam"), "lowcov": str(out / "lowcov.bam")}
    text = (out / "dataset.json").read_text()
    ds = json.loads(text)
    assert text == json.dumps(ds, sort_keys=True, indent=2) + "\n"
    assert ds["seed"] == 7
    assert ds["parameters"]["contigs"] == CONTIGS
    assert ds["parameters"]["profiles"][1]["name"] == "lowcov"
    assert ds["counts"] == json.loads(json.dumps(result["counts"]))
    assert ds["counts"]["reads"]["generic"]["reads"] == 2 * ds["counts"]["reads"]["generic"]["pairs"]


# ------------------------------------------------------------------ reference
def test_reference_composition(sim):
    out, _ = sim
    ref = _ref(out)
    assert {c: len(s) for c, s in ref.items()} == CONTIGS
    assert list(ref) == list(CONTIGS)
    fai = (out / "ref.fa.fai").read_text().splitlines()
    assert [line.split("\t")[:2] for line in fai] == [[c, str(n)] for c, n in CONTIGS.items()]
    seq = "".join(ref.values())
    assert set(seq) <= set("ACGT")
    gc = (seq.count("G") + seq.count("C")) / len(seq)
    assert 0.35 < gc < 0.46
    # CpG depletion, long homopolymers and tandem repeats are present
    assert seq.count("CG") < 0.6 * seq.count("GC")
    assert any(b * 10 in seq for b in "AT")
    import re

    strs = re.findall(r"((?:[ACGT]{2,6}?))\1{4,}", seq)
    assert len([u for u in strs if len(set(u)) > 1]) >= 5


def test_segdups_and_confident_regions(sim):
    out, _ = sim
    ref = _ref(out)
    sd = read_bed(out / "segdups.bed", keep_extra=True)
    assert len(sd) == 2 * 2 * len(CONTIGS)  # segdup_count=2, both copies
    copies: dict[str, list] = {}
    for c, s, e, extra in sd:
        copies.setdefault(extra[0][:-2], []).append((c, s, e))
    rc = str.maketrans("ACGT", "TGCA")
    for pair in copies.values():
        (c1, s1, e1), (c2, s2, e2) = pair
        assert c1 == c2 and e1 - s1 == e2 - s2 >= 300
        a, b = ref[c1][s1:e1], ref[c2][s2:e2]
        diff = min(sum(x != y for x, y in zip(a, b)), sum(x != y for x, y in zip(a, b.translate(rc)[::-1])))
        assert diff / len(a) < 0.02
    conf = read_bed(out / "truth.bed")
    idx = IntervalIndex(conf)
    for c, s, e, _ in sd:
        assert not idx.clip(c, s, e), "truth.bed overlaps a segdup"
    for c, n in CONTIGS.items():
        assert not idx.contains(c, 500) and not idx.contains(c, n - 500)
    total = idx.total()
    assert 0.6 * sum(CONTIGS.values()) < total < sum(CONTIGS.values()) - 4000


# ------------------------------------------------------------------ truth VCF
def test_truth_vcf_matches_reference(sim):
    out, result = sim
    ref = _ref(out)
    variants = read_vcf(out / "truth.vcf.gz", contigs=CONTIGS)
    assert len(variants) == result["counts"]["variants"] > 50
    with gzip.open(out / "truth.vcf.gz", "rt") as fh:
        lines = fh.read().splitlines()
    header = [x for x in lines if x.startswith("#")]
    assert header[-1].split("\t")[-1] == "SIM001"
    assert "##contig=<ID=chr1,length=30000>" in header and "##contig=<ID=chr20,length=20000>" in header
    gts = {x.split("\t")[9] for x in lines if not x.startswith("#")}
    assert gts <= {"0|1", "1|0", "1|1"} and len(gts) == 3
    assert (out / "truth.vcf.gz.tbi").exists()
    pysam.VariantFile(str(out / "truth.vcf.gz")).fetch("chr20", 0, 20_000)  # tabix index works

    prev_end: dict[str, int] = {}
    for v in variants:
        s = ref[v.chrom]
        assert s[v.pos : v.end] == v.ref
        assert len(v.alts) == 1 and v.gt in ((0, 1), (1, 0), (1, 1))
        alt = v.alts[0]
        fetch = lambda a, b, s=s: s[a:b]  # noqa: E731
        assert normalize(v.pos, v.ref, alt, fetch) == (v.pos, v.ref, alt), "not left-normalised"
        if not v.is_snp:
            assert v.ref[0] == alt[0] and min(len(v.ref), len(alt)) == 1  # anchored
        assert v.pos >= prev_end.get(v.chrom, -10) + 10  # >= 10 bp apart, sorted
        prev_end[v.chrom] = v.end

    indels = [v for v in variants if not v.is_snp]
    assert indels
    lengths = np.array([abs(len(v.ref) - len(v.alts[0])) for v in indels])
    assert (lengths <= 5).mean() > 0.75 and lengths.max() <= 20
    assert any(len(v.ref) > 1 for v in indels) and any(len(v.alts[0]) > 1 for v in indels)


def test_variant_statistics(tmp_path):
    """Bigger genome, higher rates, no reads: realised Ti/Tv and het:hom near their targets."""
    cfg = SimulateConfig(
        outdir=tmp_path, contigs={"chrA": 150_000, "chrB": 100_000}, snp_rate=0.01, indel_rate=0.002,
        titv=2.0, het_hom_ratio=1.5, profiles=[], seed=3,
    )
    counts = simulate(cfg)["counts"]
    variants = read_vcf(tmp_path / "truth.vcf.gz")
    snps = [v for v in variants if v.is_snp]
    ti = sum({v.ref, v.alts[0]} in ({"A", "G"}, {"C", "T"}) for v in snps)
    titv = ti / (len(snps) - ti)
    het = sum(v.gt[0] != v.gt[1] for v in variants)
    hethom = het / (len(variants) - het)
    assert abs(titv - 2.0) < 0.3, titv
    assert abs(hethom - 1.5) < 0.3, hethom
    assert counts["titv"] == pytest.approx(titv, abs=1e-3)
    assert counts["het_hom_ratio"] == pytest.approx(hethom, abs=1e-3)
    assert 1500 < len(snps) < 2600
    n_indels = counts["insertions"] + counts["deletions"]
    assert 300 < n_indels < 560
    # a good fraction of indels sit in homopolymers / STRs
    assert counts["indels_in_repeats"] / n_indels > 0.3
    assert {p.name for p in tmp_path.iterdir()} == {
        "ref.fa", "ref.fa.fai", "truth.vcf.gz", "truth.vcf.gz.tbi", "truth.bed", "segdups.bed", "dataset.json"
    }


# ------------------------------------------------------------------ reads
def _origin(read: pysam.AlignedSegment) -> tuple[str, bool, int, int]:
    """(contig, expected reverse, expected 5'-anchored ref coordinate) from the read name."""
    _, hs, span, contig = read.query_name.split(":", 3)
    start, end = map(int, span.split("-"))
    fwd_read1 = hs[1] == "+"
    forward = fwd_read1 == read.is_read1
    return contig, not forward, start, end


@pytest.mark.parametrize("name,platform,coverage", [("generic", "ILLUMINA", 10.0), ("lowcov", "BGISEQ", 4.0)])
def test_bam_alignments(sim, name, platform, coverage):
    out, result = sim
    path = out / f"{name}.bam"
    assert (out / f"{name}.bam.bai").exists()
    bam = pysam.AlignmentFile(str(path))
    hd = bam.header.to_dict()
    assert hd["HD"]["SO"] == "coordinate"
    assert [(s["SN"], s["LN"]) for s in hd["SQ"]] == list(CONTIGS.items())
    assert hd["RG"] == [{"ID": name, "SM": "SIM001", "PL": platform, "LB": f"{name}-lib1"}]
    assert "PG" not in hd and "CO" not in hd
    assert str(out) not in str(bam.header)
    assert bam.fetch("chr20", 5000, 6000)  # the index works

    reads = list(bam.fetch(until_eof=True))
    assert len(reads) == result["counts"]["reads"][name]["reads"]
    keys = [(r.reference_id if r.reference_id >= 0 else 1 << 30, r.reference_start) for r in reads]
    assert keys == sorted(keys)
    mapped = [r for r in reads if not r.is_unmapped]
    assert len(mapped) / len(reads) > 0.95
    assert all(r.get_tag("RG") == name and r.is_paired for r in reads)
    assert not any(r.is_secondary or r.is_supplementary for r in reads)
    assert sum(r.is_read1 for r in reads) == sum(r.is_read2 for r in reads) == len(reads) // 2

    # mostly in the right place (true origin is in the read name)
    good = 0
    for r in mapped:
        contig, reverse, start, end = _origin(r)
        if r.reference_name != contig or r.is_reverse != reverse:
            continue
        if (not reverse and abs(r.reference_start - start) <= 20) or (reverse and abs(r.reference_end - end) <= 20):
            good += 1
    assert good / len(mapped) > 0.95

    # mate fields, proper pairs and TLEN are consistent
    by_name: dict[str, list] = {}
    for r in reads:
        by_name.setdefault(r.query_name, []).append(r)
    proper = 0
    for a, b in by_name.values():
        assert a.is_read1 != b.is_read1
        for x, y in ((a, b), (b, a)):
            assert x.mate_is_unmapped == y.is_unmapped
            if not y.is_unmapped:
                assert x.next_reference_id == y.reference_id and x.next_reference_start == y.reference_start
                assert x.mate_is_reverse == y.is_reverse
                assert x.get_tag("MC") == y.cigarstring
        if not a.is_unmapped and not b.is_unmapped:
            assert a.template_length == -b.template_length
            assert a.is_proper_pair == b.is_proper_pair
            proper += a.is_proper_pair
        if not a.is_unmapped:
            assert a.query_length == (GENERIC if name == "generic" else LOWCOV).read_length
    assert proper / len(by_name) > 0.9

    # depth over the contig interiors is close to the requested coverage
    for contig, n in CONTIGS.items():
        depth = np.zeros(n + 1, dtype=np.int32)
        for r in bam.fetch(contig):
            for s, e in r.get_blocks():
                depth[s] += 1
                depth[e] -= 1
        depth = np.cumsum(depth)[:n]
        mean = depth[2000 : n - 2000].mean()
        assert abs(mean - coverage) / coverage < 0.2, (contig, mean)


def test_error_model(sim):
    """Errors: mismatch rate rises along the read, lowcov is noisier, and qualities are
    calibrated as a real sequencer's (after recalibration): where the sequencer's own errors
    dominate (Q5-19), the mismatch rate of a quality bin is its Phred probability. So
    erroneous bases have lower qualities on average, but no error is marked as such."""
    out, _ = sim
    ref = _ref(out)
    # Exclude true variant sites, and +-10 bp around true indels, where alignment
    # (not the sequencer) causes mismatches.
    truth = set()
    for v in read_vcf(out / "truth.vcf.gz"):
        pad = 0 if v.is_snp else 10
        truth.update((v.chrom, p) for p in range(v.pos - pad, v.pos + len(v.ref) + pad))
    stats = {}
    for name in ("generic", "lowcov"):
        bam = pysam.AlignmentFile(str(out / f"{name}.bam"))
        L = (GENERIC if name == "generic" else LOWCOV).read_length
        mm_by_cycle = np.zeros(L)
        n_by_cycle = np.zeros(L)
        q_mm, q_ok = [], []
        by_q = np.zeros((64, 2))  # per quality: bases, mismatches
        for i, r in enumerate(bam.fetch(until_eof=True)):
            if r.is_unmapped or r.mapping_quality < 20 or i % 3:
                continue
            s, q = r.query_sequence, r.query_qualities
            for qp, rp in r.get_aligned_pairs(matches_only=True):
                if (r.reference_name, rp) in truth:
                    continue
                cycle = L - 1 - qp if r.is_reverse else qp
                bad = s[qp] != ref[r.reference_name][rp]
                mm_by_cycle[cycle] += bad
                n_by_cycle[cycle] += 1
                (q_mm if bad else q_ok).append(q[qp])
                by_q[q[qp]] += (1, bad)
        third = L // 3
        stats[name] = (
            mm_by_cycle[:third].sum() / n_by_cycle[:third].sum(),
            mm_by_cycle[-third:].sum() / n_by_cycle[-third:].sum(),
            float(np.mean(q_mm)),
            float(np.mean(q_ok)),
            mm_by_cycle.sum() / n_by_cycle.sum(),
        )
        for lo in (5, 10, 15):  # 5-Phred bins; several hundred bases or more each at this scale
            n, bad = by_q[lo:lo + 5].sum(axis=0)
            phred = float(np.dot(by_q[lo:lo + 5, 0], 10.0 ** (-np.arange(lo, lo + 5) / 10)) / n)
            assert n > 200 and 0.67 * phred < bad / n < 1.5 * phred, (name, lo, n, bad / n, phred)
    for name, (early, late, qmm, qok, _) in stats.items():
        assert late > early, name
        assert qmm < qok - 2, name
    # whole-read error rate: lowcov's profile averages ~2x generic's
    assert stats["lowcov"][4] > 1.5 * stats["generic"][4]


# ------------------------------------------------------------------ determinism and errors
def test_deterministic_and_seed_dependent(tmp_path):
    cfg = dict(contigs={"chrX": 25_000}, profiles=[LOWCOV_PROFILE.model_copy(update={"coverage": 3.0})])
    out = tmp_path / "a"
    simulate(small_config(out, **cfg))
    first = _digests(out)
    simulate(small_config(out, **cfg, threads=1))  # rerun over the same folder, other thread count
    second = _digests(out)
    # thread count is a recorded parameter, so only dataset.json may differ
    assert {k: v for k, v in first.items() if k != "dataset.json"} == {k: v for k, v in second.items() if k != "dataset.json"}
    simulate(small_config(out, **cfg))
    assert _digests(out) == first
    other = tmp_path / "b"
    simulate(small_config(other, **cfg, seed=8))
    third = _digests(other)
    for f in ("ref.fa", "truth.vcf.gz", "lowcov.bam"):
        assert third[f] != first[f]


def test_rejects_bad_config(tmp_path):
    with pytest.raises(DvtrainError, match="duplicate profile"):
        simulate(small_config(tmp_path, profiles=[LOWCOV, LOWCOV]))
    with pytest.raises(DvtrainError, match="at least 2000"):
        simulate(small_config(tmp_path, contigs={"tiny": 500}))


def test_reads_carry_the_truth_haplotypes(sim):
    """Hom-alt SNPs show the ALT in almost every read, het SNPs in about half; indel errors exist."""
    out, _ = sim
    variants = [v for v in read_vcf(out / "truth.vcf.gz") if v.is_snp]
    bam = pysam.AlignmentFile(str(out / "generic.bam"))
    fractions: dict[bool, list[float]] = {True: [], False: []}
    for v in variants:
        cols = bam.count_coverage(v.chrom, v.pos, v.pos + 1, quality_threshold=0, read_callback="all")
        counts = dict(zip("ACGT", (int(c[0]) for c in cols)))
        depth = sum(counts.values())
        if depth >= 5:
            fractions[v.gt[0] != v.gt[1]].append(counts[v.alts[0]] / depth)
    assert len(fractions[True]) > 20 and len(fractions[False]) > 10
    assert np.mean(fractions[False]) > 0.9
    assert 0.35 < np.mean(fractions[True]) < 0.65

    # lowcov has homopolymer indel errors: reads with I/D that no truth indel explains
    truth_indels = [v for v in read_vcf(out / "truth.vcf.gz") if not v.is_snp]
    near = IntervalIndex([(v.chrom, max(0, v.pos - 30), v.end + 30) for v in truth_indels])
    lowcov = pysam.AlignmentFile(str(out / "lowcov.bam"))
    gapped = sum(
        1
        for r in lowcov.fetch(until_eof=True)
        if not r.is_unmapped and any(op in (1, 2) for op, _ in r.cigartuples)
        and not near.clip(r.reference_name, r.reference_start, r.reference_end)
    )
    assert gapped > 10
