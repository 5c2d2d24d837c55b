"""The case study's report: PASS-filter benchmark rows of each model, as JSON and Markdown.

``write_report(rows, dataset, config, outdir, margins)`` writes ``outdir/report.json`` and
``outdir/report.md`` plus the plot ``outdir/evaluation.png`` (each atomically) and returns the JSON object::

    {"rows": [{"model", "Type", "TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.FP",
               "METRIC.Recall", "METRIC.Precision", "METRIC.F1_Score"}, ...],
     "dataset": {...}, "config": {...}, "margins": {...}}

``margins`` (optional, ``{}`` when not given) is :func:`dvtrain.margin.margin`'s output for
custom over baseline, plus ``"peers": {peer: margin output of custom over that peer}``: each
custom-vs-baseline and custom-vs-peer line of the Markdown then states the paired bootstrap
interval of the F1 difference. The context lines name the confident-region rule
(``config["region_rule"]``, default ``overlap``).

``rows`` are ``evaluate`` summary rows, each with an added ``"model"`` key ("baseline",
"custom" or a peer's name); values may be numbers or the strings of a summary.csv. Only
``Filter == "PASS"`` rows are reported (a row without a Filter counts as PASS). Rows are
ordered baseline, custom, then the other models in first-seen order; INDEL before SNP.
Undefined values (None, "", NaN) become JSON ``null``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from .fileio import atomic_output
from .plots import evaluation_bars

REPORT_KEYS = [
    "model", "Type", "TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.FP",
    "METRIC.Recall", "METRIC.Precision", "METRIC.F1_Score",
]
_INT_KEYS = {"TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.FP"}
_TYPE_ORDER = {"INDEL": 0, "SNP": 1}


def _number(value: Any, key: str, integer: bool) -> Optional[float | int]:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is not a number")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{key}: {value!r} is not a number") from None
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, (int, float)):
        raise ValueError(f"{key}: {value!r} is not a number")
    if integer:
        if float(value) != int(value):
            raise ValueError(f"{key}: {value!r} is not a whole number")
        return int(value)
    return float(value)


def report_rows(rows: list[dict]) -> list[dict]:
    """The PASS rows reduced to REPORT_KEYS with numeric values, in report order."""
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for r in rows:
        if r.get("Filter", "PASS") != "PASS":
            continue
        missing = [k for k in REPORT_KEYS if k not in r]
        if missing:
            raise ValueError(f"report row lacks {missing}: {r!r}")
        if r["Type"] not in _TYPE_ORDER:
            raise ValueError(f"report row Type must be SNP or INDEL, not {r['Type']!r}")
        ident = (str(r["model"]), r["Type"])
        if ident in seen:
            raise ValueError(f"two PASS rows for model {ident[0]!r}, type {ident[1]}")
        seen.add(ident)
        row: dict = {"model": str(r["model"]), "Type": r["Type"]}
        for k in REPORT_KEYS[2:]:
            row[k] = _number(r[k], k, k in _INT_KEYS)
        out.append(row)
    models: list[str] = []
    for r in out:
        if r["model"] not in models:
            models.append(r["model"])
    rank = {m: i for i, m in enumerate(["baseline", "custom"] + [m for m in models if m not in ("baseline", "custom")])}
    out.sort(key=lambda r: (rank[r["model"]], _TYPE_ORDER[r["Type"]]))
    return out


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or v == "":
        return "n/a"
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def format_table(rows: list[dict]) -> str:
    """A Markdown table (model x type: recall, precision, F1 to 4 decimals, TP/FN/FP).

    Takes summary rows (with or without "model"); rows of a Filter other than PASS are
    shown with a Filter column so that ALL and PASS rows are not confused.
    """
    show_filter = any(r.get("Filter", "PASS") != "PASS" for r in rows)
    head = ["Model", "Type"] + (["Filter"] if show_filter else []) + ["Recall", "Precision", "F1", "TP", "FN", "FP"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        def num(k: str, integer: bool = False):
            try:
                return _number(r.get(k), k, integer)
            except ValueError:
                return r.get(k)

        cells = [str(r.get("model", "-")), str(r.get("Type", ""))]
        if show_filter:
            cells.append(str(r.get("Filter", "PASS")))
        cells += [
            _fmt(num("METRIC.Recall")), _fmt(num("METRIC.Precision")), _fmt(num("METRIC.F1_Score")),
            _fmt(num("TRUTH.TP", True)), _fmt(num("TRUTH.FN", True)), _fmt(num("QUERY.FP", True)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _interval(margin: Optional[dict]) -> str:
    if not margin or margin.get("low") is None:
        return ""
    return (f"; {margin['confidence']:.0%} paired bootstrap interval {margin['low']:+.4f} to {margin['high']:+.4f}"
            f" over {margin['blocks']} blocks")


def comparison_lines(rows: list[dict], margins: Optional[dict] = None) -> list[str]:
    """For INDEL and SNP: whether custom beats baseline in F1 (with the bootstrap interval of
    the difference when ``margins`` has it), then where custom stands against each peer
    caller (bcftools, freebayes) in the rows (only pairs present)."""
    by = {(r["model"], r["Type"]): r for r in rows}
    margins = margins or {}
    out = []
    for vtype in ("INDEL", "SNP"):
        b, c = by.get(("baseline", vtype)), by.get(("custom", vtype))
        if b is None or c is None:
            continue
        fb, fc = b["METRIC.F1_Score"], c["METRIC.F1_Score"]
        if fb is None or fc is None:
            out.append(f"- {vtype}: F1 is undefined for {'baseline' if fb is None else 'custom'}; no comparison.")
            continue
        # compare at summary.csv precision (6 decimals): a row read back from CSV and the
        # in-memory row of the same run must tie
        diff = round(round(fc, 6) - round(fb, 6), 6)
        shown = f"{diff:+.4f}" if abs(diff) >= 5e-5 else f"{diff:+.6f}"
        ci = _interval(margins.get(vtype))
        if diff > 0:
            out.append(f"- {vtype}: custom beats baseline in F1 by {shown} ({fc:.4f} vs {fb:.4f}{ci}).")
        elif diff == 0:
            out.append(f"- {vtype}: custom ties baseline in F1 ({fc:.4f}{ci}).")
        else:
            out.append(f"- {vtype}: custom does not beat baseline in F1 ({fc:.4f} vs {fb:.4f}, {shown}{ci}).")
    peers = sorted({r["model"] for r in rows} - {"baseline", "custom"})
    for vtype in ("INDEL", "SNP"):
        c = by.get(("custom", vtype))
        if c is None or c["METRIC.F1_Score"] is None:
            continue
        fc = c["METRIC.F1_Score"]
        for peer in peers:
            p = by.get((peer, vtype))
            if p is None or p["METRIC.F1_Score"] is None:
                continue
            fp = p["METRIC.F1_Score"]
            diff = round(round(fc, 6) - round(fp, 6), 6)
            verdict = "above" if diff > 0 else "level with" if diff == 0 else "below"
            ci = _interval(((margins.get("peers") or {}).get(peer) or {}).get(vtype))
            out.append(f"- {vtype}: custom is {verdict} {peer} in F1 ({fc:.4f} vs {fp:.4f}, {diff:+.4f}{ci}).")
    return out


def _context_lines(dataset: dict, config: dict) -> list[str]:
    """A few readable lines on what was compared (the full provenance is in report.json)."""
    out: list[str] = []
    splits = config.get("splits") or {}
    if splits:
        out.append(f"- splits: train {', '.join(splits.get('train', []))}; tune {', '.join(splits.get('tune', []))}; "
                   f"test (scored) {', '.join(splits.get('test', []))}")
    if "min_coverage" in config:
        rule = config.get("region_rule", "overlap")
        how = ("an event counts when it overlaps it (hap.py, vcfeval --bed-regions)" if rule == "overlap"
               else "an event counts only when it lies wholly inside it (DeepVariant's labeler)")
        out.append(f"- scored inside the truth BED where depth > {config['min_coverage']} (coverage BED); {how}")
    counts = dataset.get("counts") or {}
    if counts:
        out.append(f"- dataset: {dataset.get('generator', 'dataset')} seed {dataset.get('seed')}, "
                   f"{counts.get('genome_bases', '?')} bp, {counts.get('snps', '?')} SNPs, "
                   f"{counts.get('insertions', 0) + counts.get('deletions', 0)} indels, "
                   f"Ti/Tv {counts.get('titv', '?')}, het/hom {counts.get('het_hom_ratio', '?')}")
        for name, r in sorted((counts.get("reads") or {}).items()):
            out.append(f"- reads `{name}`: {r.get('platform', '?')}, mean depth {r.get('mean_depth', '?')}")
    elif dataset:
        out.append("- dataset: " + ", ".join(f"{k}={v}" for k, v in sorted(dataset.items()) if not isinstance(v, (dict, list))))
    return out + ([""] if out else [])


def render_markdown(report: dict) -> str:
    lines = ["# Variant calling benchmark", ""]
    lines += _context_lines(report.get("dataset") or {}, report.get("config") or {})
    lines.append("PASS calls; TP/FN count truth alleles, FP query alleles.")
    lines.append("")
    lines.append(format_table(report["rows"]).rstrip("\n"))
    comp = comparison_lines(report["rows"], report.get("margins"))
    if comp:
        lines += ["", *comp]
    return "\n".join(lines) + "\n"


def write_report(rows: list[dict], dataset: dict, config: dict, outdir: Path,
                 margins: Optional[dict] = None) -> dict:
    """Write outdir/report.json, outdir/report.md and outdir/evaluation.png; return the JSON object."""
    outdir = Path(outdir)
    report = {"rows": report_rows(rows), "dataset": dataset, "config": config, "margins": margins or {}}
    # round-trip through JSON so the returned object is exactly what was written
    text = json.dumps(report, sort_keys=True, indent=2, default=str, allow_nan=False) + "\n"
    report = json.loads(text)
    md = render_markdown(report)
    with atomic_output(outdir / "report.json", suffix=".json") as tmp:
        tmp.write_text(text)
    evaluation_bars(report["rows"], outdir / "evaluation.png")
    with atomic_output(outdir / "report.md", suffix=".md") as tmp:
        tmp.write_text(md + "\n![recall, precision and F1 per model](evaluation.png)\n")
    return report
