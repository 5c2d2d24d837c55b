"""What the flow shows in the Prefect UI: tables, markdown with embedded plots, progress.

Result artifacts (``publish_*``) are created by the flows from task results, not inside
the cached tasks: a cache hit skips the task body, and the run's page would then lack
them. Progress artifacts are live, so the running task creates them.

PNG plots are embedded in markdown artifacts as ``data:image/png;base64`` images: an image
artifact needs a URL the browser can reach, and a local workdir has none. The UI renders
them inline (checked in a real browser against prefect 3.9's UI).
"""

from __future__ import annotations

import base64
import re
import threading
from pathlib import Path
from typing import Optional
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from dvtrain.uri import is_remote


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow only lowercase letters, numbers and dashes."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-") or "artifact"


def png_markdown(png: str | Path, alt: str) -> str:
    """A markdown image with the PNG's bytes inline."""
    from blocks.storage import read_bytes  # a path or an s3:// / gs:// URI

    data = base64.b64encode(read_bytes(png)).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


def publish_table(key: str, rows: list[dict], description: str) -> UUID:
    return create_table_artifact(table=rows, key=artifact_key(key), description=description)


def publish_markdown(key: str, markdown: str, description: str) -> UUID:
    return create_markdown_artifact(markdown=markdown, key=artifact_key(key), description=description)


def class_count_rows(name: str, num_examples: int, class_counts: dict | list) -> list[dict]:
    """One row per genotype class (0 hom-ref, 1 het, 2 hom-alt) with its share; counts as a
    ``{class: n}`` mapping or a list indexed by class."""
    labels = {0: "0 (hom-ref)", 1: "1 (het)", 2: "2 (hom-alt)"}
    pairs = class_counts.items() if isinstance(class_counts, dict) else enumerate(class_counts)
    counts = {int(k): int(v) for k, v in pairs}
    return [
        {"dataset": name, "class": labels.get(c, str(c)), "examples": n,
         "fraction": round(n / num_examples, 4) if num_examples else None}
        for c, n in sorted(counts.items())
    ]


def training_markdown(summary: dict, experiment_dir: str | Path) -> str:
    """Best epoch, per-epoch metrics and the loss/F1 plot of one training run."""
    best = summary.get("best_metrics", {})
    lines = [
        f"# Training: {experiment_dir}",
        "",
        f"{summary.get('train_examples')} train / {summary.get('tune_examples')} tune examples; "
        f"class counts {summary.get('train_class_counts')}; backend {summary.get('backend')}; "
        f"warm start: {summary.get('init_checkpoint') or 'none'}.",
        "",
        (f"**{summary['message']}**" if summary.get("best_is_init_checkpoint") and summary.get("message") else
         f"Best epoch {int(best.get('epoch', -1)) + 1}: tune/f1_weighted {best.get('tune/f1_weighted', float('nan')):.4f} "
         f"-> `{summary.get('best_model')}`"),
        "",
        "| epoch | train/loss | train/accuracy | tune/accuracy | tune/f1_weighted |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in summary.get("history", []):
        lines.append(f"| {int(r['epoch']) + 1} | {r['train/loss']:.4f} | {r['train/categorical_accuracy']:.4f} "
                     f"| {r['tune/accuracy']:.4f} | {r['tune/f1_weighted']:.4f} |")
    plot = summary.get("plot")
    if plot and (is_remote(plot) or Path(plot).is_file()):
        lines += ["", png_markdown(plot, "train loss and tune F1 per epoch")]
    return "\n".join(lines) + "\n"


class Progress:
    """A Prefect progress artifact (0-100 %) for a stage with countable steps."""

    def __init__(self, key: str, total: int, description: str):
        self.total = max(int(total), 1)
        self.done = 0
        self._lock = threading.Lock()
        self.description = description
        self.id: Optional[UUID] = create_progress_artifact(progress=0.0, key=artifact_key(key), description=description)

    def advance(self, steps: int = 1, note: str = "") -> None:
        self.set(self.done + steps, note)

    def set(self, done: int, note: str = "") -> None:
        """Move to ``done`` steps; progress never goes back (callers may report from a
        polling thread whose last sample arrives after the stage's final update)."""
        with self._lock:
            if int(done) < self.done:
                return
            self.done = min(int(done), self.total)
            if self.id is not None:
                text = f"{self.description}: {self.done}/{self.total}" + (f" ({note})" if note else "")
                update_progress_artifact(artifact_id=self.id, progress=100.0 * self.done / self.total, description=text)


# ---------------------------------------------------------------- what the flows publish
def publish_dataset(name: str, shuffled: dict) -> UUID:
    """Table ``dataset-<name>``: class counts of a shuffled dataset (shuffle_task's result)."""
    return publish_table(
        f"dataset-{name}", class_count_rows(name, int(shuffled["num_examples"]), shuffled.get("class_counts", {})),
        f"class counts of the shuffled {name} set -> {shuffled['dataset_config']}",
    )


def publish_training(model: str, summary: dict, experiment_dir: str | Path) -> UUID:
    """Markdown ``training-<model>``: per-epoch metrics and the loss/F1 plot."""
    return publish_markdown(f"training-{model}", training_markdown(summary, experiment_dir),
                            f"loss and tune F1 per epoch: {experiment_dir}")


_FIRST_COLUMNS = ("model", "Type", "METRIC.F1_Score", "METRIC.Recall", "METRIC.Precision",
                  "TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.FP")


def summary_table(rows: list[dict]) -> list[dict]:
    """hap.py summary rows as the UI should show them: the PASS rows (when rows carry a
    Filter; ALL repeats them for call sets whose records all pass), F1, recall and precision
    in the first columns, then the counts, then everything else."""
    if any("Filter" in r for r in rows):
        rows = [r for r in rows if r.get("Filter") == "PASS"] or rows
    out = []
    for r in rows:
        first = {k: r[k] for k in _FIRST_COLUMNS if k in r}
        out.append({**first, **{k: v for k, v in r.items() if k not in first}})
    return out


def publish_evaluation(label: str, rows: list[dict], query_vcf, truth_vcf, confident_bed) -> UUID:
    """Table ``evaluation-<label>``: hap.py summary rows of one call set (PASS, F1 first)."""
    return publish_table(f"evaluation-{label}", summary_table(rows), f"{label}: {query_vcf} vs {truth_vcf} in {confident_bed}")


def publish_report(report: dict, rows: list[dict], outdir: str | Path) -> None:
    """Table ``evaluation-report`` (all rows) and markdown ``report`` with the evaluation plot."""
    from dvtrain.report import render_markdown
    from dvtrain.uri import join

    publish_table("evaluation-report", summary_table(rows), "baseline vs custom model (and peers): PASS rows")
    plot = png_markdown(join(outdir, "evaluation.png"), "recall, precision and F1 per model")
    publish_markdown("report", f"{render_markdown(report)}\n{plot}\n", f"case-study report: {outdir}")
