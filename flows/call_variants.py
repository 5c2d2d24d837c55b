"""On-demand calling: a sample's BAMs + a trained model -> VCF, optionally scored against a truth set.

The same calling as ``dvtrain call-bam``: :func:`dvtrain.call_bam.plan` takes the image shape,
channels and candidate thresholds from the model and refuses options that disagree with it;
here its make_examples shards run as tasks (at most ``max_concurrency`` at once), then
``call``, then ``evaluate`` when ``truth_vcf`` is given (table artifact ``evaluation-calls``).
Deployed as ``call-variants/on-demand`` (deployments/prefect.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from prefect import flow, get_run_logger

from dvtrain.config import CallVariantsConfig, EvaluateConfig
from tasks import call_task, evaluate_task, make_examples_task
from tasks.artifacts import publish_evaluation

from .concurrency import bounded_map


def _check_inputs(config: CallVariantsConfig) -> tuple[list[str], Optional[Path]]:
    """Fail fast on bad inputs; returns (contigs to score, confident BED for scoring).

    Whole contigs are scored inside ``truth_bed`` (or everywhere); sub-contig regions are
    scored inside a BED of those regions (intersected with ``truth_bed``).
    """
    from dvtrain.bed import scoring_bed
    from dvtrain.call_bam import check_inputs, intermediate_dir
    from dvtrain.errors import require_file

    lengths, called = check_inputs(config)  # call-bam's checks: reference, BAMs, regions
    if config.truth_vcf is None:
        return [], None
    require_file(config.truth_vcf, "truth VCF")
    contigs = list(dict.fromkeys(c for c, _, _ in called)) if config.regions else []
    return contigs, scoring_bed(config.truth_bed, called, lengths, intermediate_dir(config) / "scored_regions.bed")


@flow(name="call-variants", log_prints=True)
def call_variants(config: CallVariantsConfig) -> dict:
    """Call ``config.reads`` with ``config.model``; evaluate against ``config.truth_vcf`` when given.

    Args:
        config: model, reference, reads, regions, output VCF (+ gVCF) and (optional) truth set.

    Returns ``{"vcf": path, "gvcf": path or None, "num_variants": n, "evaluation": [hap.py-style rows] or None}``.
    """
    from dvtrain.call_bam import intermediate_dir, plan, replay_command

    steps = plan(config.call_bam_config())  # the model's options, or a one-line refusal
    contigs, scoring_bed = _check_inputs(config)
    for line in steps.notes:
        get_run_logger().warning("%s", line)
    bounded_map(make_examples_task, steps.shards, limit=config.max_concurrency)
    calls = call_task(steps.call, command_line=replay_command(config, steps.options))
    rows = None
    if config.truth_vcf is not None:
        rows = evaluate_task(EvaluateConfig(
            truth_vcf=config.truth_vcf, query_vcf=calls["outfile"], confident_bed=scoring_bed,
            reference=config.ref, output_prefix=intermediate_dir(config) / "eval", regions=contigs,
        ), label="calls")
        publish_evaluation("calls", rows, calls["outfile"], config.truth_vcf, scoring_bed)
    return {"vcf": str(calls["outfile"]), "gvcf": calls.get("gvcf_outfile"), "num_variants": calls.get("num_variants"),
            "evaluation": rows}
