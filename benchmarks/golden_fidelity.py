"""How close dvtrain's make_examples comes to DeepVariant's own examples on real reads.

DeepVariant 1.5 made ``golden.training_examples.tfrecord.gz`` and
``golden.calling_examples.tfrecord.gz`` from NA12878 reads over chr20:10,000,000-10,010,000
(``../shared/data/deepvariant-testdata``; options in its run_info.pbtxt: 6 channels, 100
rows, realigner on). This runs dvtrain's make_examples on the same BAM (as shipped: no @HD
SO), reference, truth and BED with ``preset: deepvariant``, and compares site by site:
candidates (golden sites reproduced, extra sites), labels, pixel agreement per channel, and
byte-identical images. DeepVariant's records are decoded with TensorFlow's own
``tf.train.Example``; ours too.

    python benchmarks/golden_fidelity.py [--json benchmarks/results/golden_fidelity.json]

Prints a table; writes JSON (the machine, date and command included).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "deepvariant-testdata"
REGION = "chr20:10000000-10010000"
CHANNEL_NAMES = ["read_base", "base_quality", "mapping_quality", "strand", "read_supports_variant",
                 "base_differs_from_ref"]
# DeepVariant 1.5's options for the golden files (run_info.pbtxt) are its defaults: the preset
OPTIONS = {"preset": "deepvariant"}


def read_examples(path: str | Path) -> dict[tuple, dict]:
    """{(start, ref, alts, alt indices): {image, label, shape}} decoded with TensorFlow."""
    import tensorflow as tf

    from dvtrain.example_proto import decode_alt_allele_indices, decode_variant

    out = {}
    for raw in tf.data.TFRecordDataset(str(path), compression_type="GZIP"):
        ex = tf.train.Example.FromString(raw.numpy())
        f = ex.features.feature
        var = decode_variant(f["variant/encoded"].bytes_list.value[0])
        sub = tuple(decode_alt_allele_indices(f["alt_allele_indices/encoded"].bytes_list.value[0]))
        shape = tuple(f["image/shape"].int64_list.value)
        img = np.frombuffer(f["image/encoded"].bytes_list.value[0], np.uint8).reshape(shape)
        key = (var["start"], var["reference_bases"], tuple(var["alternate_bases"]), sub)
        out[key] = {"image": img, "label": int(f["label"].int64_list.value[0]) if "label" in f else None}
    return out


def compare(golden: dict, ours: dict) -> dict:
    sites_g = {k[:3] for k in golden}
    sites_o = {k[:3] for k in ours}
    shared = sorted(set(golden) & set(ours))
    px_equal = np.zeros(len(CHANNEL_NAMES))
    px_total = 0
    identical = {"snp": 0, "indel": 0}
    counted = {"snp": 0, "indel": 0}
    labels_equal = 0
    for k in shared:
        a, b = golden[k]["image"], ours[k]["image"]
        if a.shape != b.shape:
            raise SystemExit(f"image shape differs at {k}: {a.shape} vs {b.shape}")
        px_equal += (a == b).reshape(-1, a.shape[-1]).sum(axis=0)
        px_total += a.shape[0] * a.shape[1]
        kind = "snp" if len(k[1]) == 1 and all(len(x) == 1 for x in k[2]) else "indel"
        counted[kind] += 1
        identical[kind] += bool(np.array_equal(a, b))
        labels_equal += golden[k]["label"] == ours[k]["label"]
    return {
        "golden_sites": len(sites_g), "our_sites": len(sites_o), "golden_sites_reproduced": len(sites_g & sites_o),
        "missing_sites": sorted(f"{s + 1}:{r}>{','.join(a)}" for s, r, a in sites_g - sites_o),
        "extra_sites": sorted(f"{s + 1}:{r}>{','.join(a)}" for s, r, a in sites_o - sites_g),
        "shared_examples": len(shared), "labels_equal": labels_equal,
        "pixel_agreement": float(px_equal.sum() / (px_total * len(CHANNEL_NAMES))) if px_total else None,
        "pixel_agreement_by_channel": {n: float(v / px_total) for n, v in zip(CHANNEL_NAMES, px_equal)} if px_total else {},
        "identical_images": identical, "images_compared": counted,
    }


def run(workdir: Path) -> dict:
    from dvtrain.config import MakeExamplesConfig
    from dvtrain.make_examples import make_examples

    common = dict(ref=DATA / "ucsc.hg19.chr20.unittest.fasta.gz", reads=[DATA / "NA12878_S1.chr20.10_10p1mb.bam"],
                  regions=[REGION], **OPTIONS)
    results = {}
    for mode in ("training", "calling"):
        extra = dict(truth_variants=DATA / "test_nist.b37_chr20_100kbp_at_10mb.vcf.gz",
                     confident_regions=DATA / "test_nist.b37_chr20_100kbp_at_10mb.bed") if mode == "training" else {}
        t0 = time.perf_counter()
        res = make_examples(MakeExamplesConfig(mode=mode, examples=str(workdir / f"{mode}.tfrecord.gz"), **common, **extra))
        seconds = time.perf_counter() - t0
        results[mode] = compare(read_examples(DATA / f"golden.{mode}_examples.tfrecord.gz"), read_examples(res["path"]))
        results[mode].update(make_examples_seconds=round(seconds, 2), reads_realigned=res["counts"].get("reads_realigned"))
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "golden_fidelity.json")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no DeepVariant test data at {DATA}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        results = run(Path(tmp))
    print(f"{'mode':9} {'golden':>6} {'found':>5} {'extra':>5} {'labels':>7} {'pixels':>8} {'SNP same':>9} {'indel same':>10}")
    for mode, r in results.items():
        labels = f"{r['labels_equal']}/{r['shared_examples']}" if mode == "training" else "-"
        print(f"{mode:9} {r['golden_sites']:>6} {r['golden_sites_reproduced']:>5} {len(r['extra_sites']):>5} {labels:>7} "
              f"{r['pixel_agreement']:>8.4f} {r['identical_images']['snp']:>4}/{r['images_compared']['snp']:<4} "
              f"{r['identical_images']['indel']:>5}/{r['images_compared']['indel']:<4}")
        print("          by channel: " + ", ".join(f"{k} {v:.4f}" for k, v in r["pixel_agreement_by_channel"].items()))
        print(f"          missing {r['missing_sites']}; extra {r['extra_sites']}")
        print(f"          make_examples {r['make_examples_seconds']} s, {r['reads_realigned']} reads realigned")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "machine": f"{platform.node()} {platform.platform()} "
                                                              f"{platform.processor() or platform.machine()}",
        "command": "python benchmarks/golden_fidelity.py", "options": OPTIONS,
        "results": results,
    }, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
