"""Pydantic configs, one per stage. The CLI, the Prefect tasks and the flow share them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Optional, Union, get_args

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema, model_validator

from .errors import InputError, describe_validation_error
from .uri import location as _as_location, scheme as _uri_scheme


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _location(value: object) -> object:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"expected a path or an s3:// / gs:// URI, got {type(value).__name__}")
    return _as_location(os.fspath(value) if not isinstance(value, (str, Path)) else value)


# A stage input/output: a local path (-> Path) or an s3:// / gs:// URI (-> str, unmangled).
# Tasks stage remote locations into local scratch (tasks/staging.py); stages see paths only.
Location = Annotated[Union[Path, str], PlainValidator(_location), WithJsonSchema({"type": "string"})]


# ---------------------------------------------------------------- simulate
class ProfileConfig(_Config):
    """A sequencing platform's read model."""

    name: str
    coverage: float = Field(gt=0)
    read_length: int = Field(ge=30)
    insert_mean: float = Field(gt=0)
    insert_sd: float = Field(ge=0)
    sub_rate_start: float = Field(ge=0, lt=0.5, description="substitution error rate at the first cycle")
    sub_rate_end: float = Field(ge=0, lt=0.5, description="substitution error rate at the last cycle")
    homopolymer_indel_rate: float = Field(0.0, ge=0, lt=0.5, description="per-base indel error rate inside homopolymers >= 4")
    context_error_rate: float = Field(0.0, ge=0, lt=0.5, description="extra platform-specific substitution rate after 'GG' (G>T)")
    max_base_quality: int = Field(40, ge=2, le=60)
    platform: Literal["ILLUMINA", "BGISEQ"] = Field("ILLUMINA", description="@RG PL of the simulated BAM")


GENERIC_PROFILE = ProfileConfig(
    name="generic", coverage=30, read_length=150, insert_mean=400, insert_sd=60,
    sub_rate_start=0.001, sub_rate_end=0.006, homopolymer_indel_rate=0.0005, max_base_quality=40,
)
LOWCOV_PROFILE = ProfileConfig(
    name="lowcov", coverage=4, read_length=100, insert_mean=300, insert_sd=40,
    sub_rate_start=0.003, sub_rate_end=0.012, homopolymer_indel_rate=0.004,
    context_error_rate=0.03, max_base_quality=41, platform="BGISEQ",
)


class SimulateConfig(_Config):
    outdir: Path
    seed: int = 42
    # chr20, the held-out test contig, is the largest: at 4x a 300 kb chr20 held 120 scored indels,
    # where the paired bootstrap of custom-minus-baseline INDEL F1 (dvtrain.margin) had a standard
    # deviation of 0.027, too coarse for a 0.04 margin; 1.5 Mb holds 537 (0.011-0.013; docs/accuracy.md).
    contigs: dict[str, int] = Field(default_factory=lambda: {"chr1": 500_000, "chr21": 150_000, "chr20": 1_500_000})
    snp_rate: float = Field(0.003, gt=0, lt=0.1, description="SNPs per base")
    indel_rate: float = Field(0.0008, ge=0, lt=0.1, description="indels per base")
    titv: float = Field(2.0, gt=0)
    het_hom_ratio: float = Field(1.5, gt=0)
    segdup_count: int = Field(2, ge=0, description="segmental duplications per contig")
    profiles: list[ProfileConfig] = Field(default_factory=lambda: [GENERIC_PROFILE, LOWCOV_PROFILE])
    sample: str = "SIM001"
    threads: int = Field(2, ge=1)


# ---------------------------------------------------------------- coverage
class CoverageConfig(_Config):
    reads: list[Location] = Field(min_length=1)
    truth_bed: Location
    output_bed: Location
    min_coverage: int = Field(2, ge=0, description="keep bases with depth > min_coverage")
    merged_bam: Optional[Location] = Field(None, description="where to write the merged BAM (default: beside output_bed)")


# ---------------------------------------------------------------- make_examples
# DeepVariant's optional channels that dvtrain draws (dvtrain.pileup, docs/pileup.md)
OPTIONAL_CHANNELS = ("insert_size", "homopolymer_weighted", "is_homopolymer")


def _check_channels(channels: list[str]) -> list[str]:
    unknown = set(channels) - set(OPTIONAL_CHANNELS)
    if unknown:
        raise ValueError(f"unsupported optional channels: {sorted(unknown)} (supported: {', '.join(OPTIONAL_CHANNELS)})")
    if len(set(channels)) != len(channels):
        raise ValueError(f"optional channels listed twice: {channels}")
    return channels


Channels = Annotated[list[str], AfterValidator(_check_channels)]


#: make_examples as DeepVariant's own: its flags' defaults, dvtrain's indel options off and
#: DeepVariant's realigner on (``preset: deepvariant``; docs/pileup.md lists what dvtrain does
#: differently by default, and why). What still differs: benchmarks/golden_fidelity.py.
DEEPVARIANT_PRESET: dict = {
    "channels": [], "pileup_image_height": 100, "pileup_image_width": 221, "vsc_min_count_snps": 2,
    "vsc_min_count_indels": 2, "vsc_min_fraction_snps": 0.12, "vsc_min_fraction_indels": 0.06, "vsc_min_snp_lod": None,
    "min_mapping_quality": 5, "min_base_quality": 10, "indel_informative_reads": False,
    "indel_haplotype_support": False, "merge_insertion_alleles": False, "realign_reads": True,
}


class MakeExamplesConfig(_Config):
    preset: Optional[Literal["deepvariant"]] = Field(
        None, description="deepvariant: every option not given takes DeepVariant make_examples' value (no optional "
                          "channel, 100 x 221 images, its candidate thresholds and read filters, dvtrain's indel "
                          "options off, its realigner on)")
    mode: Literal["training", "calling"]
    ref: Location
    reads: list[Location] = Field(min_length=1)
    examples: str = Field(description="output, DeepVariant style: NAME.tfrecord@N.gz")
    task: int = Field(0, ge=0)
    regions: list[str] = Field(default_factory=list, description="contigs or chr:start-end (1-based), or BED files")
    exclude_regions: list[str] = Field(default_factory=list, description="regions to leave out (same forms as regions)")
    truth_variants: Optional[Location] = None
    confident_regions: Optional[Location] = Field(None, description="required in training mode")
    channels: Channels = Field(default_factory=lambda: ["insert_size"])
    vsc_min_count_snps: int = Field(2, ge=1)
    vsc_min_count_indels: int = Field(2, ge=1)
    vsc_min_fraction_snps: float = Field(0.12, ge=0, le=1)
    vsc_min_fraction_indels: float = Field(0.06, ge=0, le=1)
    vsc_min_snp_lod: Optional[float] = Field(
        None, ge=-100, le=100,
        description="a SNP candidate also needs log10 P(reads | het) / P(reads | hom-ref) >= this, from the "
                    "base qualities of the reads showing it and the depth (make_examples.snp_lod): a "
                    "1-read SNP scores Q/10 + 0.48 - 0.30 * depth. None: no such filter, as DeepVariant "
                    "(native engine only; DeepVariant's make_examples has no such flag)")
    min_mapping_quality: int = Field(5, ge=0)
    min_base_quality: int = Field(10, ge=0)
    indel_informative_reads: bool = Field(
        True, description="images of indel candidates leave out reads that end or are clipped before the end of "
                          "the repeat the indel sits in (they cannot tell the indel from the reference); "
                          "false draws every overlapping read, as DeepVariant does")
    indel_haplotype_support: bool = Field(
        True, description="images of indel candidates judge each read against the reference and the alt "
                          "haplotype: a read carrying the indel displaced in its repeat, or showing the alt "
                          "haplotype's bases where its alignment starts, stops or clips, supports it, and a "
                          "read that matches both equally or carries another indel in the repeat is left out "
                          "(with indel_informative_reads; images mixing indel and SNP alleles too); a read that "
                          "matches the alt haplotype without carrying the indel is drawn realigned to it; false: a read "
                          "supports only the exact indel of its own alignment, as without DeepVariant's realigner")
    merge_insertion_alleles: bool = Field(
        True, description="count insertions of one length at one anchor as one candidate, whatever their "
                          "inserted bases (sequencing errors split them at low coverage); its sequence is the "
                          "most common one, on a tie the base-by-base majority, a tied base going to the "
                          "repeat's (the reference base it would duplicate); false: each sequence on its own, "
                          "as DeepVariant")
    realign_reads: bool = Field(
        False, description="DeepVariant's realigner before counting alleles and drawing reads (dvtrain.realigner): "
                           "reads in windows with variant evidence realigned to haplotypes assembled there; "
                           "partitions of 1,000 bp and image rows in its order (ties by input order)")
    pileup_image_height: int = Field(100, ge=6, le=1000, description="5 reference rows + up to height-5 reads")
    pileup_image_width: int = Field(221, ge=3, le=2001, description="odd: the candidate sits in the middle column")
    downsample_fraction: Annotated[float, AfterValidator(lambda f: f or 1.0)] = Field(
        1.0, ge=0, le=1, description="keep this fraction of read pairs (seeded by name); 0 keeps all, as "
                                     "DeepVariant's 0.0 does")
    training_random_emit_ref_sites: float = Field(
        0.0, ge=0, le=1, description="training mode: also emit this fraction of non-candidate sites as label-0 examples")
    gvcf: bool = Field(False, description="calling mode: also write reference-confidence blocks of the covered "
                                          "non-candidate positions to SHARD.gvcf.tsv.gz (for call --gvcf_outfile)")
    gvcf_gq_binsize: int = Field(5, ge=1, le=100, description="DeepVariant --gvcf_gq_binsize: reference positions "
                                                              "join one block while their GQ // binsize is the same")
    seed: int = 42

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        if isinstance(data, dict) and data.get("preset") == "deepvariant":
            data = {**DEEPVARIANT_PRESET, **data}  # what is given wins
        return data

    @model_validator(mode="after")
    def _training_needs_truth(self) -> "MakeExamplesConfig":
        if self.mode == "training" and (self.truth_variants is None or self.confident_regions is None):
            raise ValueError("--mode training needs --truth_variants and --confident_regions")
        if self.gvcf and self.mode != "calling":
            raise ValueError("gvcf (make-examples --gvcf_blocks) needs --mode calling")
        if self.pileup_image_width % 2 == 0:
            raise ValueError(f"pileup_image_width must be odd (got {self.pileup_image_width})")
        return self


#: make_examples options that decide which candidates become examples and how they are
#: drawn, beside the image shape and channels: a model is called with the values it was
#: trained with. make_examples records them in example_info.json, which travels with the
#: examples through shuffle to the model (dvtrain.call_bam reads them back).
MODEL_BOUND_OPTIONS = (
    "vsc_min_count_snps", "vsc_min_count_indels", "vsc_min_fraction_snps", "vsc_min_fraction_indels",
    "vsc_min_snp_lod", "min_mapping_quality", "min_base_quality", "indel_informative_reads",
    "indel_haplotype_support", "merge_insertion_alleles",
)


# ---------------------------------------------------------------- deepvariant engine
class DeepVariantEngineConfig(_Config):
    """How the ``deepvariant`` engine runs Google's containers (dvtrain.containers)."""

    version: str = Field("1.6.1", pattern=r"^[A-Za-z0-9_.-]+$", description="google/deepvariant image tag")
    image: str = Field("google/deepvariant", description="CPU image; the GPU image is IMAGE:VERSION-gpu")
    happy_image: str = Field("jmcdani20/hap.py:v0.3.12", description="hap.py image for evaluation")
    runtime: Literal["docker", "apptainer"] = Field("docker", description="docker (the docker SDK) or apptainer "
                                                                          "(apptainer exec docker://IMAGE, for HPC)")
    apptainer_binary: str = Field("apptainer", description="apptainer or singularity")
    pull_retries: int = Field(3, ge=1, le=20)
    gpus: int = Field(1, ge=-1, le=64, description="GPUs for train (and call when > 0); -1 all, 0 none")
    strategy: Literal["mirrored", "tpu"] = Field("mirrored", description="train --strategy")
    model_type: str = Field("WGS", description="run_deepvariant --model_type")
    train_config: Optional[str] = Field(
        None, description="DeepVariant train's --config: a dv_config.py on this machine, optionally with its config "
                          "name (PATH:base, the default name). The release image does not contain one; empty: "
                          "dv_config.py beside the experiment folder, downloaded there from the pinned release "
                          "(train_config_url) when missing, as the case study does")
    train_config_url: str = Field(
        "https://raw.githubusercontent.com/google/deepvariant/r{version}/deepvariant/dv_config.py",
        description="where dv_config.py is downloaded from when train_config is empty ({version}: the image tag)")
    train_overrides: dict[str, str] = Field(default_factory=dict, description="extra --config.NAME=VALUE for train")
    user: Optional[str] = Field(None, pattern=r"^\d+:\d+$", description="uid:gid (default: the invoking user's)")
    happy: bool = Field(False, description="case study: also score each model's calls with hap.py itself "
                                          "(happy_image, --engine=vcfeval --pass-only) into WORKDIR/MODEL/happy.*")

    def image_for(self, kind: Literal["cpu", "gpu"]) -> str:
        return f"{self.image}:{self.version}" + ("-gpu" if kind == "gpu" else "")


# ---------------------------------------------------------------- shuffle
class ShuffleConfig(_Config):
    input_pattern_list: list[str] = Field(min_length=1, description="shard specs, globs or paths")
    output_pattern_prefix: str = Field(description="output prefix; shards are PREFIX-0000i-of-0000N.tfrecord.gz")
    output_dataset_name: str
    output_dataset_config_pbtxt: Optional[Location] = None
    num_shards: int = Field(4, ge=1)
    seed: int = 42
    memory_mb: int = Field(128, ge=16, le=1 << 20,
                           description="examples one worker holds in memory at a time (MiB); more spills to disk")
    spill_dir: Optional[str] = Field(None, description="folder for the spilled buckets (default: beside the "
                                                       "output); a shared URI (gs://, s3://) on distributed runners")
    runner: str = Field(
        "FnApiRunner", pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$",
        description="Beam runner: FnApiRunner or BundleBasedDirectRunner (in-process), or DataflowRunner, SparkRunner, "
                    "FlinkRunner, PortableRunner, ... (docs/shuffle-runners.md); not DirectRunner",
    )
    pipeline_options: list[str] = Field(
        default_factory=list,
        description="Beam pipeline options, --flag=value each: --project, --region, --temp_location, "
                    "--spark_master_url, --flink_master, --environment_type, --direct_num_workers, ...",
    )

    @model_validator(mode="after")
    def _beam_runner(self) -> "ShuffleConfig":
        if self.runner.lower() in ("directrunner", "direct"):
            raise ValueError("runner DirectRunner may hand the pipeline to Prism, which downloads a binary "
                             "at run time (and fails offline); use FnApiRunner, its in-process runner, explicitly")
        for opt in self.pipeline_options:
            if not opt.startswith("--"):
                raise ValueError(f"pipeline option {opt!r} must look like --flag=value")
            if opt.split("=", 1)[0] == "--runner":
                raise ValueError("give the runner as `runner`, not as a pipeline option")
        return self


# ---------------------------------------------------------------- train
from pydantic import AliasChoices, field_validator  # noqa: E402  (used by TrainConfig only)

#: tune metrics that can pick the best checkpoint; ``tune/loss`` is lower-is-better
TUNE_METRICS = ("tune/f1_weighted", "tune/f1_macro", "tune/f1_micro", "tune/f1_homref", "tune/f1_het",
                "tune/f1_homalt", "tune/categorical_accuracy", "tune/loss")
LOWER_IS_BETTER = frozenset({"tune/loss"})


def deepvariant_training_refusal(metric: Optional[str], architecture: Optional[str],
                                 metric_field: str = "best_checkpoint_metric") -> Optional[str]:
    """Why DeepVariant's train cannot train as asked (one line), or None: it keeps the
    checkpoints whose metric is higher, and trains inception_v3 only. Shared by the case
    study's config check and the container engine's train spec."""
    if metric in LOWER_IS_BETTER:
        return (f"{metric_field} {metric}: DeepVariant's train keeps the checkpoints whose metric is higher, so it "
                "would keep the worst; choose a tune F1 or accuracy for the deepvariant engine")
    if architecture is not None and architecture != "inception_v3":
        return (f"architecture {architecture}: DeepVariant's train trains inception_v3 only; set architecture "
                "inception_v3 for the deepvariant engine (or use the native engine)")
    return None


#: dvtrain.model's architectures (read_sums, the default, first)
Architecture = Literal["read_sums", "read_evidence", "small_cnn", "inception_v3"]


class TrainConfig(_Config):
    """One training run: shuffled datasets in; checkpoints, best_model.keras and train_summary.json out.

    Names (and, where they suit a small dataset, defaults) follow DeepVariant's base training
    config (``dv_config.py``); ``dvtrain train --config.NAME=VALUE`` sets any of them.
    Defaults that differ from DeepVariant's, for datasets of thousands (not millions) of
    examples on a CPU: architecture (read_sums; DeepVariant inception_v3), batch_size (32;
    16384), warmup_steps (20; 10000), label_smoothing (0.01; 1e-6), epsilon (1e-7; 1.0),
    epochs (8; num_epochs 10).
    A run interrupted at any point continues from its last saved state in
    ``experiment_dir`` when started again with the same settings (docs/architecture.md).
    """

    model_config = ConfigDict(extra="forbid", title="Training")

    train_dataset_config: Location = Field(validation_alias=AliasChoices("train_dataset_config", "train_dataset_pbtxt"),
                                           description="shuffled training set (dataset_config.pbtxt)")
    tune_dataset_config: Location = Field(validation_alias=AliasChoices("tune_dataset_config", "tune_dataset_pbtxt"),
                                          description="tune set: picks the best checkpoint, drives early stopping")
    experiment_dir: Location = Field(description="outputs, and the state a stopped run resumes from")
    init_checkpoint: Optional[Location] = Field(
        None, description="a .keras model to warm-start from (same architecture and image width; the height may "
                          "differ, and a different channel count is adapted). Ignored when experiment_dir holds a "
                          "run to resume")
    architecture: Architecture = Field(
        "read_sums", validation_alias=AliasChoices("architecture", "model_type"), title="Architecture",
        description="read_sums: per-read evidence summed at the candidate (the default, best and fastest at 4x); "
                    "read_evidence: read_sums plus small_cnn's whole-image trunk; small_cnn: 3 convolutions; "
                    "inception_v3: DeepVariant's backbone (22 M weights)")
    epochs: int = Field(8, ge=1, le=10000, validation_alias=AliasChoices("epochs", "num_epochs"), title="Epochs",
                        description="passes over the training set (DeepVariant: num_epochs)")
    batch_size: int = Field(32, ge=1, le=65536, title="Batch size")
    learning_rate: float = Field(1e-3, gt=0, le=1, title="Learning rate", description="after warm-up, before decay")
    learning_rate_decay_rate: float = Field(0.947, gt=0, le=1, title="Decay rate",
                                            description="the learning rate is multiplied by this every decay period")
    learning_rate_num_epochs_per_decay: float = Field(2.0, gt=0, title="Epochs per decay")
    warmup_steps: int = Field(20, ge=0, title="Warm-up steps", description="linear learning-rate warm-up, in batches")
    optimizer: Literal["rmsprop", "adam", "nadam", "sgd"] = Field(
        "rmsprop", title="Optimizer", description="rmsprop (rho, momentum, epsilon), adam / nadam (beta_1, beta_2, "
                                                  "epsilon) or sgd (momentum)")
    label_smoothing: float = Field(0.01, ge=0, lt=1, title="Label smoothing")
    weight_decay: float = Field(4e-5, ge=0, title="Weight decay", description="L2 penalty on the kernels")
    backbone_dropout_rate: float = Field(0.2, ge=0, lt=1, title="Backbone dropout",
                                         description="dropout before the softmax layer (every architecture)")
    rho: float = Field(0.9, ge=0, lt=1, title="RMSprop rho")
    momentum: float = Field(0.9, ge=0, lt=1, title="Momentum", description="rmsprop and sgd")
    # DeepVariant uses epsilon 1.0 over ~10^5 steps; at the few hundred steps of a small
    # dataset that damps RMSprop into plain SGD and the model never leaves its start
    # (measured: train accuracy stuck at 0.45 after 6 epochs). Keras' default learns.
    epsilon: float = Field(1e-7, gt=0, title="Optimizer epsilon", description="rmsprop, adam and nadam")
    use_ema: bool = Field(
        True, title="Weight averaging (EMA)",
        description="keep an exponential moving average of the weights (DeepVariant's use_ema); tune evaluations, "
                    "checkpoints and best_model.keras use the averaged weights")
    ema_momentum: float = Field(0.99, ge=0, lt=1, title="EMA momentum",
                                description="average = momentum * average + (1 - momentum) * weights, every batch")
    beta_1: float = Field(0.9, ge=0, lt=1, title="Adam beta_1")
    beta_2: float = Field(0.999, ge=0, lt=1, title="Adam beta_2")
    early_stopping_patience: int = Field(
        10, ge=0, title="Early-stopping patience",
        description="stop after this many consecutive tune evaluations without a new best; 0: never stop early")
    tune_every_steps: int = Field(100_000, ge=1, title="Tune every steps",
                                  description="also evaluate the tune set every this many batches (always at each "
                                              "epoch's end); every evaluation saves the resumable state")
    log_every_steps: int = Field(100, ge=1, title="Log every steps",
                                 description="TensorBoard train scalars every this many batches (and at each evaluation)")
    best_checkpoint_metric: Literal[TUNE_METRICS] = Field(  # type: ignore[valid-type]
        "tune/f1_weighted", title="Best checkpoint metric",
        description="tune metric that picks best_model.keras (tune/loss: lower is better; the others higher, "
                    "a tie going to the lower tune/loss)")
    class_weights: Union[Literal["none", "balanced"], list[float]] = Field(
        "none", title="Class weights",
        description="loss weight per class (hom-ref, het, hom-alt): none, balanced (N / (3 * class count), from the "
                    "training set) or three numbers")
    limit: int = Field(0, ge=0, title="Limit", description="use only the first N training examples; 0: all")
    num_validation_examples: int = Field(1_500_000, ge=0, title="Tune examples",
                                         description="use only the first N tune examples; 0: all")
    mixed_precision: bool = Field(
        False, title="Mixed precision",
        description="compute in float16 (Keras mixed_float16; softmax in float32) on a GPU; without a GPU training "
                    "runs in float32 and says so (CPU float16 is slower, not faster)")
    seed: int = Field(42, ge=0, title="Seed", description="initial weights, dropout and batch order")
    op_determinism: bool = Field(
        True, title="Deterministic ops",
        description="TensorFlow backend: tf.config.experimental.enable_op_determinism (a rerun on the same machine "
                    "and thread count repeats exactly); false: TensorFlow's faster nondeterministic kernels")
    calling_vsc_min_snp_lod: Optional[float] = Field(
        None, ge=-100, le=100, title="Calling: min SNP candidate LOD",
        description="make_examples --vsc_min_snp_lod to call with this model, when calling filters SNP candidates "
                    "that training did not (dvtrain only; the case study's vsc_min_snp_lod). Stored in the "
                    "example_info.json beside best_model.keras, where dvtrain call-bam reads it; empty: calling "
                    "uses the training examples' own options")

    @field_validator("class_weights", mode="before")
    @classmethod
    def _class_weights_list(cls, value):
        if isinstance(value, str) and value not in ("none", "balanced"):
            try:  # the CLI's --config.class_weights=1,2.5,4
                value = [float(v) for v in value.strip("[]() ").split(",")]
            except ValueError:
                raise ValueError("expected none, balanced or three numbers like 1,2.5,4") from None
        return value

    @field_validator("class_weights")
    @classmethod
    def _three_weights(cls, value):
        if isinstance(value, list):
            if len(value) != 3 or min(value) < 0 or sum(value) <= 0:
                raise ValueError("expected three weights >= 0 (hom-ref, het, hom-alt), not all zero")
        return value


# ---------------------------------------------------------------- call
class CallConfig(_Config):
    """call_variants + postprocess_variants: calling-mode examples in; a bgzipped, indexed VCF
    (and optionally a gVCF) out."""

    examples: str = Field(description="calling-mode examples, e.g. out/test.tfrecord@4.gz")
    checkpoint: Location = Field(description="a .keras model")
    ref: Location = Field(description="reference FASTA (.fai beside it): ##contig lines, gVCF REF bases")
    outfile: Location = Field(description="output .vcf.gz (+ .tbi)")
    sample_name: Optional[str] = Field(
        None, description="sample column; default: the SM of the read groups of `reads`, else SAMPLE")
    reads: list[Location] = Field(default_factory=list,
                                  description="the BAMs the examples came from (their read groups name the sample)")
    batch_size: int = Field(256, ge=1, le=65536, description="examples per model call")
    qual_filter: float = Field(1.0, ge=0, description="DeepVariant --qual_filter: variant calls with QUAL below "
                                                      "this get FILTER LowQual")
    gvcf_outfile: Optional[Location] = Field(
        None, description="also write a gVCF (.g.vcf.gz + .tbi): the calls plus reference blocks from "
                          "make_examples --gvcf")
    nonvariant_site_path: Optional[str] = Field(
        None, description="reference-block files of make_examples --gvcf_blocks (a NAME@N spec, glob or path); "
                          "default: SHARD.gvcf.tsv.gz beside each examples shard")
    threads: int = Field(2, ge=1, le=256, description="worker processes for inference (one shard each at a time)")
    engine: Literal["auto", "numpy", "keras"] = Field(
        "auto", description="inference: numpy (a NumPy forward pass of dvtrain's small_cnn / read_sums / "
                            "read_evidence, no TensorFlow start-up), keras, or auto (numpy when the model is built "
                            "of supported layers)")


# ---------------------------------------------------------------- evaluate
RegionRule = Literal["overlap", "contain"]
REGION_RULES: tuple[str, ...] = get_args(RegionRule)  # hap.py / vcfeval --bed-regions; DeepVariant's labeler
REGION_RULE_HELP = ("which events the confident BED keeps: 'overlap' (hap.py, vcfeval --bed-regions: any base "
                    "inside) or 'contain' (DeepVariant's labeler: the whole REF span inside one interval)")


class EvaluateConfig(_Config):
    truth_vcf: Location
    query_vcf: Location
    confident_bed: Optional[Location] = Field(None, description="hap.py -f: score only inside these regions")
    reference: Optional[Location] = Field(None, description="FASTA (.fai beside it) for normalisation and missing ##contig lines")
    output_prefix: Location = Field(description="writes PREFIX.summary.csv, .extended.csv, .vcf.gz (+.tbi) and .metrics.json")
    regions: list[str] = Field(default_factory=list, description="restrict to these contigs")
    truth_sample: Optional[str] = Field(None, description="sample column of the truth VCF (default: the first)")
    query_sample: Optional[str] = Field(None, description="sample column of the query VCF (default: the first)")
    pass_only: bool = Field(False, description="hap.py --pass-only: drop non-PASS query records before matching")
    stratification: Optional[Location] = Field(
        None, description="hap.py --stratification: TSV of NAME<TAB>BED (relative to the TSV); adds subsets to PREFIX.extended.csv")
    threads: int = Field(1, ge=1, le=256, description="worker processes for matching (clusters are independent)")
    region_rule: RegionRule = Field("overlap", description=REGION_RULE_HELP)


class MarginConfig(_Config):
    """A paired block bootstrap of F1(eval_vcf) - F1(baseline_eval_vcf) per variant type
    (``dvtrain.margin``); both are decision VCFs of ``evaluate`` against one truth."""

    eval_vcf: Location = Field(description="PREFIX.vcf.gz of `dvtrain evaluate` (e.g. the custom model's)")
    baseline_eval_vcf: Location = Field(description="the same for the call set it is compared with")
    output_json: Location
    block_size: int = Field(1000, ge=1, description="bases per resampled block (nearby records stay together)")
    resamples: int = Field(2000, ge=100, le=1_000_000)
    confidence: float = Field(0.95, gt=0, lt=1, description="of the percentile interval")
    seed: int = 0


# ---------------------------------------------------------------- whole case study
class Splits(_Config):
    """Contigs for each role; DeepVariant's case study trains on chr1, tunes on chr21, tests on chr20."""

    train: list[str] = Field(default_factory=lambda: ["chr1"], min_length=1, title="Training contigs",
                             description="make_examples --regions for the training set")
    tune: list[str] = Field(default_factory=lambda: ["chr21"], min_length=1, title="Tuning contigs",
                            description="held out from training; picks the best checkpoint")
    test: list[str] = Field(default_factory=lambda: ["chr20"], min_length=1, title="Test contigs",
                            description="held out from both; called and evaluated for the report")


class BaselineConfig(_Config):
    """Either an existing model, or BAMs from which a generic baseline model is trained first."""

    model: Optional[Location] = Field(None, title="Baseline model", description="an existing .keras model (warm-start point); with engine deepvariant a DeepVariant checkpoint prefix")
    reads: list[Location] = Field(default_factory=list, title="Baseline reads",
                              description="generic-coverage BAMs to train a baseline from, when no model is given")
    downsample_fractions: list[float] = Field(
        default_factory=list, title="Extra coverages",
        description="with `reads`: also train on them downsampled to each of these fractions (seeded), as "
                    "generic models are trained over a range of coverages; e.g. [0.5, 0.25] of 30x = 15x and 7.5x")
    channels: Optional[Channels] = Field(
        None, title="Baseline model's channels",
        description="optional channels the given model was trained with (its example_info.json); "
                    "default: the case study's `channels`")

    @model_validator(mode="after")
    def _one_of(self) -> "BaselineConfig":
        if (self.model is None) == (not self.reads):
            raise ValueError("baseline needs exactly one of `model` or `reads`")
        if self.downsample_fractions and not self.reads:
            raise ValueError("baseline.downsample_fractions needs baseline.reads")
        if any(not 0 < f <= 1 for f in self.downsample_fractions):
            raise ValueError("baseline.downsample_fractions must each be in (0, 1]")
        return self


class AugmentConfig(_Config):
    """One extra pass over other reads for the custom model's training set (the case study's
    tip: downsampled BAMs add examples at the target coverage)."""

    reads: list[Location] = Field(min_length=1, title="Reads", description="indexed BAMs, e.g. the generic ones")
    downsample_fraction: float = Field(gt=0, le=1, title="Downsample fraction",
                                       description="keep this fraction of the reads (seeded), e.g. 4x / 30x = 0.13")


class CaseStudyConfig(_Config):
    """The whole case study: one form in the Prefect UI, one YAML file for the CLI."""

    model_config = ConfigDict(extra="forbid", title="Case study")

    name: str = Field("lowcov", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", title="Name",
                      description="short tag for run names, e.g. train-<name>-chr1-<date>")
    reference: Location = Field(title="Reference FASTA", description="indexed FASTA (.fai beside it)")
    truth_vcf: Location = Field(title="Truth VCF", description="bgzipped, tabix-indexed truth variants (e.g. GIAB)")
    truth_bed: Location = Field(title="Truth BED", description="confident regions of the truth set")
    reads: list[Location] = Field(min_length=1, title="Reads",
                              description="indexed BAMs of the low-coverage platform to train for")
    min_coverage: int = Field(2, ge=0, le=1000, title="Minimum coverage",
                              description="keep bases covered by more than this many reads (2: >= 3 reads can vote)")
    splits: Splits = Field(default_factory=Splits, title="Splits")
    baseline: BaselineConfig = Field(title="Baseline")
    augment: list[AugmentConfig] = Field(
        default_factory=list, title="Training augmentation",
        description="extra training-split passes for the custom model (make_examples --downsample_fraction over "
                    "these BAMs); the tune and test splits stay the low-coverage reads only")
    vsc_min_count_snps: int = Field(
        2, ge=1, le=1000, title="Min SNP reads (low coverage)",
        description="make_examples --vsc_min_count_snps for the examples of `reads` (custom train/tune, test); "
                    "DeepVariant's 2 drops every het SNP seen by one read, a third of them at 4x")
    vsc_min_count_indels: int = Field(2, ge=1, le=1000, title="Min indel reads (low coverage)",
                                      description="make_examples --vsc_min_count_indels, likewise")
    vsc_min_snp_lod: Optional[float] = Field(
        None, ge=-100, le=100, title="Min SNP candidate LOD (calling)",
        description="make_examples --vsc_min_snp_lod for the test examples of `reads`: a SNP candidate also "
                    "needs this log10 het-vs-hom-ref likelihood ratio from its reads' base qualities. Calling "
                    "skips 1-read candidates from low-quality bases or deep positions, nearly all errors; the "
                    "custom model still trains and tunes on every candidate. Empty: no filter")
    channels: Channels = Field(
        default_factory=lambda: ["insert_size"], title="Optional channels",
        description="make_examples --channels for every example set of the run: insert_size (DeepVariant's "
                    "default), homopolymer_weighted, is_homopolymer")
    pileup_image_height: int = Field(
        100, ge=6, le=1000, title="Image height (low coverage)",
        description="make_examples --pileup_image_height for the custom model's examples (custom train/tune, "
                    "augment, test): 5 reference rows + up to height-5 reads. At 4x 32 rows draw about every "
                    "read with a third of the pixels, but cost the demo 0.005 INDEL F1; the baseline keeps 100")
    workdir: Location = Field(Path("demo-output"), title="Work directory",
                          description="where every stage writes; shared by all workers of a run")
    shards: int = Field(2, ge=1, le=4096, title="Shards", description="make_examples shards per dataset")
    max_concurrency: int = Field(2, ge=1, le=1024, title="Max concurrency",
                                 description="make_examples shards running at once")
    shuffle_shards: int = Field(2, ge=1, le=4096, title="Shuffle shards", description="output shards of the global shuffle")
    baseline_epochs: int = Field(8, ge=1, le=1000, title="Baseline epochs",
                                 description="epochs when training the baseline from reads")
    custom_epochs: int = Field(8, ge=1, le=1000, title="Custom epochs",
                               description="epochs of warm-started training on the low-coverage reads")
    baseline_best_checkpoint_metric: Literal[TUNE_METRICS] = Field(  # type: ignore[valid-type]
        "tune/loss", title="Baseline best checkpoint metric",
        description="picks the baseline's best_model.keras when it is trained from reads. A generic 30x tune set "
                    "is nearly all correct (the demo's: 499 examples, F1 0.99+, one example = 0.002 of F1), so F1 "
                    "ties or flips on single examples where tune/loss still ranks the checkpoints")
    custom_best_checkpoint_metric: Literal[TUNE_METRICS] = Field(  # type: ignore[valid-type]
        "tune/f1_weighted", title="Custom best checkpoint metric",
        description="picks the custom model's best_model.keras (DeepVariant's default, tune/f1_weighted)")
    architecture: Architecture = Field(
        "read_sums", title="Architecture",
        description="the network of both models (the custom model warm-starts from the baseline, so they share "
                    "it): read_sums, read_evidence, small_cnn or inception_v3 (dvtrain train's architecture; "
                    "the deepvariant engine trains DeepVariant's own model)")
    batch_size: int = Field(32, ge=1, le=65536, title="Batch size")
    learning_rate: float = Field(1e-3, gt=0, le=1, title="Learning rate")
    sample_name: Optional[str] = Field(None, min_length=1, title="Sample name",
                                       description="sample column of the called VCFs (default: the SM of the BAMs' read groups, else SAMPLE)")
    seed: int = Field(42, ge=0, title="Seed", description="every random choice derives from it")
    dataset_json: Optional[Location] = Field(None, title="Dataset provenance",
                                         description="e.g. simulate's dataset.json, copied into the report")
    training_work_pool: Optional[str] = Field(
        None, title="Training work pool",
        description="submit training to a deployment of the train-model flow on this work pool (e.g. gpu-pool) "
                    "and wait for it; empty: train in-process",
    )
    storage_blocks: dict[Annotated[str, Field(pattern=r"^(s3|gs)://[^/]+")], str] = Field(
        default_factory=dict, title="Storage blocks",
        description="saved storage blocks for URI prefixes, e.g. {\"s3://my-bucket\": \"my-s3-block\"}; "
                    "unlisted buckets use the saved S3 Bucket / GCS Bucket block of the same bucket name",
    )
    task_runner: Literal["threads", "dask"] = Field(
        "threads", title="Shard task runner",
        description="where make_examples shards run: threads of the flow's process, or a Dask cluster "
                    "(worker processes: shards are CPU-bound Python, so processes scale past one core)",
    )
    dask_address: Optional[str] = Field(
        None, title="Dask scheduler address",
        description="e.g. tcp://scheduler:8786 (every worker needs dvtrain and the workdir); "
                    "empty with task_runner dask: a local cluster of dask_workers processes (one per flow process)",
    )
    dask_workers: int = Field(2, ge=1, le=1024, title="Dask workers",
                              description="worker processes of the temporary local Dask cluster (1 thread each)")
    region_rule: RegionRule = Field("overlap", title="Confident-region rule for scoring",
                                    description=REGION_RULE_HELP)
    peers: list[Literal["bcftools", "freebayes"]] = Field(
        default_factory=lambda: ["bcftools", "freebayes"], title="Peer callers",
        description="conventional callers run on the test split with the same reads and scored in the same "
                    "coverage BED (rows next to baseline and custom); a missing binary is skipped; empty: none",
    )
    engine: Literal["native", "deepvariant"] = Field(
        "native", title="Engine",
        description="native: dvtrain's stages; deepvariant: make_examples, train and call run in Google's "
                    "DeepVariant containers (baseline.model is then a DeepVariant checkpoint); coverage, shuffle "
                    "and evaluation stay dvtrain's (docs/deepvariant-engine.md)",
    )
    deepvariant: DeepVariantEngineConfig = Field(default_factory=DeepVariantEngineConfig, title="DeepVariant containers")

    @model_validator(mode="before")
    @classmethod
    def _deepvariant_defaults(cls, data):
        """With engine deepvariant, what DeepVariant's train can do is the default: inception_v3,
        and tune/f1_weighted to pick the baseline's checkpoint."""
        if isinstance(data, dict) and data.get("engine") == "deepvariant":
            data = {"architecture": "inception_v3", "baseline_best_checkpoint_metric": "tune/f1_weighted", **data}
        return data

    @model_validator(mode="after")
    def _deepvariant_can_train_it(self) -> "CaseStudyConfig":
        """DeepVariant's train trains inception_v3 and keeps the checkpoints whose metric is
        higher: settings it would ignore or misread are refused here, before any run."""
        if self.engine != "deepvariant":
            return self
        for name in ("baseline_best_checkpoint_metric", "custom_best_checkpoint_metric"):
            problem = deepvariant_training_refusal(getattr(self, name), None, name)
            if problem:
                raise ValueError(problem)
        problem = deepvariant_training_refusal(None, self.architecture)
        if problem:
            raise ValueError(problem)
        return self

    def container_engine(self) -> Optional[DeepVariantEngineConfig]:
        """The container settings when ``engine`` is deepvariant, else None."""
        return self.deepvariant if self.engine == "deepvariant" else None

    def input_locations(self) -> list[Location]:
        """Every input the run reads (reference, truth, BAMs, baseline model, dataset
        provenance), in config order, each once."""
        found = [self.reference, self.truth_vcf, self.truth_bed, *self.reads, *self.baseline.reads,
                 *(b for aug in self.augment for b in aug.reads), self.baseline.model, self.dataset_json]
        return list(dict.fromkeys(x for x in found if x is not None))


def load_case_study(path: str | Path, overrides: dict | None = None) -> CaseStudyConfig:
    """Read a case-study YAML; relative paths resolve against the YAML's folder."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except FileNotFoundError:
        raise InputError(p, "config file does not exist") from None
    except yaml.YAMLError as e:
        raise InputError(p, f"not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(p, "config must be a YAML mapping")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    base = p.resolve().parent

    def fix(v):
        return str(v) if _uri_scheme(str(v)) or Path(str(v)).is_absolute() else os.path.normpath(base / str(v))

    for key in ("reference", "truth_vcf", "truth_bed", "dataset_json"):
        if key in data and data[key] is not None:
            data[key] = fix(data[key])
    if "reads" in data and isinstance(data["reads"], list):
        data["reads"] = [fix(r) for r in data["reads"]]
    bl = data.get("baseline") or {}
    if isinstance(bl, dict):
        if bl.get("model"):
            bl["model"] = fix(bl["model"])
        if isinstance(bl.get("reads"), list):
            bl["reads"] = [fix(r) for r in bl["reads"]]
    for extra in data.get("augment") or []:
        if isinstance(extra, dict) and isinstance(extra.get("reads"), list):
            extra["reads"] = [fix(r) for r in extra["reads"]]
    if "workdir" in data and data["workdir"] is not None and "workdir" not in (overrides or {}):
        data["workdir"] = fix(data["workdir"])
    try:
        return CaseStudyConfig.model_validate(data)
    except ValidationError as e:
        raise InputError(p, describe_validation_error(e)) from None


def _set_dotted(data: dict, key: str, value) -> None:
    parts = key.split(".")
    cur = data
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


# ---------------------------------------------------------------- calling a BAM with a trained model
_CHECKED = ("make_examples option the model fixes (its example_info.json): empty takes the model's value; "
            "a value given must equal it, or the call is refused")


class CallBamConfig(_Config):
    """A sample's BAMs + a trained model -> VCF (+ gVCF), as DeepVariant's run_deepvariant:
    make_examples (calling mode, sharded) then call_variants + postprocess.

    The image shape and channels, candidate thresholds, read filters and indel options come
    from the model (its example_info.json); each option below may be given only to confirm
    it: one that disagrees with the model is refused (dvtrain.call_bam)."""

    model_config = ConfigDict(extra="forbid", title="Call a BAM")

    model: Location = Field(title="Model", description="trained .keras model, e.g. WORKDIR/custom/train/best_model.keras "
                                                       "(its example_info.json beside it)")
    ref: Location = Field(title="Reference FASTA", description="indexed FASTA (.fai beside it) the reads are aligned to")
    reads: list[Location] = Field(min_length=1, title="Reads", description="indexed BAMs/CRAMs of the sample to call")
    output_vcf: Location = Field(title="Output VCF", description="bgzipped VCF (.vcf.gz, + .tbi)")
    output_gvcf: Optional[Location] = Field(None, title="Output gVCF",
                                            description="also a gVCF (.g.vcf.gz, + .tbi) with reference blocks")
    regions: list[str] = Field(default_factory=list, title="Regions",
                               description="contigs, chr:start-end (1-based) or BED files to call; empty: every contig")
    num_shards: int = Field(2, ge=1, le=4096, title="Shards",
                            description="make_examples shards (run_deepvariant --num_shards): run in parallel")
    intermediate_results_dir: Optional[Location] = Field(
        None, title="Intermediate results",
        description="where the examples go; default: OUTPUT_VCF's folder, <name>.intermediate/")
    sample_name: Optional[str] = Field(None, min_length=1, title="Sample name",
                                       description="sample column (default: the SM of the BAMs' read groups, else SAMPLE)")
    batch_size: int = Field(256, ge=1, le=65536, title="Batch size", description="examples per model call")
    qual_filter: float = Field(1.0, ge=0, title="QUAL filter",
                               description="variant calls with QUAL below this get FILTER LowQual (DeepVariant's)")
    seed: int = Field(42, ge=0, title="Seed", description="make_examples' read sampling where a window holds more "
                                                          "reads than the image has rows")
    # the model's options: None takes the model's value; a value is checked against it
    channels: Optional[Channels] = Field(None, title="Optional channels (check)", description=_CHECKED)
    pileup_image_height: Optional[int] = Field(None, ge=6, le=1000, title="Image height (check)", description=_CHECKED)
    pileup_image_width: Optional[int] = Field(None, ge=3, le=2001, title="Image width (check)", description=_CHECKED)
    vsc_min_count_snps: Optional[int] = Field(None, ge=1, title="Min SNP reads (check)", description=_CHECKED)
    vsc_min_count_indels: Optional[int] = Field(None, ge=1, title="Min indel reads (check)", description=_CHECKED)
    vsc_min_fraction_snps: Optional[float] = Field(None, ge=0, le=1, title="Min SNP fraction (check)",
                                                   description=_CHECKED)
    vsc_min_fraction_indels: Optional[float] = Field(None, ge=0, le=1, title="Min indel fraction (check)",
                                                     description=_CHECKED)
    vsc_min_snp_lod: Optional[float] = Field(None, ge=-100, le=100, title="Min SNP candidate LOD (check)",
                                             description=_CHECKED)
    min_mapping_quality: Optional[int] = Field(None, ge=0, title="Min mapping quality (check)", description=_CHECKED)
    min_base_quality: Optional[int] = Field(None, ge=0, title="Min base quality (check)", description=_CHECKED)
    indel_informative_reads: Optional[bool] = Field(None, title="Indel informative reads (check)", description=_CHECKED)
    indel_haplotype_support: Optional[bool] = Field(None, title="Indel haplotype support (check)", description=_CHECKED)
    merge_insertion_alleles: Optional[bool] = Field(None, title="Merge insertion alleles (check)", description=_CHECKED)


class CallVariantsConfig(CallBamConfig):
    """The call-variants flow: :class:`CallBamConfig` (the same calling), then the calls scored
    against a truth set when one is given."""

    model_config = ConfigDict(extra="forbid", title="Call variants")

    max_concurrency: int = Field(2, ge=1, le=1024, title="Max concurrency", description="make_examples shards running at once")
    truth_vcf: Optional[Path] = Field(None, title="Truth VCF",
                                      description="bgzipped, indexed truth variants; given: the calls are evaluated")
    truth_bed: Optional[Path] = Field(None, title="Confident regions",
                                      description="score only inside these regions (e.g. a coverage BED); needs a truth VCF")

    @model_validator(mode="after")
    def _bed_needs_truth(self) -> "CallVariantsConfig":
        if self.truth_bed is not None and self.truth_vcf is None:
            raise ValueError("truth_bed needs truth_vcf")
        return self

    def call_bam_config(self) -> CallBamConfig:
        """The calling part of this config."""
        return CallBamConfig.model_validate(self.model_dump(include=set(CallBamConfig.model_fields)))


# ---------------------------------------------------------------- peer callers (benchmark-peers)
PeerName = Literal["bcftools", "freebayes"]


class PeersConfig(_Config):
    """Call the same BAMs with conventional callers (bcftools, freebayes) and score them like the models."""

    model_config = ConfigDict(extra="forbid", title="Peer callers")

    ref: Location = Field(title="Reference FASTA", description="indexed FASTA (.fai beside it)")
    reads: list[Location] = Field(min_length=1, title="Reads", description="indexed BAMs to call")
    regions: list[str] = Field(default_factory=list, title="Regions",
                               description="contigs, chr:start-end (1-based) or BED files; empty: every contig")
    truth_vcf: Optional[Location] = Field(None, title="Truth VCF", description="given: each peer's calls are evaluated")
    confident_regions: Optional[Location] = Field(None, title="Confident regions",
                                                  description="score only inside these regions (BED)")
    region_rule: RegionRule = Field("overlap", title="Confident-region rule", description=REGION_RULE_HELP)
    output_dir: Location = Field(title="Output folder", description="writes PEER.vcf.gz(.tbi) and PEER.eval.summary.csv")
    peers: list[PeerName] = Field(default_factory=lambda: ["bcftools", "freebayes"], title="Peers",
                                  description="peer callers to run; one whose binary is missing is skipped")
