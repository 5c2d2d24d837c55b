"""PNG plots of a training run and of an evaluation (matplotlib, Agg; byte-deterministic).

The images carry no timestamp or software metadata, so the same numbers give the same
bytes, and the Prefect layer can embed them in artifacts.
"""

from __future__ import annotations

from pathlib import Path

from .fileio import atomic_output

_PNG_METADATA = {"Software": None}  # no matplotlib version string: same numbers -> same bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata=_PNG_METADATA)
    plt.close(fig)
    return Path(path)


def training_curves(history: list[dict], path: str | Path, title: str = "training") -> Path:
    """Train loss and tune F1 (weighted) per epoch, from ``train_summary.json``'s history."""
    plt = _pyplot()
    epochs = [int(r["epoch"]) + 1 for r in history]
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(8, 3.2))
    ax_loss.plot(epochs, [r["train/loss"] for r in history], marker="o", color="#1f77b4")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="loss")
    ax_f1.plot(epochs, [r["tune/f1_weighted"] for r in history], marker="o", color="#d62728")
    if history:
        best = max(history, key=lambda r: r["tune/f1_weighted"])
        ax_f1.axvline(int(best["epoch"]) + 1, color="grey", linestyle=":", label=f"best (epoch {int(best['epoch']) + 1})")
        ax_f1.legend(loc="lower right", fontsize=8)
    ax_f1.set(xlabel="epoch", ylabel="tune F1 (weighted)", title="tune/f1_weighted", ylim=(0, 1))
    for ax in (ax_loss, ax_f1):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(path))


def evaluation_bars(rows: list[dict], path: str | Path, filter_: str = "PASS") -> Path:
    """Recall, precision and F1 per model and variant type (hap.py summary rows with a
    ``model`` column, e.g. the report's rows), as grouped bars. A row without ``Filter``
    counts as PASS (the report keeps only PASS rows and drops the column)."""
    plt = _pyplot()
    picked = [r for r in rows if r.get("Filter", "PASS") == filter_]
    models = list(dict.fromkeys(str(r.get("model", "")) for r in picked))
    types = ["SNP", "INDEL"]
    metrics = [("METRIC.Recall", "recall"), ("METRIC.Precision", "precision"), ("METRIC.F1_Score", "F1")]
    fig, axes = plt.subplots(1, len(types), figsize=(8, 3.2), sharey=True)
    width = 0.8 / max(len(models), 1)
    for ax, vtype in zip(axes, types):
        for m, model in enumerate(models):
            row = next((r for r in picked if r.get("model", "") == model and r.get("Type") == vtype), {})
            values = [_number(row.get(col)) for col, _ in metrics]
            xs = [i + (m - (len(models) - 1) / 2) * width for i in range(len(metrics))]
            bars = ax.bar(xs, values, width=width, label=model or "query")
            for bar, v in zip(bars, values):
                ax.annotate(f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(metrics)), [name for _, name in metrics])
        ax.set(title=vtype, ylim=(0, 1.1))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"evaluation ({filter_})")
    fig.tight_layout()
    return _save(fig, Path(path))


def _number(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if v == v else 0.0  # NaN -> 0
