"""Stage 1 (coverage-filtered confident BED) against the real bedtools pipeline."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pysam
import pytest

from dvtrain import coverage as cov
from dvtrain.config import CoverageConfig
from dvtrain.coverage import coverage_bed, depth_runs
from dvtrain.errors import InputError

BEDTOOLS = shutil.which("bedtools")
needs_bedtools = pytest.mark.skipif(
    BEDTOOLS is None, reason="bedtools binary not on PATH (the Makefile installs it: apt-get install bedtools)"
)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "na12878-chr22-tiny"
REAL_BAM = DATA / "NA12878.chr22.tiny.bam"

CONTIGS = {"chrA": 5000, "chrB": 3000, "chrL": 200_000}

# (contig, pos, cigar, flag) records with known genomecov behaviour, in both BAMs' mix
SPECIAL = [
    ("chrA", 100, "40M5D60M", 0),        # D splits the block: 140-145 not covered
    ("chrA", 150, "30M3I67M", 0),        # insertion: no effect on span
    ("chrA", 200, "10S90M", 0),          # soft clip: span starts at POS
    ("chrA", 260, "5H95M", 16),          # hard clip, reverse strand
    ("chrA", 300, "50M200N50M", 0),      # N is covered without -split
    ("chrA", 310, "45=1X54=", 0),        # =/X like M
    ("chrA", 400, "20M2P30M", 0),        # padding: no effect
    ("chrA", 420, "60M", 256),           # secondary: counted
    ("chrA", 440, "60M", 2048),          # supplementary: counted
    ("chrA", 460, "60M", 1024),          # duplicate: counted
    ("chrA", 480, "60M", 512),           # QC fail: counted
    ("chrA", 500, "60M", 4),             # unmapped but placed: skipped
    ("chrA", 520, "10M5D", 0),           # trailing D
    ("chrA", 540, "5D20M", 0),           # leading D (zero-length block, harmless here)
    ("chrA", 560, "8S12I", 0),           # no reference span at all
    ("chrA", 4950, "100M", 0),           # runs past the contig end: clipped
    ("chrB", 0, "3D40M", 0),             # leading D at POS 1: genomecov adds 1 to the whole contig
    ("chrL", 0, "5S", 0),                # no reference span at POS 1: same quirk
]


def _record(header, contig, pos, cigar, flag, name, mapq=60):
    a = pysam.AlignedSegment(header)
    a.query_name = name
    a.flag = flag
    a.reference_id = header.get_tid(contig)
    a.reference_start = pos
    a.mapping_quality = mapq
    a.cigarstring = cigar
    qlen = sum(n for op, n in a.cigartuples if op in (0, 1, 4, 7, 8))
    a.query_sequence = "ACGT" * (qlen // 4) + "ACGT"[: qlen % 4]
    a.query_qualities = pysam.qualitystring_to_array("I" * qlen)
    return a


def _write_bam(path: Path, records, contigs=CONTIGS, so="coordinate", sort=True, unplaced=1) -> Path:
    header = pysam.AlignmentHeader.from_dict(
        {"HD": {"VN": "1.6", **({"SO": so} if so else {})}, "SQ": [{"SN": c, "LN": n} for c, n in contigs.items()],
         "RG": [{"ID": path.stem, "SM": "S1"}]}
    )
    order = list(contigs)
    recs = sorted(records, key=lambda r: (order.index(r[0]), r[1])) if sort else list(records)
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i, (contig, pos, cigar, flag) in enumerate(recs):
            out.write(_record(header, contig, pos, cigar, flag, f"{path.stem}_{i}", mapq=i % 61))
        for i in range(unplaced):
            u = pysam.AlignedSegment(header)
            u.query_name = f"{path.stem}_unplaced{i}"
            u.flag = 4
            u.reference_id = -1
            u.reference_start = -1
            u.query_sequence = "ACGTACGT"
            u.query_qualities = pysam.qualitystring_to_array("IIIIIIII")
            out.write(u)
    return path


def _random_reads(rng: random.Random, n: int, contig: str, lo: int, hi: int):
    cigars = ["100M", "100M", "100M", "60M4D40M", "50M2I48M", "15S85M", "70M30S", "100M"]
    flags = [0, 16, 0, 16, 1024, 256, 2048, 512, 4, 0, 16]
    return [(contig, rng.randrange(lo, hi), rng.choice(cigars), rng.choice(flags)) for _ in range(n)]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Two overlapping BAMs over three contigs, and a truth BED with extra columns."""
    d = tmp_path_factory.mktemp("cov")
    rng = random.Random(7)
    reads1 = _random_reads(rng, 150, "chrA", 0, 4900) + _random_reads(rng, 40, "chrB", 0, 1500) + SPECIAL[:9]
    reads2 = _random_reads(rng, 120, "chrA", 1000, 4000) + _random_reads(rng, 40, "chrB", 1000, 2950) + SPECIAL[9:]
    # chrL: long spliced reads make runs that straddle bedtools' 16 kb / 128 kb bins
    reads1 += [("chrL", 90_000 + 10 * i, "50M100000N50M", 0) for i in range(4)]
    reads1 += [("chrL", 20_000 + 5 * i, "50M30000N50M", 0) for i in range(6)]
    reads2 += _random_reads(rng, 150, "chrL", 100_000, 180_000) + _random_reads(rng, 80, "chrL", 10_000, 60_000)
    bam1 = _write_bam(d / "lane1.bam", reads1)
    bam2 = _write_bam(d / "lane2.bam", reads2)
    truth = d / "truth.bed"
    lines = [
        ("chrB", 0, 3000, "wholeB", "0", "+"),
        ("chrA", 0, 5000, "wholeA", "0", "+"),
        ("chrA", 90, 160, "deletion", "1", "-"),
        ("chrA", 130, 620, "special", "2", "."),
        ("chrA", 2000, 2100, "overlaps_next", "3", "+"),
        ("chrA", 2050, 2500, "overlaps_prev", "4", "+"),
        ("chrA", 1500, 1500, "zero_length", "5", "+"),
        ("chrZ", 0, 1000, "not_in_bam", "6", "+"),
        ("chrL", 0, 200_000, "wholeL", "7", "+"),
        ("chrL", 16_000, 140_000, "bins", "8", "+"),
        ("chrA", 4900, 5000, "contig_end", "9", "+"),   # chrA again: interleaved contigs
        ("chrB", 10, 20, "small", "10", "-"),
    ]
    truth.write_text("# comment line\n" + "".join("\t".join(map(str, ln)) + "\n" for ln in lines))
    return {"dir": d, "bams": [bam1, bam2], "truth": truth}


def _bedtools_pipeline(bam: Path, truth: Path, min_cov: int) -> str:
    cmd = (f"set -o pipefail; bedtools genomecov -ibam '{bam}' -bg | awk '$4 > {min_cov}' "
           f"| bedtools intersect -a '{truth}' -b -")
    return subprocess.run(["bash", "-c", cmd], check=True, capture_output=True, text=True).stdout


def _genomecov(bam: Path) -> list[str]:
    out = subprocess.run([BEDTOOLS, "genomecov", "-ibam", str(bam), "-bg"], check=True,
                         capture_output=True, text=True).stdout
    return out.splitlines()


def _depth_array(bam: Path, contig: str, length: int) -> np.ndarray:
    depth = np.zeros(length, np.int64)
    for s, e, d in depth_runs(bam, contig):
        depth[s:e] = d
    return depth


# --------------------------------------------------------------------------- semantics
@pytest.mark.parametrize("rec, runs", [
    (("chrA", 100, "40M5D60M", 0), [(100, 140, 1), (145, 205, 1)]),   # bases under D: not covered
    (("chrA", 150, "30M3I67M", 0), [(150, 247, 1)]),                  # I: no reference span
    (("chrA", 200, "10S90M", 0), [(200, 290, 1)]),                    # S: span starts at POS
    (("chrA", 300, "50M200N50M", 0), [(300, 600, 1)]),                # N: covered (no -split)
    (("chrA", 310, "45=1X54=", 0), [(310, 410, 1)]),
    (("chrA", 400, "20M2P30M", 0), [(400, 450, 1)]),
    (("chrA", 420, "60M", 256), [(420, 480, 1)]),                     # secondary: counted
    (("chrA", 440, "60M", 2048), [(440, 500, 1)]),                    # supplementary: counted
    (("chrA", 460, "60M", 1024), [(460, 520, 1)]),                    # duplicate: counted
    (("chrA", 480, "60M", 512), [(480, 540, 1)]),                     # QC fail: counted
    (("chrA", 500, "60M", 4), []),                                    # unmapped (placed): skipped
    (("chrA", 520, "10M5D", 0), [(520, 530, 1)]),
    (("chrA", 540, "5D20M", 0), [(545, 565, 1)]),
    (("chrA", 560, "8S12I", 0), []),                                  # nothing on the reference
    (("chrA", 4950, "100M", 0), [(4950, 5000, 1)]),                   # clipped at the contig end
    (("chrB", 0, "3D40M", 0), [(0, 3, 1), (3, 43, 2), (43, 3000, 1)]),  # genomecov quirk at POS 1
    (("chrB", 0, "10S", 0), [(0, 3000, 1)]),                          # same quirk
])
def test_genomecov_semantics(tmp_path, rec, runs):
    """One record at a time: what genomecov -bg counts (checked against bedtools below)."""
    bam = _write_bam(tmp_path / "one.bam", [rec], unplaced=0)
    assert list(depth_runs(bam, rec[0])) == runs      # no index: whole-file scan path
    pysam.index(str(bam))
    assert list(depth_runs(bam, rec[0])) == runs      # indexed fetch path
    if BEDTOOLS:
        assert [f"{rec[0]}\t{s}\t{e}\t{d}" for s, e, d in runs] == _genomecov(bam)


@needs_bedtools
@pytest.mark.parametrize("window", [None, 64, 1000])
def test_depth_runs_equal_genomecov(synth, tmp_path, monkeypatch, window):
    if window:
        monkeypatch.setattr(cov, "_WINDOW", window)
    merged = cov.merge_bams(synth["bams"], tmp_path / "m.bam")
    ours = [f"{c}\t{s}\t{e}\t{d}" for c in CONTIGS for s, e, d in depth_runs(merged, c)]
    assert ours == _genomecov(merged)
    special = _write_bam(tmp_path / "special.bam", SPECIAL)
    pysam.index(str(special))
    assert [f"{c}\t{s}\t{e}\t{d}" for c in CONTIGS for s, e, d in depth_runs(special, c)] == _genomecov(special)


# --------------------------------------------------------------------------- the stage
@needs_bedtools
@pytest.mark.parametrize("min_cov, window", [(0, None), (2, None), (5, None), (2, 4096)])
def test_coverage_bed_equals_bedtools_pipeline(synth, tmp_path, monkeypatch, min_cov, window):
    if window:  # many windows: runs must merge across window edges
        monkeypatch.setattr(cov, "_WINDOW", window)
    out = tmp_path / "out" / "confident.bed"
    summary = coverage_bed(CoverageConfig(reads=synth["bams"], truth_bed=synth["truth"], output_bed=out,
                                          min_coverage=min_cov))
    merged = Path(summary["merged_bam"])
    assert merged == out.parent / "merged.bam" and Path(str(merged) + ".bai").is_file()
    expected = _bedtools_pipeline(merged, synth["truth"], min_cov)
    got = out.read_text()
    assert got == expected
    assert got  # non-trivial
    rows = [ln.split("\t") for ln in got.splitlines()]
    assert summary["intervals"] == len(rows)
    assert summary["bases_kept"] == sum(int(r[2]) - int(r[1]) for r in rows)
    assert summary["bases_in_truth"] == 3000 + 5000 + 70 + 490 + 100 + 450 + 0 + 1000 + 200_000 + 124_000 + 100 + 10
    assert 0 < summary["fraction_kept"] < 1
    assert set(summary["mean_depth"]) == {"chrA", "chrB", "chrL"}
    # the merged BAM holds every record of both inputs
    n_in = sum(int(pysam.view("-c", str(b)).strip()) for b in synth["bams"])
    assert int(pysam.view("-c", str(merged)).strip()) == n_in
    assert not [p for p in out.parent.iterdir() if ".part" in p.name]


def test_threshold_is_honoured(synth, tmp_path):
    """The shell script's misspelt threshold let everything through; here 0, 2 and 5 differ
    and every output base really has depth > threshold."""
    texts = {}
    for m in (0, 2, 5):
        out = tmp_path / f"c{m}.bed"
        s = coverage_bed(CoverageConfig(reads=synth["bams"], truth_bed=synth["truth"], output_bed=out,
                                        merged_bam=tmp_path / "merged.bam", min_coverage=m))
        texts[m] = (out.read_text(), s)
    assert len({t for t, _ in texts.values()}) == 3
    assert texts[0][1]["bases_kept"] > texts[2][1]["bases_kept"] > texts[5][1]["bases_kept"] > 0
    merged = tmp_path / "merged.bam"
    depth = {c: _depth_array(merged, c, n) for c, n in CONTIGS.items()}
    for m, (text, _) in texts.items():
        for line in text.splitlines():
            c, s, e = line.split("\t")[:3]
            s, e = int(s), int(e)
            if s < e:
                assert depth[c][s:e].min() > m, (m, line)
    # bases with depth > m inside the truth intervals are all kept (union check)
    for m, (text, _) in texts.items():
        kept = {c: np.zeros(n, bool) for c, n in CONTIGS.items()}
        for line in text.splitlines():
            c, s, e = line.split("\t")[:3]
            kept[c][int(s):int(e)] = True
        for c, s, e in [("chrA", 0, 5000), ("chrB", 0, 3000), ("chrL", 0, 200_000)]:
            assert np.array_equal(kept[c][s:e], depth[c][s:e] > m)


def test_a_sorted_bam_without_so_is_accepted(synth, tmp_path):
    """Many real BAMs (DeepVariant's test BAM among them) have no @HD SO; samtools takes them."""
    d = tmp_path / "in"
    d.mkdir()
    plain = [_write_bam(d / f"{p.stem}.nso.bam", _records_of(p), so=None) for p in synth["bams"]]
    for p in plain:
        pysam.index(str(p))
        assert "SO" not in pysam.AlignmentFile(str(p)).header.to_dict()["HD"]
    got = coverage_bed(CoverageConfig(reads=plain, truth_bed=synth["truth"], output_bed=tmp_path / "a.bed"))
    want = coverage_bed(CoverageConfig(reads=synth["bams"], truth_bed=synth["truth"], output_bed=tmp_path / "b.bed"))
    assert (tmp_path / "a.bed").read_text() == (tmp_path / "b.bed").read_text()
    assert got["bases_kept"] == want["bases_kept"] > 0


def _records_of(bam: Path) -> list[tuple]:
    with pysam.AlignmentFile(str(bam)) as f:
        return [(r.reference_name, r.reference_start, r.cigarstring, r.flag) for r in f.fetch(until_eof=True) if not r.is_unmapped]


@needs_bedtools
@pytest.mark.skipif(not REAL_BAM.is_file(), reason=f"shared test data not present: {REAL_BAM}")
@pytest.mark.parametrize("min_cov", [0, 2, 5, 30])
def test_real_reads_equal_bedtools(tmp_path, min_cov):
    length = int((DATA / "q.fa.fai").read_text().split("\t")[1])
    truth = tmp_path / "truth.bed"
    truth.write_text(
        f"q\t0\t{length}\twhole\nq\t100\t900\tstart\nq\t5000\t5100\tmid\nq\t12000\t{length}\tend\n"
        f"q\t7000\t7300\tmid2\n"
    )
    out = tmp_path / "real.bed"
    s = coverage_bed(CoverageConfig(reads=[REAL_BAM], truth_bed=truth, output_bed=out, min_coverage=min_cov))
    assert out.read_text() == _bedtools_pipeline(Path(s["merged_bam"]), truth, min_cov)
    assert s["intervals"] > 0 and s["mean_depth"]["q"] > 10


# --------------------------------------------------------------------------- bad input
def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith(".") or p.suffix in (".bed", ".bam", ".bai"))


@pytest.mark.parametrize("case", ["missing", "not_bam", "sam_text", "bgzf_sam", "truncated", "unsorted_header",
                                  "queryname_header", "unsorted_records", "unsorted_records_no_so", "sq_mismatch",
                                  "bad_bed", "missing_bed"])
def test_bad_input_raises_and_leaves_nothing(synth, tmp_path, case):
    good = synth["bams"][0]
    truth = synth["truth"]
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad = inputs / "bad.bam"
    if case == "missing":
        bad = inputs / "nope.bam"
    elif case == "not_bam":
        bad.write_text("this is not a BAM\n")
    elif case == "sam_text":
        pysam.view("-h", "-O", "SAM", "-o", str(bad), str(good), catch_stdout=False)
    elif case == "bgzf_sam":
        sam = inputs / "x.sam"
        pysam.view("-h", "-O", "SAM", "-o", str(sam), str(good), catch_stdout=False)
        pysam.tabix_compress(str(sam), str(bad))
    elif case == "truncated":
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) - 28])
    elif case == "unsorted_header":
        _write_bam(bad, [("chrA", 10, "50M", 0)], so="unsorted")
    elif case == "queryname_header":
        _write_bam(bad, [("chrA", 10, "50M", 0)], so="queryname")
    elif case == "unsorted_records":
        _write_bam(bad, [("chrA", 900, "50M", 0), ("chrA", 10, "50M", 0)], sort=False)
    elif case == "unsorted_records_no_so":  # no SO to go by: the records' order is checked
        _write_bam(bad, [("chrA", 900, "50M", 0), ("chrA", 10, "50M", 0)], so=None, sort=False)
    elif case == "sq_mismatch":
        _write_bam(bad, [("chrA", 10, "50M", 0)], contigs={"chrA": 5000, "chrB": 3001, "chrL": 200_000})
    elif case == "bad_bed":
        bad = good
        truth = inputs / "truth.bed"
        truth.write_text("chrA\t0\t100\tok\nchrA\tten\t200\tbroken\n")
    elif case == "missing_bed":
        bad = good
        truth = inputs / "absent.bed"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cfg = CoverageConfig(reads=[synth["bams"][1], bad], truth_bed=truth, output_bed=out_dir / "confident.bed")
    with pytest.raises(InputError) as ei:
        coverage_bed(cfg)
    named = truth if case in ("bad_bed", "missing_bed") else bad
    assert ei.value.path == str(named)
    assert ei.value.problem
    assert _leftovers(out_dir) == []
