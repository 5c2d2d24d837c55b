"""Peer callers (bcftools, freebayes) on the real NA12878 tiny data, scored by dvtrain's evaluator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dvtrain.cli import main
from dvtrain.config import PeersConfig
from dvtrain.errors import DvtrainError
from dvtrain.peers import benchmark_peers

HAPPY_COLUMNS = {"Type", "Filter", "TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP",
                 "METRIC.Recall", "METRIC.Precision", "METRIC.F1_Score"}


def _cfg(tiny: Path, out: Path, **kw) -> PeersConfig:
    return PeersConfig(ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"], regions=["q"],
                       truth_vcf=tiny / "NA12878.chr22.tiny.giab.vcf", output_dir=out, **kw)


def _snp(rows: list[dict], peer: str) -> dict:
    (row,) = [r for r in rows if r["model"] == peer and r["Type"] == "SNP" and r["Filter"] == "PASS"]
    return row


@pytest.mark.parametrize("peer", ["bcftools", "freebayes"])
def test_peer_on_tiny(tiny, tmp_path, peer):
    if shutil.which(peer) is None:
        pytest.skip(f"{peer} not installed (make system-deps)")
    res = benchmark_peers(_cfg(tiny, tmp_path, peers=[peer]))
    assert res["skipped"] == [] and set(res["vcfs"]) == {peer}
    vcf = Path(res["vcfs"][peer])
    assert vcf.exists() and Path(f"{vcf}.tbi").exists() and (tmp_path / f"{peer}.eval.summary.csv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    for r in res["rows"]:
        assert HAPPY_COLUMNS <= set(r) and r["model"] == peer
    snp = _snp(res["rows"], peer)
    assert int(snp["TRUTH.TOTAL"]) == 14
    # bcftools at 39x finds (nearly) all 14 GIAB SNPs; freebayes' raw, unfiltered calls most
    assert float(snp["METRIC.Recall"]) >= (0.85 if peer == "bcftools" else 0.7)
    if peer == "bcftools":
        assert float(snp["METRIC.F1_Score"]) >= 0.85
    # sorted, bgzipped, tabix-indexed: a region query works
    import pysam

    with pysam.VariantFile(str(vcf)) as v:
        pos = [rec.pos for rec in v.fetch("q", 0, 12356)]
    assert pos == sorted(pos) and pos


def test_subregion_scores_only_inside(tiny, tmp_path):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not installed")
    res = benchmark_peers(_cfg(tiny, tmp_path, peers=["bcftools"]).model_copy(update={"regions": ["q:1-5000"]}))
    snp = _snp(res["rows"], "bcftools")
    assert 0 < int(snp["TRUTH.TOTAL"]) < 14  # truth outside the region is not counted as missed
    assert int(snp["TRUTH.FN"]) <= 1


def test_missing_binary_is_skipped_with_warning(tiny, tmp_path, monkeypatch, capsys):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not installed")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(shutil.which("bcftools"), bindir / "bcftools")
    monkeypatch.setenv("PATH", str(bindir))  # bcftools only: no freebayes
    res = benchmark_peers(_cfg(tiny, tmp_path / "out"))
    assert res["skipped"] == ["freebayes"] and set(res["vcfs"]) == {"bcftools"}
    assert {r["model"] for r in res["rows"]} == {"bcftools"}
    warn = [ln for ln in capsys.readouterr().err.splitlines() if "freebayes" in ln]
    assert len(warn) == 1 and "not found on PATH" in warn[0] and "skipping" in warn[0]


def test_failing_peer_is_one_line_error(tiny, tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "freebayes"
    fake.write_text("#!/bin/sh\necho 'starting' >&2\necho 'could not open reference' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DvtrainError) as e:
        benchmark_peers(_cfg(tiny, tmp_path / "out", peers=["freebayes"]))
    msg = str(e.value)
    assert "\n" not in msg and "freebayes" in msg and "exit 3" in msg and msg.endswith("could not open reference")


def test_cli_missing_bam_one_line(tiny, tmp_path, capsys):
    rc = main(["benchmark-peers", "--ref", str(tiny / "q.fa"), "--reads", str(tmp_path / "nope.bam"),
               "--regions", "q", "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert err.startswith("dvtrain: error: ") and "nope.bam" in err and "does not exist" in err


def test_cli_runs_bcftools(tiny, tmp_path, capsys):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not installed")
    rc = main(["benchmark-peers", "--ref", str(tiny / "q.fa"), "--reads", str(tiny / "NA12878.chr22.tiny.bam"),
               "--regions", "q", "--truth_vcf", str(tiny / "NA12878.chr22.tiny.giab.vcf"),
               "--output_dir", str(tmp_path), "--peers", "bcftools"])
    out = capsys.readouterr().out
    assert rc == 0 and "| bcftools | SNP |" in out


def test_unknown_peer_rejected(tiny, tmp_path):
    with pytest.raises(Exception, match="peers"):
        _cfg(tiny, tmp_path, peers=["gatk"])


def test_scoring_bed_cuts_the_confident_regions_to_the_called_ones(tmp_path):
    """One rule for peers and call-variants: whole contigs keep the confident BED; parts of
    contigs get it (or the whole contigs) cut to them, merged, in reference order."""
    from dvtrain.bed import read_bed, scoring_bed, write_bed

    lengths = {"chr2": 1000, "chr1": 500}
    confident = tmp_path / "confident.bed"
    write_bed(confident, [("chr1", 0, 100), ("chr1", 200, 400), ("chr2", 50, 900)])
    out = tmp_path / "scored.bed"
    assert scoring_bed(confident, [("chr1", 0, 500)], lengths, out) == confident and not out.exists()
    assert scoring_bed(None, [], lengths, out) is None
    called = [("chr1", 50, 250), ("chr2", 0, 100), ("chr1", 240, 300)]  # overlapping pieces merge
    assert scoring_bed(confident, called, lengths, out) == out
    assert read_bed(out) == [("chr2", 50, 100), ("chr1", 50, 100), ("chr1", 200, 300)]
    assert scoring_bed(None, [("chr2", 10, 20)], lengths, out) == out and read_bed(out) == [("chr2", 10, 20)]
