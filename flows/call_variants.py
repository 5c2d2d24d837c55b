"""On-demand calling: a sample's BAMs + a trained model -> VCF, optionally scored against a truth set.

``make_examples`` (calling mode, ``shards`` shards, at most ``max_concurrency`` at once) ->
``call`` -> ``evaluate`` (when ``truth_vcf`` is given; table artifact ``evaluation-calls``).
Deployed as ``call-variants/on-demand`` (deployments/prefect.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from prefect import flow

from dvtrain.config import CallConfig, CallVariantsConfig, EvaluateConfig, MakeExamplesConfig
from tasks import call_task, evaluate_task, make_examples_task
from tasks.artifacts import publish_evaluation

from .concurrency import bounded_map


def _check_inputs(config: CallVariantsConfig) -> tuple[list[str], Optional[Path]]:
    """Fail fast on bad inputs; returns (contigs to score, confident BED for scoring).

    Whole contigs are scored inside ``truth_bed`` (or everywhere); sub-contig regions are
    scored inside a BED of those regions (intersected with ``truth_bed``).
    """
    from dvtrain.bed import scoring_bed
    from dvtrain.errors import require_file
    from dvtrain.genome import contig_lengths, open_bams, parse_regions

    lengths = contig_lengths(config.reference)
    called = parse_regions(config.regions, lengths)
    for bam in open_bams(list(config.reads), lengths):
        bam.close()
    require_file(config.model, "model")
    if config.truth_vcf is None:
        return [], None
    require_file(config.truth_vcf, "truth VCF")
    contigs = list(dict.fromkeys(c for c, _, _ in called)) if config.regions else []
    return contigs, scoring_bed(config.truth_bed, called, lengths, config.workdir / "scored_regions.bed")


@flow(name="call-variants", log_prints=True)
def call_variants(config: CallVariantsConfig) -> dict:
    """Call ``config.reads`` with ``config.model``; evaluate against ``config.truth_vcf`` when given.

    Args:
        config: reference, reads, model, regions, output folder and (optional) truth set.

    Returns ``{"vcf": path, "num_variants": n, "evaluation": [hap.py-style rows] or None}``.
    """
    from dvtrain.pileup import model_channels, model_image_size

    config = config.model_copy(update={"workdir": Path(config.workdir).resolve()})
    contigs, scoring_bed = _check_inputs(config)
    channels = config.channels if config.channels is not None else model_channels(config.model)
    height, width = model_image_size(config.model)  # the model takes only images of its own size
    spec = str(config.workdir / "examples" / f"calling.tfrecord@{config.shards}.gz")
    bounded_map(make_examples_task, [
        MakeExamplesConfig(mode="calling", ref=config.reference, reads=config.reads, examples=spec,
                           task=i, regions=config.regions, seed=config.seed,
                           vsc_min_count_snps=config.vsc_min_count_snps,
                           vsc_min_count_indels=config.vsc_min_count_indels,
                           vsc_min_snp_lod=config.vsc_min_snp_lod, channels=channels,
                           pileup_image_height=height, pileup_image_width=width)
        for i in range(config.shards)
    ], limit=config.max_concurrency)
    calls = call_task(CallConfig(
        examples=spec, checkpoint=config.model, ref=config.reference,
        outfile=config.workdir / "calls.vcf.gz", sample_name=config.sample_name, batch_size=config.batch_size,
        reads=config.reads if config.sample_name is None else [],  # the sample named by the BAMs' read groups
    ))
    rows = None
    if config.truth_vcf is not None:
        rows = evaluate_task(EvaluateConfig(
            truth_vcf=config.truth_vcf, query_vcf=calls["outfile"], confident_bed=scoring_bed,
            reference=config.reference, output_prefix=config.workdir / "eval", regions=contigs,
        ), label="calls")
        publish_evaluation("calls", rows, calls["outfile"], config.truth_vcf, scoring_bed)
    return {"vcf": str(calls["outfile"]), "num_variants": calls.get("num_variants"), "evaluation": rows}
