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

from dvtrain.config import (
    CallConfig,
    CaseStudyConfig,
    CoverageConfig,
    EvaluateConfig,
    MakeExamplesConfig,
    MarginConfig,
    PeersConfig,
    ShuffleConfig,
    TrainConfig,
)
from blocks.storage import read_bytes, use_storage_blocks
from dvtrain import uri
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
from tasks.artifacts import publish_dataset, publish_evaluation, publish_report
from tasks.staging import check_remote_inputs

from .shards import run_shards
from .naming import case_study_run_name
from .training import submit_training


def _examples(config: CaseStudyConfig, model: str, split: str) -> str:
    return str(uri.join(config.workdir, model, "examples", f"{split}.tfrecord@{config.shards}.gz"))


_LOWCOV_OPTIONS = ("vsc_min_count_snps", "vsc_min_count_indels", "pileup_image_height")


def _example_options(config: CaseStudyConfig, model: str) -> dict:
    """make_examples' candidate thresholds, image height and channels: the case study's for
    the low-coverage examples (custom and test; ``vsc_min_snp_lod`` for test only: the model
    learns from every candidate what an error looks like, and calling skips the ones that
    cannot be a het); for the baseline make_examples' own thresholds and height
    (DeepVariant's) and the channels of the given model (else the case study's)."""
    no_lod = MakeExamplesConfig.model_fields["vsc_min_snp_lod"].default
    if model == "baseline":
        options = {name: MakeExamplesConfig.model_fields[name].default for name in _LOWCOV_OPTIONS}
        return {**options, "vsc_min_snp_lod": no_lod,
                "channels": config.channels if config.baseline.channels is None else config.baseline.channels}
    options = {name: getattr(config, name) for name in _LOWCOV_OPTIONS}
    return {**options, "vsc_min_snp_lod": config.vsc_min_snp_lod if model == "test" else no_lod,
            "channels": config.channels}


def _make_examples(config: CaseStudyConfig, model: str, mode: str, reads: list[Path],
                   splits: list[str], confident_bed: Optional[Path] = None) -> dict[str, str]:
    """All shards of all ``splits`` through one bounded map; returns {split: shard spec}."""
    specs = {split: _examples(config, model, split) for split in splits}
    configs = [
        MakeExamplesConfig(
            mode=mode, ref=config.reference, reads=reads, examples=spec, task=i,
            regions=getattr(config.splits, split), seed=config.seed,
            truth_variants=config.truth_vcf if mode == "training" else None,
            confident_regions=confident_bed if mode == "training" else None,
            **_example_options(config, model),
        )
        for split, spec in specs.items()
        for i in range(config.shards)
    ]
    run_shards(config, configs, f"{model}-{mode}")  # threads or Dask (config.task_runner)
    return specs


def _augmented(config: CaseStudyConfig, model: str, confident_bed: Path) -> list[str]:
    """A model's extra training-split passes, each BAM set downsampled as given and labelled
    inside the same confident BED: the custom model's ``config.augment``, the trained
    baseline's own reads at ``baseline.downsample_fractions``. Returns their shard specs."""
    passes = ([(aug.reads, aug.downsample_fraction) for aug in config.augment] if model == "custom"
              else [(config.baseline.reads, f) for f in config.baseline.downsample_fractions])
    specs, configs = [], []
    for k, (reads, fraction) in enumerate(passes, 1):
        spec = _examples(config, model, f"train-augment{k}")
        specs.append(spec)
        configs += [
            MakeExamplesConfig(mode="training", ref=config.reference, reads=reads, examples=spec, task=i,
                               regions=config.splits.train, seed=config.seed, truth_variants=config.truth_vcf,
                               confident_regions=confident_bed, downsample_fraction=fraction,
                               **_example_options(config, model))
            for i in range(config.shards)
        ]
    if configs:
        run_shards(config, configs, f"{model}-augment")
    return specs


def _train(config: CaseStudyConfig, model: str, reads: list[Path], confident_bed: Path,
           epochs: int, init_checkpoint: Optional[Path]) -> Path:
    """Examples (+ augmentation passes for the custom model) -> shuffle -> training subflow;
    returns the best model's path."""
    specs = _make_examples(config, model, "training", reads, ["train", "tune"], confident_bed)
    extra = {"train": _augmented(config, model, confident_bed)}
    datasets = {}
    for split, spec in specs.items():
        shuffled = shuffle_task(ShuffleConfig(
            input_pattern_list=[spec, *extra.get(split, [])],
            output_pattern_prefix=str(uri.join(config.workdir, model, "shuffled", split)),
            output_dataset_name=split, num_shards=config.shuffle_shards, seed=config.seed,
        ))
        publish_dataset(split if model == "custom" else f"{model}-{split}", shuffled)
        datasets[split] = shuffled["dataset_config"]
    trained = submit_training(TrainConfig(
        train_dataset_config=datasets["train"], tune_dataset_config=datasets["tune"],
        experiment_dir=uri.join(config.workdir, model, "train"), init_checkpoint=init_checkpoint,
        epochs=epochs, architecture=config.architecture, batch_size=config.batch_size,
        learning_rate=config.learning_rate, seed=config.seed,
        best_checkpoint_metric=(config.custom_best_checkpoint_metric if model == "custom"
                                else config.baseline_best_checkpoint_metric),
        # stored with the model, so that dvtrain call-bam calls as the test split is called here
        calling_vsc_min_snp_lod=_example_options(config, "test")["vsc_min_snp_lod"] if model == "custom" else None,
    ), config.training_work_pool, storage_blocks=config.storage_blocks, engine=config.container_engine())
    return uri.location(trained["best_model"])


def _eval_prefix(config: CaseStudyConfig, model: str):
    """Where ``model``'s evaluation goes: PREFIX.summary.csv, PREFIX.vcf.gz (decisions), ..."""
    return uri.join(config.workdir, model, "eval")


def _evaluate(config: CaseStudyConfig, model: str, checkpoint: Path, spec: str, confident_bed: Path) -> list[dict]:
    """Call the test examples ``spec`` with ``checkpoint``; score inside the coverage BED."""
    calls = call_task(CallConfig(
        examples=spec, checkpoint=checkpoint, ref=config.reference,
        outfile=uri.join(config.workdir, model, "calls.vcf.gz"), sample_name=config.sample_name,
        reads=config.reads if config.sample_name is None else [],  # the sample named by the BAMs' read groups
    ), config.container_engine())
    rows = evaluate_task(EvaluateConfig(
        truth_vcf=config.truth_vcf, query_vcf=calls["outfile"], confident_bed=confident_bed,
        reference=config.reference, output_prefix=_eval_prefix(config, model),
        regions=config.splits.test, region_rule=config.region_rule,
    ), label=model)
    publish_evaluation(model, rows, calls["outfile"], config.truth_vcf, confident_bed)
    engine = config.container_engine()
    if engine is not None and engine.happy:  # hap.py itself, next to our evaluator
        happy_task(EvaluateConfig(
            truth_vcf=config.truth_vcf, query_vcf=calls["outfile"], confident_bed=confident_bed,
            reference=config.reference, output_prefix=uri.join(config.workdir, model, "happy"),
            regions=config.splits.test, pass_only=True,
        ), engine)
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
        eval_vcf=f"{_eval_prefix(config, 'custom')}.vcf.gz",
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
    intermediates) is copied there under ``<date>-<flow run name>/``.
    """
    preflight(config)
    config = config.model_copy(update={"workdir": uri.resolve(config.workdir)})
    wd = config.workdir
    provenance_task(config, str(uri.join(wd, "provenance.json")))  # what this run is made of

    # a. the coverage BED replaces the truth BED everywhere below
    bed = uri.location(coverage_task(CoverageConfig(
        reads=config.reads, truth_bed=config.truth_bed, output_bed=uri.join(wd, "coverage", "confident.bed"),
        min_coverage=config.min_coverage,
    ))["output_bed"])

    # b. baseline model: given, or trained on the baseline reads inside their own coverage BED
    if config.baseline.model is not None:
        baseline = config.baseline.model
    else:
        baseline_bed = uri.location(coverage_task(CoverageConfig(
            reads=config.baseline.reads, truth_bed=config.truth_bed,
            output_bed=uri.join(wd, "baseline", "coverage", "confident.bed"), min_coverage=config.min_coverage,
        ))["output_bed"])
        baseline = _train(config, "baseline", config.baseline.reads, baseline_bed, config.baseline_epochs, None)

    # c. custom model, warm-started from the baseline
    custom = _train(config, "custom", config.reads, bed, config.custom_epochs, baseline)

    # d. both models on the held-out contigs
    test = _make_examples(config, "test", "calling", config.reads, ["test"])["test"]
    # the generic model calls DeepVariant's default candidates, as it would be run
    # (the same examples unless the low-coverage thresholds or channels differ)
    base_test = test if _example_options(config, "test") == _example_options(config, "baseline") \
        else _make_examples(config, "baseline", "calling", config.reads, ["test"])["test"]
    rows = _evaluate(config, "baseline", baseline, base_test, bed) + _evaluate(config, "custom", custom, test, bed)
    # how sure the custom-minus-baseline F1 is: a paired bootstrap over the test contigs' blocks
    margins = margin_task(MarginConfig(
        eval_vcf=f"{_eval_prefix(config, 'custom')}.vcf.gz",
        baseline_eval_vcf=f"{_eval_prefix(config, 'baseline')}.vcf.gz",
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
        folder = re.sub(r"[^A-Za-z0-9._-]+", "-", flow_run.name or "run").strip(".-") or "run"  # one safe component
        publish_task(publish_to, wd, f"{date.today():%Y-%m-%d}-{folder}")
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
