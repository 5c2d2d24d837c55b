"""The case study: train a custom low-coverage model on top of a baseline and compare them.

Composition only: every step is a task from :mod:`tasks` or the training subflow.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Optional

from prefect import flow
from prefect.runtime import flow_run

from dvtrain.config import CaseStudyConfig, CoverageConfig, MarginConfig, PeersConfig
from blocks.storage import read_bytes, use_storage_blocks
from dvtrain import layout, uri
from dvtrain.report import render_markdown
from dvtrain.validate import check_case_study
from tasks import (
    call_task,
    coverage_task,
    evaluate_task,
    happy_task,
    margin_task,
    peers_task,
    provenance_task,
    publish_task,
    report_task,
    shuffle_task,
)
from tasks.artifacts import publish_dataset, publish_evaluation, publish_report, publish_training
from tasks.staging import check_remote_inputs

from .shards import run_shards
from .naming import case_study_run_name
from .training import submit_training


def _make_examples(config: CaseStudyConfig, model: str, mode: str, reads: list[Path],
                   splits: list[str], confident_bed: Optional[Path] = None) -> dict[str, str]:
    """All shards of all ``splits`` through one bounded map; returns {split: shard spec}."""
    specs, configs = layout.make_examples_configs(config, model, mode, reads, splits, confident_bed)
    run_shards(config, configs, f"{model}-{mode}")  # threads or Dask (config.task_runner)
    return specs


def _augmented(config: CaseStudyConfig, model: str, confident_bed: Path) -> list[str]:
    """A model's extra training-split passes (layout.augment_configs); their shard specs."""
    specs, configs = layout.augment_configs(config, model, confident_bed)
    if configs:
        run_shards(config, configs, f"{model}-augment")
    return specs


def _train(config: CaseStudyConfig, model: str, reads: list[Path], confident_bed: Path,
           epochs: int, init_checkpoint: Optional[Path]) -> Path:
    """Examples (+ augmentation passes) -> shuffle -> training subflow; returns the best model's path."""
    specs = _make_examples(config, model, "training", reads, ["train", "tune"], confident_bed)
    extra = {"train": _augmented(config, model, confident_bed)}
    datasets = {}
    for split, spec in specs.items():
        shuffled = shuffle_task(layout.shuffle_config(config, model, split, [spec, *extra.get(split, [])]))
        publish_dataset(split if model == "custom" else f"{model}-{split}", shuffled)
        datasets[split] = shuffled["dataset_config"]
    train = layout.train_config(config, model, datasets, epochs, init_checkpoint)
    trained = submit_training(train, config.training_work_pool, storage_blocks=config.storage_blocks,
                              engine=config.container_engine())
    if trained.get("history"):  # the curves on this run's page too, not only on the training subflow's
        publish_training(model, trained, train.experiment_dir)
    return uri.location(trained["best_model"])


def _evaluate(config: CaseStudyConfig, model: str, checkpoint: Path, spec: str, confident_bed: Path) -> list[dict]:
    """Call the test examples ``spec`` with ``checkpoint``; score inside the coverage BED."""
    engine = config.container_engine()
    calls = call_task(layout.call_config(config, model, checkpoint, spec), engine)
    rows = evaluate_task(layout.evaluate_config(config, model, calls["outfile"], confident_bed), label=model)
    publish_evaluation(model, rows, calls["outfile"], config.truth_vcf, confident_bed)
    if engine is not None and engine.happy:  # hap.py itself, next to our evaluator
        happy_task(layout.evaluate_config(config, model, calls["outfile"], confident_bed, happy=True), engine)
    return [{"model": model, **row} for row in rows]


def _peers(config: CaseStudyConfig, confident_bed: Path) -> list[dict]:
    """Peer callers on the test split's low-coverage reads, scored in the same coverage BED."""
    from dvtrain.peers import available

    out = peers_task(PeersConfig(
        ref=config.reference, reads=config.reads, regions=config.splits.test, truth_vcf=config.truth_vcf,
        confident_regions=confident_bed, output_dir=uri.join(config.workdir, "peers"), peers=config.peers,
        region_rule=config.region_rule,
    ), binaries=available(config.peers))
    for peer, rows in out["evaluations"].items():
        publish_evaluation(peer, rows, out["vcfs"][peer], config.truth_vcf, confident_bed)
    return out["rows"]


def _peer_margins(config: CaseStudyConfig, peers: list[str]) -> dict:
    """Custom minus each peer, with the same paired bootstrap as custom minus baseline."""
    return {peer: margin_task(MarginConfig(
        eval_vcf=f"{layout.eval_prefix(config, 'custom')}.vcf.gz",
        baseline_eval_vcf=uri.join(config.workdir, "peers", f"{peer}.eval.vcf.gz"),
        output_json=uri.join(config.workdir, f"margins.{peer}.json"), seed=config.seed,
    )) for peer in peers}


def check_remote_case_study_inputs(config: CaseStudyConfig) -> None:
    """Through the storage blocks: every remote input exists and the blocks' credentials are
    accepted (one line otherwise). ``dvtrain run`` calls it before Prefect starts a run."""
    use_storage_blocks(config.storage_blocks)  # s3:// gs:// go through these blocks (else by bucket name)
    check_remote_inputs(config.input_locations())


def preflight(config: CaseStudyConfig) -> None:
    """Fail fast, in one line, before any work: paths, formats and contig mismatches of the
    local inputs (``check_case_study``), then the remote ones."""
    check_case_study(config)
    check_remote_case_study_inputs(config)


@flow(name="custom-model-training", flow_run_name=case_study_run_name, log_prints=True)
def custom_model_training(config: CaseStudyConfig, publish_to: Optional[str] = None) -> dict:
    """Coverage BED -> baseline model -> warm-started custom model -> evaluate both (+ peers) -> report.

    ``publish_to``: name of a ``dvtrain-storage`` block; the finished workdir (minus bulky
    intermediates) is copied there under ``<flow run name>/`` (its date, time and id).
    """
    preflight(config)
    config = config.model_copy(update={"workdir": uri.resolve(config.workdir)})
    wd = config.workdir
    provenance_task(config, str(uri.join(wd, "provenance.json")))  # what this run is made of

    # a. the coverage BED replaces the truth BED everywhere below
    bed = uri.location(coverage_task(CoverageConfig(
        reads=config.reads, truth_bed=config.truth_bed, output_bed=layout.coverage_bed(config),
        min_coverage=config.min_coverage,
    ))["output_bed"])

    # b. baseline model: given, or trained on the baseline reads inside their own coverage BED
    if config.baseline.model is not None:
        baseline = config.baseline.model
    else:
        baseline_bed = uri.location(coverage_task(CoverageConfig(
            reads=config.baseline.reads, truth_bed=config.truth_bed,
            output_bed=layout.coverage_bed(config, "baseline"), min_coverage=config.min_coverage,
        ))["output_bed"])
        baseline = _train(config, "baseline", config.baseline.reads, baseline_bed, config.baseline_epochs, None)

    # c. custom model, warm-started from the baseline
    custom = _train(config, "custom", config.reads, bed, config.custom_epochs, baseline)

    # d. both models on the held-out contigs
    test = _make_examples(config, "test", "calling", config.reads, ["test"])["test"]
    # the generic model calls DeepVariant's default candidates, as it would be run
    # (the same examples unless the low-coverage thresholds or channels differ)
    base_test = test if not layout.separate_baseline_test(config) \
        else _make_examples(config, "baseline", "calling", config.reads, ["test"])["test"]
    rows = _evaluate(config, "baseline", baseline, base_test, bed) + _evaluate(config, "custom", custom, test, bed)
    # how sure the custom-minus-baseline F1 is: a paired bootstrap over the test contigs' blocks
    margins = margin_task(MarginConfig(
        eval_vcf=f"{layout.eval_prefix(config, 'custom')}.vcf.gz",
        baseline_eval_vcf=f"{layout.eval_prefix(config, 'baseline')}.vcf.gz",
        output_json=uri.join(wd, "margins.json"), seed=config.seed,
    ))
    if config.peers:  # bcftools / freebayes on the same reads and BED
        peer_rows = _peers(config, bed)
        rows += peer_rows
        margins = {**margins, "peers": _peer_margins(config, sorted({r["model"] for r in peer_rows}))}

    # e. report
    dataset = json.loads(read_bytes(config.dataset_json)) if config.dataset_json else {}
    # the container settings name paths inside images, not here (provenance.json keeps them)
    report = report_task(rows, dataset, config.model_dump(mode="json", exclude={"deepvariant"}), wd, margins)
    publish_report(report, rows, wd)
    print(render_markdown(report))
    if publish_to:
        # one safe path component; the run's name holds its date, time and id (flows/naming.py)
        folder = re.sub(r"[^A-Za-z0-9._-]+", "-", flow_run.name or f"run-{date.today():%Y-%m-%d}").strip(".-") or "run"
        publish_task(publish_to, wd, folder)
    return report


def run_case_study(config: CaseStudyConfig | str | Path, publish_to: Optional[str] = None) -> dict:
    """Run the case study from Python: a config object or a YAML path.

    With no ``PREFECT_API_URL`` configured, Prefect starts a temporary local server for
    the run (ephemeral mode); nothing needs to be set up first.
    """
    if not isinstance(config, CaseStudyConfig):
        from dvtrain.config import load_case_study

        config = load_case_study(config)
    return custom_model_training(config, publish_to=publish_to)
