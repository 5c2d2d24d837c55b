"""Benchmark: trained models vs bcftools and freebayes on held-out data from other simulators,
aligners and real reads.

    python benchmarks/heldout.py --model demo-output/custom/train/best_model.keras [--model M2 ...]
        [--datasets art-bwa,wgsim-minimap2,dwgsim-bwa,real-dv-chr20,real-chr22-tiny]
        [--length 1000000] [--seed 7] [--real-seeds 1,2,3,4,5] [--workdir DIR] [--label current]

The demo trains and tests on reads of dvtrain's own simulator; this scores models on reads
they never saw from other read simulators, error models and aligners, and on real reads.

Simulated datasets: ``dvtrain simulate --config simulate.yaml`` (``seed: SEED``, ``contigs:
{chr1: LENGTH}``, ``profiles: []``: no reads of its own) gives ref.fa, a phased truth.vcf.gz and truth.bed; ``bcftools consensus -H 1`` / ``-H 2`` give
the two haplotypes (contigs renamed h1_chr1 / h2_chr1, so read names never collide), each
sequenced to ~2x (4x in all) as 2x150 pairs from ~350 bp fragments, then aligned to ref.fa with
the truth's sample as read group, ``samtools sort``-ed and indexed:

* ``art-bwa``: ``art_illumina -ss HS25 -p -l 150 -f 2 -m 350 -s 30 -rs S -na``; ``bwa mem``.
* ``wgsim-minimap2``: ``wgsim -S S -N PAIRS -1 150 -2 150 -d 350 -s 30 -r 0 -R 0`` (its default
  uniform 2% error; ``-r 0`` so it adds no variants of its own); ``minimap2 -ax sr``.
* ``dwgsim-bwa``: ``dwgsim -z S -N PAIRS -1 150 -2 150 -d 350 -s 30 -r 0 -y 0 -o 1`` (its default
  2% error; no variants or random reads of its own); ``bwa mem``.

Simulator seeds are SEED*10+1 (haplotype 1) and SEED*10+2; every command is recorded in the
dataset's dataset.json and in the results. Datasets are kept under WORKDIR/data, keyed by
their parameters, and reused.

Real reads, each downsampled with ``samtools view -s SEED.FRACTION`` for every ``--real-seeds``
seed, then ``samtools sort``-ed; each seed is scored and the seeds are pooled (TP / FP / FN
summed; the paired bootstrap resamples 1 kb genome blocks with every seed's counts in them):

* ``real-dv-chr20``: DeepVariant's test BAM (NA12878, ~50x, hg19 chr20:10,000,000-10,100,000)
  at fraction 0.08 (~4x), against its GIAB truth. Scope ``giab``: the GIAB confident BED
  (chr20:10,000,846-10,010,531 only; 45 SNPs, 4 indels). Scope ``window``: the truth VCF's
  whole 100 kb window, where GIAB's confident regions are not given, so some "false
  positives" there may be real variants. The bgzipped reference is decompressed into the
  workdir (freebayes refuses a compressed one).
* ``real-chr22-tiny``: the freebayes test slice (NA12878, ~39x, 12.4 kb of chr22 as contig q,
  14 GIAB het SNPs, no confident BED: the whole contig is scored) at fraction 0.1 (~4x).

Per BAM: ``dvtrain benchmark-peers`` (bcftools, freebayes) and ``dvtrain call-bam`` per model
(the model's own make_examples options) over the same regions; per scope the scoring BED is
``dvtrain coverage`` (depth > 2, inside the truth BED), every call set is scored by ``dvtrain
evaluate --pass-only -r REF -f BED`` and ``dvtrain margin`` gives each model's F1 minus each
peer's with a 95% paired bootstrap interval. Prints one table (the simulated datasets and the
pooled real ones) and one per seed; results go to benchmarks/results/heldout.json under
``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dvtrain import __version__ as DVTRAIN_VERSION  # noqa: E402
from dvtrain.evaluate import read_summary  # noqa: E402
from dvtrain.margin import block_counts, paired_bootstrap  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "heldout.json"
SHARED = ROOT.parent / "shared" / "data"
DV = [sys.executable, "-m", "dvtrain.cli"]
TYPES = ("SNP", "INDEL")
PEERS = ("bcftools", "freebayes")
SIMULATED = {"art-bwa": ("art_illumina", "bwa"), "wgsim-minimap2": ("wgsim", "minimap2"),
             "dwgsim-bwa": ("dwgsim", "bwa")}
REAL = ("real-dv-chr20", "real-chr22-tiny")
APT = {"art_illumina": "art-nextgen-simulation-tools", "bwa": "bwa", "dwgsim": "dwgsim", "minimap2": "minimap2",
       "wgsim": "samtools", "samtools": "samtools", "bcftools": "bcftools"}
VERSION_CMDS = {"samtools": ["samtools", "--version"], "bcftools": ["bcftools", "--version"],
                "freebayes": ["freebayes", "--version"], "bwa": ["bwa"], "minimap2": ["minimap2", "--version"],
                "art_illumina": ["art_illumina"], "wgsim": ["wgsim"], "dwgsim": ["dwgsim", "-h"]}
READ_LEN, FRAGMENT, FRAGMENT_SD, HAP_DEPTH = 150, 350, 30, 2
MIN_MARGIN = 0.02
BOOTSTRAP = {"block_size": 1000, "resamples": 2000, "confidence": 0.95}


class Skip(Exception):
    """A dataset whose tools or data are absent."""


def _run(cmd: list, log: Path, env: dict | None = None) -> None:
    """Run ``cmd`` with its output in ``log``; a failure is one line naming it and the log."""
    cmd = [str(c) for c in cmd]
    what = f"dvtrain {cmd[3]}" if cmd[:3] == DV else cmd[0]
    with open(log, "w") as fh:
        fh.write("$ " + shlex.join(cmd) + "\n")
        fh.flush()
        try:
            rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
        except OSError as e:
            rc = f"{e.strerror}"
    if rc:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()[1:] if ln.strip()]
        last = f": {lines[-1][:200]}" if lines else ""
        sys.exit(f"{Path(sys.argv[0]).name}: {what} failed ({'exit ' if isinstance(rc, int) else ''}{rc}{last}); "
                 f"see {log}")


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise Skip(", ".join(f"{t} not found (Debian: apt-get install {APT.get(t, t)})" for t in missing))


def _version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=60)
    text = p.stdout + p.stderr
    m = re.search(r"[Vv]ersion:?\s+v?(\d\S*)", text) or re.search(r"(\d+\.\d+\S*)", text)
    return m.group(1) if m else None


def _sample(vcf: Path) -> str:
    import pysam

    with pysam.VariantFile(str(vcf)) as f:
        return list(f.header.samples)[0]


def _mean_depth(bam: Path, contig: str, start: int, end: int) -> float:
    import pysam

    with pysam.AlignmentFile(str(bam)) as f:
        return float(np.sum(f.count_coverage(contig, start, end, quality_threshold=0))) / (end - start)


def _sorted_bam(inp: Path, out: Path, log: Path) -> None:
    """``samtools sort`` (sets @HD SO:coordinate) + index; ``out`` appears only when complete."""
    tmp = out.with_name(out.stem + ".tmp.bam")
    _run(["samtools", "sort", "-@", "2", "-o", tmp, inp], log)
    tmp.rename(out)
    _run(["samtools", "index", out], log.with_suffix(".index.log"))


# ---------------------------------------------------------------- datasets
def _genome(work: Path, length: int, seed: int) -> Path:
    """``dvtrain simulate`` without reads: ref.fa, truth.vcf.gz, truth.bed (reused)."""
    d = work / "data" / f"genome-chr1-{length}-s{seed}"
    if not (d / "dataset.json").is_file():
        d.mkdir(parents=True, exist_ok=True)
        (d / "simulate.yaml").write_text(f"seed: {seed}\ncontigs: {{chr1: {length}}}\nprofiles: []\n")
        print(f"simulating genome chr1 {length} bp, seed {seed} ...", flush=True)
        _run([*DV, "simulate", "--config", d / "simulate.yaml", "--outdir", d], d / "simulate.log")
    return d


def _simulate_reads(name: str, work: Path, length: int, seed: int) -> dict:
    """Two haplotypes' reads from an external simulator, aligned by an external aligner."""
    simulator, aligner = SIMULATED[name]
    _need(simulator, aligner, "bcftools", "samtools")
    genome = _genome(work, length, seed)
    ref, truth, truth_bed = genome / "ref.fa", genome / "truth.vcf.gz", genome / "truth.bed"
    params = {"simulator": simulator, "aligner": aligner, "genome_seed": seed, "length": length,
              "read_length": READ_LEN, "fragment": FRAGMENT, "fragment_sd": FRAGMENT_SD,
              "depth_per_haplotype": HAP_DEPTH}
    d = work / "data" / f"{name}-chr1-{length}-s{seed}"
    stamp = d / "dataset.json"
    info = {"ref": str(ref), "truth": str(truth), "scopes": {"coverage": str(truth_bed)},
            "regions": "chr1", "window": ("chr1", 0, length), "units": {"all": str(d / "reads.bam")}}
    if stamp.is_file() and json.loads(stamp.read_text())["params"] == params:
        return {**info, "source": json.loads(stamp.read_text())}
    d.mkdir(parents=True, exist_ok=True)
    print(f"{name}: simulating ~{2 * HAP_DEPTH}x reads ...", flush=True)
    sample = _sample(truth)
    pairs = round(HAP_DEPTH * length / (2 * READ_LEN))
    fastqs: dict[int, list[Path]] = {1: [], 2: []}
    commands = [["dvtrain", "simulate", "--config", genome / "simulate.yaml", "--outdir", genome]]
    for hap in (1, 2):
        hap_fa, s = d / f"hap{hap}.fa", seed * 10 + hap
        cmds = [["bcftools", "consensus", "-H", hap, "-p", f"h{hap}_", "-f", ref, "-o", hap_fa, truth]]
        pre = d / f"hap{hap}"
        if simulator == "art_illumina":
            cmds.append(["art_illumina", "-ss", "HS25", "-i", hap_fa, "-p", "-l", READ_LEN, "-f", HAP_DEPTH,
                         "-m", FRAGMENT, "-s", FRAGMENT_SD, "-rs", s, "-na", "-o", f"{pre}_"])
            reads = [Path(f"{pre}_1.fq"), Path(f"{pre}_2.fq")]
        elif simulator == "wgsim":
            reads = [Path(f"{pre}_1.fq"), Path(f"{pre}_2.fq")]
            cmds.append(["wgsim", "-S", s, "-N", pairs, "-1", READ_LEN, "-2", READ_LEN, "-d", FRAGMENT,
                         "-s", FRAGMENT_SD, "-r", 0, "-R", 0, hap_fa, *reads])
        else:
            cmds.append(["dwgsim", "-z", s, "-N", pairs, "-1", READ_LEN, "-2", READ_LEN, "-d", FRAGMENT,
                         "-s", FRAGMENT_SD, "-r", 0, "-y", 0, "-o", 1, hap_fa, pre])
            reads = [Path(f"{pre}.bwa.read1.fastq.gz"), Path(f"{pre}.bwa.read2.fastq.gz")]
        for k, cmd in enumerate(cmds):
            _run(cmd, d / f"hap{hap}.{k}.{cmd[0]}.log")
        commands += cmds
        fastqs[1].append(reads[0])
        fastqs[2].append(reads[1])
    joined = []
    for end in (1, 2):  # the haplotypes' FASTQs concatenated (gzip members concatenate too)
        path = d / f"reads_{end}.fq{'.gz' if fastqs[end][0].suffix == '.gz' else ''}"
        with open(path, "wb") as out:
            for f in fastqs[end]:
                with open(f, "rb") as fh:
                    shutil.copyfileobj(fh, out)
        joined.append(path)
    rg = f"@RG\\tID:{name}\\tSM:{sample}\\tPL:ILLUMINA"
    sam = d / "aligned.sam"
    if aligner == "bwa":
        index = genome / "bwa" / "ref"
        cmd = ["bwa", "index", "-p", index, ref]
        if not (genome / "bwa" / "done").is_file():  # shared by the bwa datasets of this genome
            index.parent.mkdir(exist_ok=True)
            _run(cmd, genome / "bwa" / "index.log")
            (genome / "bwa" / "done").write_text(shlex.join(map(str, cmd)) + "\n")
        commands.append(cmd)
        cmd = ["bwa", "mem", "-t", 2, "-R", rg, "-o", sam, index, *joined]
    else:
        cmd = ["minimap2", "-ax", "sr", "-t", 2, "-R", rg, "-o", sam, ref, *joined]
    _run(cmd, d / f"{aligner}.log")
    commands += [cmd, ["samtools", "sort", "-@", 2, "-o", d / "reads.bam", sam], ["samtools", "index", d / "reads.bam"]]
    _sorted_bam(sam, d / "reads.bam", d / "sort.log")
    sam.unlink()
    source = {"params": params, "sample": sample, "simulator_seeds": [seed * 10 + 1, seed * 10 + 2],
              "pairs_per_haplotype": pairs if simulator != "art_illumina" else None,
              "mean_depth": round(_mean_depth(d / "reads.bam", "chr1", 0, length), 2),
              "simulate_yaml": (genome / "simulate.yaml").read_text(),
              "commands": [shlex.join(map(str, c)).replace(str(work), "WORKDIR") for c in commands]}
    stamp.write_text(json.dumps(source, indent=2) + "\n")
    return {**info, "source": source}


def _real(name: str, work: Path, seeds: list[int]) -> dict:
    """Downsampled copies of a real BAM (reused), its reference, truth and scopes."""
    _need("samtools")
    d = work / "data" / name
    if name == "real-dv-chr20":
        src = SHARED / "deepvariant-testdata"
        bam, truth = src / "NA12878_S1.chr20.10_10p1mb.bam", src / "test_nist.b37_chr20_100kbp_at_10mb.vcf.gz"
        gz, giab = src / "ucsc.hg19.chr20.unittest.fasta.gz", src / "test_nist.b37_chr20_100kbp_at_10mb.bed"
        fraction, window = "08", ("chr20", 10_000_000, 10_100_000)
        ref = d / "chr20.fa"
        for f in (bam, truth, gz, giab):
            if not f.is_file():
                raise Skip(f"{f} not found (the shared test data sits beside the checkout)")
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "chr20.fa.fai").is_file():  # freebayes needs an uncompressed reference
            _run(["samtools", "faidx", gz, "chr20", "-o", d / "chr20.tmp.fa"], d / "faidx.log")
            (d / "chr20.tmp.fa").rename(ref)
            _run(["samtools", "faidx", ref], d / "faidx.log")
        (d / "window.bed").write_text("%s\t%d\t%d\n" % window)
        scopes = {"giab": str(giab), "window": str(d / "window.bed")}
    else:
        src = SHARED / "na12878-chr22-tiny"
        bam, truth, ref = src / "NA12878.chr22.tiny.bam", src / "NA12878.chr22.tiny.giab.vcf", src / "q.fa"
        if not bam.is_file():
            raise Skip(f"{bam} not found (the shared test data sits beside the checkout)")
        d.mkdir(parents=True, exist_ok=True)
        fraction, window = "1", ("q", 0, int((src / "q.fa.fai").read_text().split()[1]))
        (d / "contig.bed").write_text("%s\t%d\t%d\n" % window)
        scopes = {"contig": str(d / "contig.bed")}
    units, depth = {}, {}
    for seed in seeds:
        out = d / f"s{seed}.0.{fraction}.bam"
        if not Path(f"{out}.bai").is_file():
            _run(["samtools", "view", "-b", "-s", f"{seed}.{fraction}", "-o", d / "view.tmp.bam", bam], d / "view.log")
            _sorted_bam(d / "view.tmp.bam", out, d / "sort.log")
            (d / "view.tmp.bam").unlink()
        units[f"s{seed}"] = str(out)
        depth[f"s{seed}"] = round(_mean_depth(out, *window), 2)
    c, s, e = window
    return {"ref": str(ref), "truth": str(truth), "scopes": scopes, "regions": f"{c}:{s + 1}-{e}", "window": window,
            "units": units, "source": {"bam": str(bam), "fraction": float(f"0.{fraction}"), "mean_depth": depth,
                                       "commands": [f"samtools view -b -s SEED.{fraction} -o view.bam {bam}",
                                                    "samtools sort -o sSEED.bam view.bam", "samtools index sSEED.bam"]}}


# ---------------------------------------------------------------- scoring
def _counts(summary: Path) -> dict:
    """{type: {tp, fn, query_tp, fp}} from a summary.csv's PASS rows (hap.py's counts)."""
    out = {}
    for r in read_summary(summary):
        if r["Filter"] == "PASS" and r["Type"] in TYPES:
            query_tp = (r["QUERY.TOTAL"] or 0) - (r["QUERY.FP"] or 0) - (r["QUERY.UNK"] or 0)
            out[r["Type"]] = {"tp": r["TRUTH.TP"] or 0, "fn": r["TRUTH.FN"] or 0, "query_tp": query_tp,
                              "fp": r["QUERY.FP"] or 0}
    return out


def _metrics(c: dict) -> dict:
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
    precision = c["query_tp"] / (c["query_tp"] + c["fp"]) if c["query_tp"] + c["fp"] else None
    f1 = None
    if recall is not None and precision is not None:
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return {**c, **{k: None if v is None else round(v, 6) for k, v in
                    (("recall", recall), ("precision", precision), ("f1", f1))}}


def _score(d: Path, ds: dict, bam: str, models: list[Path], env: dict, seed: int) -> dict:
    """Peers and models on one BAM, scored in each scope: {scope: {callers, margins, eval_vcfs}}."""
    d.mkdir(parents=True, exist_ok=True)
    ref, truth = ds["ref"], ds["truth"]
    shutil.rmtree(d / "peers", ignore_errors=True)  # no stale VCF of a peer now missing
    _run([*DV, "benchmark-peers", "--ref", ref, "--reads", bam, "--regions", ds["regions"], "--output_dir",
          d / "peers", "--peers", ",".join(PEERS)], d / "peers.log", env)
    vcfs = {p: d / "peers" / f"{p}.vcf.gz" for p in PEERS if (d / "peers" / f"{p}.vcf.gz").is_file()}
    for k, model in enumerate(models):
        vcfs[f"model{k}"] = d / f"model{k}.vcf.gz"
        _run([*DV, "call-bam", "--model", model, "--ref", ref, "--reads", bam, "--output_vcf", vcfs[f"model{k}"],
              "--regions", ds["regions"], "--num_shards", 2, "--seed", seed], d / f"model{k}.call-bam.log", env)
    out = {}
    for scope, truth_bed in ds["scopes"].items():
        s = d / scope
        s.mkdir(exist_ok=True)
        bed = s / "scoring.bed"
        _run([*DV, "coverage", "--reads", bam, "--truth_bed", truth_bed, "--output_bed", bed,
              "--merged_bam", s / "merged.bam"], s / "coverage.log", env)
        for f in (s / "merged.bam", s / "merged.bam.bai"):
            f.unlink(missing_ok=True)
        callers, evals = {}, {}
        for name, vcf in vcfs.items():
            _run([*DV, "evaluate", truth, vcf, "-r", ref, "-f", bed, "-o", s / f"{name}.eval", "--pass-only"],
                 s / f"{name}.eval.log", env)
            callers[name] = {t: _metrics(c) for t, c in _counts(s / f"{name}.eval.summary.csv").items()}
            evals[name] = str(s / f"{name}.eval.vcf.gz")
        margins: dict = {}
        for m in (n for n in vcfs if n.startswith("model")):
            for p in (n for n in vcfs if not n.startswith("model")):
                js = s / f"{m}-vs-{p}.margin.json"
                _run([*DV, "margin", evals[m], evals[p], "-o", js, "--seed", seed,
                      *(f for k, v in BOOTSTRAP.items() for f in (f"--{k}", v))], s / f"{m}-vs-{p}.margin.log", env)
                margins.setdefault(m, {})[p] = {t: v for t, v in json.loads(js.read_text()).items() if t in TYPES}
        out[scope] = {"bed_bases": sum(int(ln.split()[2]) - int(ln.split()[1]) for ln in bed.read_text().splitlines()
                                       if ln.strip()),
                      "callers": callers, "margins": margins, "eval_vcfs": evals}
    return out


def _pool(units: list[dict], seed: int) -> dict:
    """Seeds pooled: counts summed; the bootstrap over 1 kb genome blocks carrying every seed's counts."""
    callers: dict = {}
    for u in units:
        for name, types in u["callers"].items():
            for t, c in types.items():
                acc = callers.setdefault(name, {}).setdefault(t, dict.fromkeys(("tp", "fn", "query_tp", "fp"), 0))
                for k in acc:
                    acc[k] += c[k]
    callers = {n: {t: _metrics(c) for t, c in types.items()} for n, types in callers.items()}

    def blocks(name: str) -> dict:
        acc = {t: defaultdict(lambda: np.zeros(4, np.int64)) for t in TYPES}
        for u in units:
            for t, per_block in block_counts(u["eval_vcfs"][name], BOOTSTRAP["block_size"]).items():
                for key, c in per_block.items():
                    acc[t][key] += c
        return acc

    margins: dict = {}
    for m in units[0]["margins"]:
        bm = blocks(m)
        for p in units[0]["margins"][m]:
            bp = blocks(p)
            res = {t: paired_bootstrap(bm[t], bp[t], resamples=BOOTSTRAP["resamples"], seed=seed,
                                       confidence=BOOTSTRAP["confidence"]) for t in TYPES}
            margins.setdefault(m, {})[p] = {t: v for t, v in res.items() if v is not None}
    return {"seeds": len(units), "callers": callers, "margins": margins}


# ---------------------------------------------------------------- report
def _beats(margins: dict, typ: str) -> str:
    """'yes' when F1 beats every peer by >= MIN_MARGIN; ', CI>0' when every interval is above 0."""
    ms = [m.get(typ) for m in margins.values()]
    if not ms or any(m is None or m["difference"] is None for m in ms):
        return "-"
    if min(m["difference"] for m in ms) < MIN_MARGIN:
        return "no"
    return "yes, CI>0" if min(m["low"] for m in ms) > 0 else "yes"


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _print_table(rows: list[tuple[str, dict]], peers: list[str]) -> None:
    vs = [f"F1 - {p} [95%]" for p in peers]
    hdr = (f"{'dataset':34} {'caller':9} {'type':5} {'TP':>6} {'FP':>5} {'FN':>5} {'recall':>6} {'prec':>6} "
           f"{'F1':>6} " + " ".join(f"{v:>24}" for v in vs) + f" {'beats both by ' + str(MIN_MARGIN):>18}")
    print(hdr)
    print("-" * len(hdr))
    for where, res in rows:
        for name, types in res["callers"].items():
            for t in TYPES:
                if t not in types:
                    continue
                c = types[t]
                line = (f"{where:34} {name:9} {t:5} {c['tp']:6d} {c['fp']:5d} {c['fn']:5d} {_f(c['recall']):>6} "
                        f"{_f(c['precision']):>6} {_f(c['f1']):>6}")
                m = res["margins"].get(name)
                if m is None:
                    print(line)
                    continue
                for p in peers:
                    x = m.get(p, {}).get(t)
                    cell = "-" if x is None or x["difference"] is None else \
                        f"{x['difference']:+.3f} [{x['low']:+.3f},{x['high']:+.3f}]"
                    line += f" {cell:>24}"
                print(line + f" {_beats(m, t):>18}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, type=Path, help="a .keras model (repeat)")
    ap.add_argument("--datasets", default=",".join([*SIMULATED, *REAL]), help="comma-separated")
    ap.add_argument("--length", type=int, default=1_000_000, help="simulated contig chr1, bp")
    ap.add_argument("--seed", type=int, default=7, help="genome seed; simulator and bootstrap seeds derive from it")
    ap.add_argument("--real-seeds", default="1,2,3,4,5", help="downsampling seeds of the real BAMs")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dvtrain-bench-heldout")
    ap.add_argument("--label", default="current")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in (*SIMULATED, *REAL)]
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join([*SIMULATED, *REAL])}")
    models = [m.resolve() for m in args.model]
    for m in models:
        if not m.is_file():
            sys.exit(f"{m}: model not found")
    real_seeds = [int(s) for s in args.real_seeds.split(",")]
    work = args.workdir.resolve()
    env = dict(os.environ)
    t0 = time.monotonic()

    results, skipped, main_rows, seed_rows = {}, {}, [], []
    for name in datasets:
        t1 = time.monotonic()
        try:
            if name in SIMULATED:
                ds = _simulate_reads(name, work, args.length, args.seed)
            else:
                ds = _real(name, work, real_seeds)
        except Skip as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            skipped[name] = str(e)
            continue
        run_dir = work / "runs" / args.label / name
        scored = {}
        for unit, bam in ds["units"].items():
            print(f"{name} {unit}: peers, {len(models)} model(s), evaluate ...", flush=True)
            scored[unit] = _score(run_dir / unit, ds, bam, models, env, args.seed)
        scopes = {}
        for scope in ds["scopes"]:
            per = {u: scored[u][scope] for u in scored}
            if name in SIMULATED:
                scopes[scope] = per["all"]
                main_rows.append((name, per["all"]))
            else:
                pooled = _pool(list(per.values()), args.seed)
                scopes[scope] = {"pooled": pooled, "seeds": per}
                main_rows.append((f"{name}/{scope} pooled x{len(per)}", pooled))
                seed_rows += [(f"{name}/{scope} {u} {ds['source']['mean_depth'][u]:.1f}x", per[u]) for u in per]
        results[name] = {"source": ds["source"], "ref": ds["ref"], "truth": ds["truth"], "regions": ds["regions"],
                         "truth_beds": ds["scopes"], "scopes": scopes, "wall_s": round(time.monotonic() - t1, 1)}

    if not results:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        sys.exit(f"{Path(sys.argv[0]).name}: no dataset could be scored ({why})")
    peers = [p for p in PEERS if any(p in r["callers"] for _, r in main_rows)]
    print()
    _print_table(main_rows, peers)
    if seed_rows:
        print("\nper downsampling seed:")
        _print_table(seed_rows, peers)
    for k, m in enumerate(models):
        print(f"model{k}: {m}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    wall = round(time.monotonic() - t0, 1)
    print(f"wall {wall} s")

    versions = {t: _version(c) for t, c in VERSION_CMDS.items()}
    versions["dvtrain"] = DVTRAIN_VERSION
    git = shutil.which("git")
    commit = git and subprocess.run([git, "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                                    text=True).stdout.strip() or None
    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.setdefault("runs", {})[args.label] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]), "commit": commit, "versions": versions,
        "parameters": {"length": args.length, "seed": args.seed, "real_seeds": real_seeds, "bootstrap": BOOTSTRAP,
                       "min_margin": MIN_MARGIN},
        "models": {f"model{k}": str(m) for k, m in enumerate(models)},
        "datasets": results, "skipped": skipped, "wall_s": wall,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
