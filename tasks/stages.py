"""One Prefect task per dvtrain stage: call the stage, log one line, publish tables.

Stage modules are imported inside each task so this module (and the flows) import even
where a stage is missing or heavy (TensorFlow is only loaded by the tasks that need it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from prefect import get_run_logger, task
from prefect.tasks import exponential_backoff

from dvtrain.config import (
    CallConfig,
    CaseStudyConfig,
    CoverageConfig,
    DeepVariantEngineConfig,
    EvaluateConfig,
    MakeExamplesConfig,
    MarginConfig,
    PeersConfig,
    ShuffleConfig,
    TrainConfig,
)
from dvtrain.errors import is_permanent
from dvtrain.uri import join

from .artifacts import Progress
from .cache import FileContentInputs
from .staging import staged, staged_output


def worth_retrying(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``: retry unless the error cannot go away by itself.

    :func:`dvtrain.errors.classify_error` decides: network, storage, throttling and
    registry errors are retried; bad input (``DvtrainError``), shape mismatches, missing
    files and programming errors (``ValueError``, ``TypeError``, ``KeyError``...) are not.
    Errors it cannot place are retried too: a few seconds lost beats a lost run.
    """
    try:
        state.result()
    except BaseException as exc:
        return not is_permanent(exc)
    return True


#: transient failures (network, object storage, container pulls) get this many retries ...
RETRIES = 3
#: ... after exponential_backoff(BACKOFF_SECONDS) delays: 4 s, 8 s, 16 s ...
BACKOFF_SECONDS = 4.0
#: ... each stretched or shrunk at random (Prefect's clamped Poisson jitter, at most
#: +50 %) so that shards failing together do not retry in lockstep
RETRY_JITTER = 0.5


def retry_options(retries: int = RETRIES, backoff_seconds: float = BACKOFF_SECONDS, jitter: float = RETRY_JITTER) -> dict:
    """Task options for retries with exponential backoff and jitter, transient errors only."""
    return dict(
        retries=retries, retry_delay_seconds=exponential_backoff(backoff_factor=backoff_seconds),
        retry_jitter_factor=jitter, retry_condition_fn=worth_retrying,
    )


STAGE_OPTIONS = dict(retry_options(), persist_result=True)


def pass_summary(rows: list[dict]) -> str:
    """One log line for hap.py rows: recall and precision of each PASS row."""
    summary = "; ".join(
        f"{r.get('Type')} {r.get('Filter')} recall={r.get('METRIC.Recall')} precision={r.get('METRIC.Precision')}"
        for r in rows if r.get("Filter") in (None, "PASS")
    )
    return summary or f"{len(rows)} rows"


@task(cache_policy=FileContentInputs(outputs=("output_bed", "merged_bam"), stage="dvtrain.coverage"), **STAGE_OPTIONS)
def coverage_task(config: CoverageConfig) -> dict:
    from dvtrain.coverage import coverage_bed

    out = staged(coverage_bed, config, outputs=("output_bed", "merged_bam"))  # remote locations via scratch
    get_run_logger().info(
        "coverage: %s keeps %s bases (%.1f%% of truth BED) at depth > %d",
        out["output_bed"], out.get("bases_kept"), 100 * float(out.get("fraction_kept", 0)), config.min_coverage,
    )
    return out


@task(
    cache_policy=FileContentInputs(outputs=("examples",), stage="dvtrain.make_examples"),
    task_run_name="make_examples-{config.mode}-{config.task}",
    **STAGE_OPTIONS,
)
def make_examples_task(config: MakeExamplesConfig, engine: Optional[DeepVariantEngineConfig] = None) -> dict:
    """One make_examples shard: native, or in DeepVariant's container when ``engine`` is given."""
    from dvtrain.make_examples import make_examples

    stage = make_examples
    if engine is not None:
        from dvtrain.containers import run_make_examples

        log = get_run_logger()
        stage = lambda c: run_make_examples(c, engine, log=log.info)  # noqa: E731
    out = staged(stage, config, outputs=("examples",))
    get_run_logger().info(
        "make_examples %s shard %d: %s examples %s -> %s",
        config.mode, config.task, out["num_examples"], out.get("class_counts", {}), out["path"],
    )
    return out


@task(cache_policy=FileContentInputs(outputs=("output_pattern_prefix", "output_dataset_config_pbtxt"), stage="dvtrain.shuffle"), **STAGE_OPTIONS)
def shuffle_task(config: ShuffleConfig) -> dict:
    from dvtrain.shuffle import shuffle

    progress = Progress(f"shuffle-{config.output_dataset_name}-progress", 1000,
                        f"shuffle {config.output_dataset_name} (per mille)")

    def report(p: dict) -> None:  # called from the shuffle's progress thread, about once a second
        progress.set(int(1000 * p["fraction"]), f"{p['written']:,} records written")

    out = staged(lambda c: shuffle(c, progress=report), config,
                 outputs=("output_pattern_prefix", "output_dataset_config_pbtxt"))
    get_run_logger().info(
        "shuffle %s: %s examples %s -> %s",
        config.output_dataset_name, out["num_examples"], out.get("class_counts", {}), out["dataset_config"],
    )
    return out


@task(cache_policy=FileContentInputs(outputs=("experiment_dir",), stage="dvtrain.train"), **STAGE_OPTIONS)
def train_task(config: TrainConfig, engine: Optional[DeepVariantEngineConfig] = None) -> dict:
    """Train one model. A retry (or a re-run after a crash) resumes from the state the failed
    attempt saved at its last tune evaluation, when ``experiment_dir`` is local or shared.
    With ``engine``, DeepVariant's own train runs in its -gpu container instead."""
    from dvtrain.train import train

    if engine is not None:
        from dvtrain.containers import run_train

        log = get_run_logger()
        out = staged(lambda c: run_train(c, engine, log=log.info), config, outputs=("experiment_dir",))
        log.info("train (DeepVariant %s): %s epochs -> %s", engine.version, config.epochs, out["best_model"])
        return out

    progress = Progress(f"training-{Path(config.experiment_dir).parent.name}-progress", config.epochs,
                        f"training {config.experiment_dir}")
    log = get_run_logger()

    def evaluated(row: dict) -> None:
        progress.set(int(row["epochs_completed"]), f"tune/f1_weighted {row['tune/f1_weighted']:.4f}")
        log.info("epoch %d/%d step %d: train/loss %.4f tune/loss %.4f tune/f1_weighted %.4f",
                 int(row["epoch"]) + 1, row["epochs"], row["step"], row["train/loss"], row["tune/loss"],
                 row["tune/f1_weighted"])

    out = staged(lambda c: train(c, progress=evaluated), config, outputs=("experiment_dir",))
    progress.set(progress.total, f"finished after {out.get('epochs_completed')} epochs")  # early stop: still done
    if out.get("resumed_from"):
        log.info("train: resumed at epoch %d step %d", out["resumed_from"]["epoch"] + 1, out["resumed_from"]["step"])
    for note in out.get("notes", []):
        log.warning("train: %s", note)
    if out.get("message"):
        log.warning("train: %s", out["message"])
    log.info(
        "train: %s epochs of %s (%s)%s -> %s %s %s",
        out.get("epochs_completed"), config.epochs, config.architecture,
        f" from {config.init_checkpoint}" if config.init_checkpoint else "",
        out["best_model"], config.best_checkpoint_metric,
        out.get("best_metrics", {}).get(config.best_checkpoint_metric),
    )
    return out


@task(cache_policy=FileContentInputs(outputs=("outfile", "gvcf_outfile"), stage="dvtrain.call"), **STAGE_OPTIONS)
def call_task(config: CallConfig, engine: Optional[DeepVariantEngineConfig] = None,
              command_line: Optional[str] = None) -> dict:
    """call_variants + postprocess; ``gvcf_outfile`` is an output too. Give the block files
    as ``nonvariant_site_path`` to have them staged and cache-keyed (beside the shards by
    default, where only a local run finds them). With ``engine``, DeepVariant's
    call_variants and postprocess_variants run in its container instead. ``command_line``
    goes into the VCF header (default: the config)."""
    from dvtrain.call import call_variants

    if engine is not None:
        from dvtrain.containers import run_call

        log = get_run_logger()
        out = staged(lambda c: run_call(c, engine, log=log.info), config, outputs=("outfile", "gvcf_outfile"))
        log.info("call_variants (DeepVariant %s) -> %s", engine.version, out["outfile"])
        return out

    out = staged(lambda c: call_variants(c, command_line=command_line), config, outputs=("outfile", "gvcf_outfile"))
    get_run_logger().info("call_variants: %s PASS of %s records %s (%s engine) -> %s%s",
                          out["num_variants"], out.get("num_records"), out.get("filters", {}), out.get("engine"),
                          out["outfile"], f", gVCF {out['gvcf_outfile']}" if out.get("gvcf_outfile") else "")
    return out


@task(
    cache_policy=FileContentInputs(
        outputs=("output_prefix",), stage="dvtrain.evaluate",
        must_exist=lambda inputs: [f"{inputs['config'].output_prefix}{s}"
                                   for s in (".summary.csv", ".extended.csv", ".vcf.gz", ".metrics.json")],
    ),
    **STAGE_OPTIONS,
)
def evaluate_task(config: EvaluateConfig, label: str) -> list[dict]:
    """hap.py-style evaluation of one model's calls; returns the summary rows."""
    from dvtrain.evaluate import evaluate

    rows = staged(evaluate, config, outputs=("output_prefix",))
    get_run_logger().info("evaluate %s: %s", label, pass_summary(rows))
    return rows


@task(
    cache_policy=FileContentInputs(outputs=("output_json",), stage="dvtrain.margin",
                                   must_exist=lambda inputs: [inputs["config"].output_json]),
    **STAGE_OPTIONS,
)
def margin_task(config: MarginConfig) -> dict:
    """Paired block bootstrap of custom-minus-baseline F1 from the two decision VCFs."""
    from dvtrain.margin import margin

    out = staged(margin, config, outputs=("output_json",))
    log = get_run_logger()
    for vtype in ("INDEL", "SNP"):
        m = out.get(vtype)
        if m and m["difference"] is not None:
            log.info("margin %s: %+.4f F1, %.0f%% interval %+.4f to %+.4f", vtype, m["difference"],
                     100 * m["confidence"], m["low"], m["high"])
    return out


@task(
    cache_policy=FileContentInputs(
        outputs=("output_dir",), stage="dvtrain.peers",
        must_exist=lambda inputs: [f"{inputs['config'].output_dir}/{p}.eval.summary.csv"
                                   for p, b in inputs["binaries"].items() if b and inputs["config"].truth_vcf],
    ),
    **STAGE_OPTIONS,
)
def peers_task(config: PeersConfig, binaries: dict) -> dict:
    """bcftools / freebayes on the same reads, scored like the models.

    ``binaries`` (peer -> path or None, :func:`dvtrain.peers.available`) is part of the
    cache key: installing a missing peer later re-runs the task.
    """
    from dvtrain.peers import benchmark_peers

    out = staged(benchmark_peers, config, outputs=("output_dir",))
    log = get_run_logger()
    for peer, rows in out["evaluations"].items():
        log.info("peer %s: %s", peer, pass_summary(rows))
    for peer in out["skipped"]:
        log.warning("peer %s skipped: binary not found on PATH", peer)
    return out


@task(
    cache_policy=FileContentInputs(
        outputs=("outdir",), stage="dvtrain.report",
        must_exist=lambda inputs: [join(inputs["outdir"], "report.json"), join(inputs["outdir"], "report.md"),
                                   join(inputs["outdir"], "evaluation.png")],
    ),
    **STAGE_OPTIONS,
)
def report_task(rows: list[dict], dataset: dict, config: dict, outdir: Path, margins: Optional[dict] = None) -> dict:
    """Write report.json, report.md and evaluation.png into ``outdir``."""
    from dvtrain.report import write_report

    report = staged_output(lambda d: write_report(rows, dataset, config, Path(d), margins), outdir)
    get_run_logger().info("report: %d rows -> %s", len(rows), outdir)
    return report


@task(cache_policy=FileContentInputs(outputs=("output_prefix",), stage="dvtrain.containers"), **STAGE_OPTIONS)
def happy_task(config: EvaluateConfig, engine: DeepVariantEngineConfig) -> dict:
    """hap.py itself (its container, ``--engine=vcfeval``) on one call set -> PREFIX.summary.csv."""
    from dvtrain.containers import happy_spec, runtime

    log = get_run_logger()
    spec = happy_spec(config, engine)
    runtime(engine).run(spec, log=log.info)  # containers see local paths only
    summary = f"{config.output_prefix}.summary.csv"
    log.info("hap.py -> %s", summary)
    return {"summary_csv": summary}


@task(cache_policy=FileContentInputs(outputs=("path",), stage="dvtrain.provenance"), task_run_name="provenance",
      **STAGE_OPTIONS)
def provenance_task(config: CaseStudyConfig, path: str) -> str:
    """WORKDIR/provenance.json: config, seed, input digests, tool and package versions. Keyed
    like the stages (inputs by content), so a re-run of the same inputs does not rewrite it."""
    from dvtrain.provenance import write_provenance

    staged_output(lambda p: write_provenance(config, p), path)
    get_run_logger().info("provenance -> %s", path)
    return path
