"""The case study's layout: where each stage writes under the workdir, and the stage configs
it builds. One place for the Prefect flow (flows/case_study.py, which runs them) and for the
deepvariant engine's dry run (:func:`container_plan`, ``dvtrain run --print-command``), so
the commands a dry run prints are the ones a run executes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from . import uri
from .config import CallConfig, CaseStudyConfig, EvaluateConfig, MakeExamplesConfig, ShuffleConfig, TrainConfig

# make_examples options the low-coverage examples take from the case study
LOWCOV_OPTIONS = ("vsc_min_count_snps", "vsc_min_count_indels", "pileup_image_height")


def examples_spec(config: CaseStudyConfig, model: str, split: str) -> str:
    return str(uri.join(config.workdir, model, "examples", f"{split}.tfrecord@{config.shards}.gz"))


def coverage_bed(config: CaseStudyConfig, model: str = "") -> Path:
    """The coverage BED of the low-coverage reads (or, for ``baseline``, of the baseline's)."""
    return uri.join(config.workdir, *([model] if model else []), "coverage", "confident.bed")


def eval_prefix(config: CaseStudyConfig, model: str):
    """Where ``model``'s evaluation goes: PREFIX.summary.csv, PREFIX.vcf.gz (decisions), ..."""
    return uri.join(config.workdir, model, "eval")


def example_options(config: CaseStudyConfig, model: str) -> dict:
    """make_examples' candidate thresholds, image height and channels: the case study's for
    the low-coverage examples (custom and test; ``vsc_min_snp_lod`` for test only: the model
    learns from every candidate what an error looks like, and calling skips the ones that
    cannot be a het); for the baseline make_examples' own thresholds and height
    (DeepVariant's) and the channels of the given model (else the case study's)."""
    no_lod = MakeExamplesConfig.model_fields["vsc_min_snp_lod"].default
    if model == "baseline":
        options = {name: MakeExamplesConfig.model_fields[name].default for name in LOWCOV_OPTIONS}
        return {**options, "vsc_min_snp_lod": no_lod,
                "channels": config.channels if config.baseline.channels is None else config.baseline.channels}
    options = {name: getattr(config, name) for name in LOWCOV_OPTIONS}
    return {**options, "vsc_min_snp_lod": config.vsc_min_snp_lod if model == "test" else no_lod,
            "channels": config.channels}


def make_examples_configs(config: CaseStudyConfig, model: str, mode: str, reads: list,
                          splits: list[str], confident_bed: Optional[Path] = None
                          ) -> tuple[dict[str, str], list[MakeExamplesConfig]]:
    """({split: shard spec}, every shard's config) for ``splits`` of ``model``."""
    specs = {split: examples_spec(config, model, split) for split in splits}
    configs = [
        MakeExamplesConfig(
            mode=mode, ref=config.reference, reads=reads, examples=spec, task=i,
            regions=getattr(config.splits, split), seed=config.seed,
            truth_variants=config.truth_vcf if mode == "training" else None,
            confident_regions=confident_bed if mode == "training" else None,
            **example_options(config, model),
        )
        for split, spec in specs.items()
        for i in range(config.shards)
    ]
    return specs, configs


def augment_configs(config: CaseStudyConfig, model: str, confident_bed: Path
                    ) -> tuple[list[str], list[MakeExamplesConfig]]:
    """A model's extra training-split passes, each BAM set downsampled as given and labelled
    inside the same confident BED: the custom model's ``config.augment``, the trained
    baseline's own reads at ``baseline.downsample_fractions``. Returns (shard specs, configs)."""
    passes = ([(aug.reads, aug.downsample_fraction) for aug in config.augment] if model == "custom"
              else [(config.baseline.reads, f) for f in config.baseline.downsample_fractions])
    specs, configs = [], []
    for k, (reads, fraction) in enumerate(passes, 1):
        spec = examples_spec(config, model, f"train-augment{k}")
        specs.append(spec)
        configs += [
            MakeExamplesConfig(mode="training", ref=config.reference, reads=reads, examples=spec, task=i,
                               regions=config.splits.train, seed=config.seed, truth_variants=config.truth_vcf,
                               confident_regions=confident_bed, downsample_fraction=fraction,
                               **example_options(config, model))
            for i in range(config.shards)
        ]
    return specs, configs


def _shuffled_prefix(config: CaseStudyConfig, model: str, split: str) -> str:
    return str(uri.join(config.workdir, model, "shuffled", split))


def shuffle_config(config: CaseStudyConfig, model: str, split: str, inputs: list[str]) -> ShuffleConfig:
    return ShuffleConfig(
        input_pattern_list=inputs, output_pattern_prefix=_shuffled_prefix(config, model, split),
        output_dataset_name=split, num_shards=config.shuffle_shards, seed=config.seed,
    )


def dataset_config_path(config: CaseStudyConfig, model: str, split: str) -> str:
    """The dataset_config.pbtxt the shuffle of ``split`` writes (dvtrain.shuffle's default)."""
    return f"{_shuffled_prefix(config, model, split)}.dataset_config.pbtxt"


def train_config(config: CaseStudyConfig, model: str, datasets: dict[str, str], epochs: int,
                 init_checkpoint: Optional[Path]) -> TrainConfig:
    return TrainConfig(
        train_dataset_config=datasets["train"], tune_dataset_config=datasets["tune"],
        experiment_dir=uri.join(config.workdir, model, "train"), init_checkpoint=init_checkpoint,
        epochs=epochs, architecture=config.architecture, batch_size=config.batch_size,
        learning_rate=config.learning_rate, seed=config.seed,
        best_checkpoint_metric=(config.custom_best_checkpoint_metric if model == "custom"
                                else config.baseline_best_checkpoint_metric),
        # stored with the model, so that dvtrain call-bam calls as the test split is called here
        calling_vsc_min_snp_lod=example_options(config, "test")["vsc_min_snp_lod"] if model == "custom" else None,
    )


def call_config(config: CaseStudyConfig, model: str, checkpoint: Path, spec: str) -> CallConfig:
    return CallConfig(
        examples=spec, checkpoint=checkpoint, ref=config.reference,
        outfile=uri.join(config.workdir, model, "calls.vcf.gz"), sample_name=config.sample_name,
        reads=config.reads if config.sample_name is None else [],  # the sample named by the BAMs' read groups
    )


def evaluate_config(config: CaseStudyConfig, model: str, query_vcf, confident_bed: Path,
                    happy: bool = False) -> EvaluateConfig:
    """Our evaluator's settings for ``model``'s calls; ``happy``: hap.py's (PASS only, its own prefix)."""
    return EvaluateConfig(
        truth_vcf=config.truth_vcf, query_vcf=query_vcf, confident_bed=confident_bed,
        reference=config.reference, regions=config.splits.test,
        output_prefix=uri.join(config.workdir, model, "happy") if happy else eval_prefix(config, model),
        **({"pass_only": True} if happy else {"region_rule": config.region_rule}),
    )


def separate_baseline_test(config: CaseStudyConfig) -> bool:
    """Whether the baseline calls its own test examples (the generic model calls DeepVariant's
    default candidates, as it would be run: separate when thresholds or channels differ)."""
    return example_options(config, "test") != example_options(config, "baseline")


def container_plan(config: CaseStudyConfig) -> list[tuple[str, object]]:
    """Every container the case study runs with the deepvariant engine, in order, as
    (stage, ContainerSpec), built without running anything (``dvtrain run --print-command``).
    A model trained by an earlier stage appears as EXPERIMENT_DIR/checkpoints/BEST: DeepVariant
    picks its best checkpoint while it trains. Coverage, shuffle, evaluation, peers and the
    report run natively with either engine."""
    from .containers import call_variants_specs, happy_spec, make_examples_spec, planning, train_spec

    config = config.model_copy(update={"workdir": uri.resolve(config.workdir)})  # as the flow does
    engine = config.deepvariant
    plan: list[tuple[str, object]] = []
    with planning():
        def train(model: str, reads: list, bed: Path, epochs: int, init: Optional[Path]) -> Path:
            _, configs = make_examples_configs(config, model, "training", reads, ["train", "tune"], bed)
            configs += augment_configs(config, model, bed)[1]
            plan.extend((f"make_examples {model} {Path(c.examples).name.split('.')[0]} shard {c.task}",
                         make_examples_spec(c, engine)) for c in configs)
            datasets = {s: dataset_config_path(config, model, s) for s in ("train", "tune")}
            cfg = train_config(config, model, datasets, epochs, init)
            plan.append((f"train {model}", train_spec(cfg, engine)))
            return Path(str(cfg.experiment_dir)) / "checkpoints" / "BEST"

        bed = coverage_bed(config)
        if config.baseline.model is not None:
            baseline = Path(str(config.baseline.model))
        else:
            baseline = train("baseline", config.baseline.reads, coverage_bed(config, "baseline"),
                             config.baseline_epochs, None)
        custom = train("custom", config.reads, bed, config.custom_epochs, baseline)
        tests = {"custom": "test", "baseline": "test"}
        if separate_baseline_test(config):
            tests["baseline"] = "baseline"
        for owner in dict.fromkeys(tests.values()):
            _, configs = make_examples_configs(config, owner, "calling", config.reads, ["test"])
            plan.extend((f"make_examples {owner} test shard {c.task}", make_examples_spec(c, engine)) for c in configs)
        for model, checkpoint in (("baseline", baseline), ("custom", custom)):
            call = call_config(config, model, checkpoint, examples_spec(config, tests[model], "test"))
            for spec in call_variants_specs(call, engine):
                plan.append((f"{Path(spec.command[0]).name} {model}", spec))
            if engine.happy:
                plan.append((f"hap.py {model}", happy_spec(evaluate_config(config, model, call.outfile, bed, True), engine)))
    return plan
