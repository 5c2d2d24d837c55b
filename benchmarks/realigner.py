"""What DeepVariant's realigner (``realign_reads``, on in ``preset: deepvariant``) does to
INDEL candidates and to make_examples' time, at ~30x and ~4x on simulated data it never saw.

    python benchmarks/realigner.py [--length 200000] [--workdir DIR] [--json PATH]

Data: the 1 Mb ``sim`` contig of benchmarks/make_examples.py (``dvtrain simulate``, seed 7:
generic ~30x 150 bp and lowcov ~4x 100 bp BAMs, truth VCF + confident BED), simulated once
into ``--workdir`` and reused; only its first ``--length`` bp are used.

For each coverage, make_examples (calling mode, ``preset: deepvariant``, one process) runs
with ``realign_reads`` off and on. Every candidate site becomes a 0/1 record of a query VCF,
scored by ``dvtrain evaluate`` (hap.py's rules) against the truth inside the confident BED:
INDEL recall is the share of true indels make_examples proposes at all (a caller cannot call
what is not a candidate); INDEL candidates per true indel is how much work the model gets.
This measures candidates, not a trained model's calls: a model trained on realigned examples
was not run (see docs/pileup.md). Prints a table; writes JSON with machine, date and command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def simulated(workdir: Path, length: int = 1_000_000, seed: int = 7) -> Path:
    """The make_examples benchmark's 1 Mb sim data (simulated there when absent)."""
    from make_examples import _simulate  # benchmarks/make_examples.py

    d = workdir / f"sim-chr1-{length}-s{seed}"
    _simulate(d, {"chr1": length}, seed, dict(os.environ))
    return d


def candidates_vcf(examples: str, ref_fai: Path, out: Path) -> int:
    """A VCF of ``examples``' candidate sites genotyped from their allele depths alone (the
    VariantCall's AD): the top alt (and a second one at >= 30 %) at allele fraction >= 0.75
    is 1/1, else 0/1 (1/2 for two alts). A stand-in for a model that reads the pileups."""
    from dvtrain.example_proto import decode_example, decode_variant, variant_calls
    from dvtrain.fileio import read_tfrecords, sharded_paths

    sites: dict[tuple, tuple] = {}
    for path in sharded_paths(examples):
        for raw in read_tfrecords(path):
            buf = bytes(decode_example(raw, {"variant/encoded"})["variant/encoded"][0])
            v = decode_variant(buf)
            key = (v["reference_name"], v["start"], v["reference_bases"])
            if key not in sites:
                info = variant_calls(buf)[0]["info"]
                sites[key] = (v["alternate_bases"], [int(x) for x in info.get("AD", [])])
    contigs = [line.split("\t")[:2] for line in ref_fai.read_text().splitlines()]
    with open(out, "w") as f:
        f.write("##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={n}>\n" for c, n in contigs))
        f.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        f.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n")
        for (chrom, start, ref), (alts, ad) in sorted(sites.items()):
            depth = max(sum(ad), 1)
            order = sorted(range(len(alts)), key=lambda i: -(ad[i + 1] if i + 1 < len(ad) else 0))
            frac = [(ad[i + 1] if i + 1 < len(ad) else 0) / depth for i in order]
            if len(order) > 1 and frac[1] >= 0.3:
                chosen, gt = [alts[order[0]], alts[order[1]]], "1/2"
            else:
                chosen, gt = [alts[order[0]]], "1/1" if frac[0] >= 0.75 else "0/1"
            f.write(f"{chrom}\t{start + 1}\t.\t{ref}\t{','.join(chosen)}\t50\tPASS\t.\tGT\t{gt}\n")
    return len(sites)


def run(sim: Path, length: int, work: Path) -> list[dict]:
    from dvtrain.config import EvaluateConfig, MakeExamplesConfig
    from dvtrain.evaluate import evaluate
    from dvtrain.make_examples import make_examples

    rows = []
    region = f"chr1:1-{length}"
    bed = work / "confident.bed"  # the truth's confident regions inside the region used
    with open(sim / "truth.bed") as src, open(bed, "w") as out:
        for line in src:
            c, a, b = line.split()[:3]
            if c == "chr1" and int(a) < length:
                out.write(f"{c}\t{a}\t{min(int(b), length)}\n")
    for bam, cov in (("generic", "~30x"), ("lowcov", "~4x")):
        for realign in (False, True):
            tag = f"{bam}-{'on' if realign else 'off'}"
            t0 = time.perf_counter()
            res = make_examples(MakeExamplesConfig(
                mode="calling", preset="deepvariant", realign_reads=realign, ref=sim / "ref.fa",
                reads=[sim / f"{bam}.bam"], regions=[region], examples=str(work / f"{tag}.tfrecord.gz")))
            seconds = time.perf_counter() - t0
            vcf = work / f"{tag}.vcf"
            n_sites = candidates_vcf(res["path"], sim / "ref.fa.fai", vcf)
            summary = evaluate(EvaluateConfig(truth_vcf=sim / "truth.vcf.gz", query_vcf=vcf, confident_bed=bed,
                                              reference=sim / "ref.fa", output_prefix=work / tag))
            got = {r["Type"]: r for r in summary if r["Filter"] == "ALL"}
            indel, snp = got["INDEL"], got["SNP"]
            rows.append({"coverage": cov, "bam": bam, "realign_reads": realign, "make_examples_s": round(seconds, 1),
                         "reads_realigned": res["counts"].get("reads_realigned"), "candidate_sites": n_sites,
                         "indel_truth": indel["TRUTH.TOTAL"], "indel_recall": indel["METRIC.Recall"],
                         "indel_precision": indel["METRIC.Precision"], "indel_f1": indel["METRIC.F1_Score"],
                         "snp_f1": snp["METRIC.F1_Score"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=200_000, help="bp of the simulated contig used")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dvtrain-bench-make-examples")
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "realigner.json")
    args = ap.parse_args(argv)
    sim = simulated(args.workdir)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(sim, args.length, Path(tmp))
    print(f"{'coverage':8} {'realigner':9} {'seconds':>8} {'realigned':>9} {'sites':>6} {'true indels':>11} "
          f"{'INDEL recall':>12} {'INDEL prec':>10} {'INDEL F1':>8} {'SNP F1':>7}")
    for r in rows:
        print(f"{r['coverage']:8} {'on' if r['realign_reads'] else 'off':9} {r['make_examples_s']:>8} "
              f"{r['reads_realigned'] or 0:>9} {r['candidate_sites']:>6} {r['indel_truth']:>11} "
              f"{r['indel_recall']:>12.4f} {r['indel_precision']:>10.4f} {r['indel_f1']:>8.4f} {r['snp_f1']:>7.4f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.node()} {platform.platform()} {platform.processor() or platform.machine()}",
        "command": f"python benchmarks/realigner.py --length {args.length}", "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
