"""The ``dvtrain`` command line: one subcommand per stage, plus ``run`` for the whole flow.

Flags follow DeepVariant's names where they mean the same thing. Every subcommand builds
the same pydantic config the Python API and the Prefect tasks take. Bad input is reported
as one line (``dvtrain: error: FILE: problem``) with exit code 2 and no traceback; an
unexpected error as one line naming the stage and a log file with the full traceback
(:mod:`dvtrain.runlog`), exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
import yaml
from pydantic import BaseModel, ValidationError

from . import config as C
from . import uri
from .errors import DvtrainError, describe_validation_error
from .runlog import CommandLog, stage_of

#: the log of the command ``main`` is running (where its traceback goes if it fails)
_LOG = CommandLog("dvtrain")


def _logs_beside(location: Any, inside: bool = False) -> None:
    """An unexpected error's log goes to ``logs/`` beside (or ``inside``) this output."""
    _LOG.logs_beside(location, inside)


def _split(values: tuple[str, ...]) -> list[str]:
    """Accept repeated flags and DeepVariant-style comma-separated lists."""
    return [x for v in values for x in v.split(",") if x]


def _build(schema: type[BaseModel], /, **kwargs: Any) -> BaseModel:
    return schema.model_validate({k: v for k, v in kwargs.items() if v is not None})


def _emit(result: Any) -> None:
    click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))


def _container_options(f: Callable) -> Callable:
    """--deepvariant (run Google's container for this stage), --deepvariant_version,
    --container_runtime, --print-command (a dry run)."""
    f = click.option("--print-command", "print_command", is_flag=True, default=None,
                     help="with --deepvariant: print the container command (argument list, image, mounts) and run "
                          "nothing; no container engine is needed")(f)
    f = click.option("--container_runtime", type=click.Choice(["docker", "apptainer"]),
                     help="with --deepvariant: docker (default) or apptainer")(f)
    f = click.option("--deepvariant_version", help="with --deepvariant: image tag (default 1.6.1)")(f)
    return click.option("--deepvariant", "use_container", is_flag=True, default=None,  # None: not in a VCF's command line
                        help="run this stage in the google/deepvariant container (the deepvariant engine)")(f)


def _container_engine(version: str | None, runtime: str | None) -> "C.DeepVariantEngineConfig":
    opts = {k: v for k, v in (("version", version), ("runtime", runtime)) if v}
    return _build(C.DeepVariantEngineConfig, **opts)  # type: ignore[return-value]


def _dry_run_needs_container(use_container: bool | None, print_command: bool | None) -> None:
    if print_command and not use_container:
        raise DvtrainError("--print-command prints the commands of the deepvariant engine: add --deepvariant")


def _run_containers(engine: "C.DeepVariantEngineConfig", build: Callable[[], Any], print_command: bool | None) -> None:
    """Build the container specs (``build()``: one spec or a tuple) and run them in order, their
    logs on stderr; print what ran. With ``print_command``, build them as a plan (inputs need
    not exist, nothing is made), print the exact commands and run nothing."""
    from contextlib import nullcontext

    from .containers import describe, planning, runtime

    with planning() if print_command else nullcontext():
        built = build()
    specs = built if isinstance(built, tuple) else (built,)
    if print_command:
        return _emit({"engine": "deepvariant", "dry_run": True, "runs": [describe(s, engine) for s in specs]})
    rt = runtime(engine)
    for spec in specs:
        rt.run(spec, log=lambda line: click.echo(line, err=True))
    _emit({"engine": "deepvariant", "runs": [{"image": s.image, "command": list(s.command)} for s in specs]})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dvtrain")
def cli() -> None:
    """Train and evaluate custom DeepVariant-style callers for very-low-coverage reads."""


@cli.command()
@click.option("--outdir", required=True, type=click.Path(path_type=Path), help="where to write the dataset")
@click.option("--seed", type=int, default=None)
@click.option("--config", "config_yaml", type=click.Path(path_type=Path), help="YAML with SimulateConfig fields")
@click.option("--contig", "contigs", multiple=True, help="NAME=LENGTH (repeatable); replaces the default contigs")
def simulate(outdir: Path, seed: int | None, config_yaml: Path | None, contigs: tuple[str, ...]) -> None:
    """Generate the embedded demo dataset (genome, truth VCF/BED, BAMs of two platforms)."""
    from .simulate import simulate as run

    _logs_beside(outdir, inside=True)
    data: dict = _read_yaml(config_yaml) if config_yaml else {}
    data["outdir"] = outdir
    if seed is not None:
        data["seed"] = seed
    if contigs:
        data["contigs"] = {c.split("=")[0]: int(c.split("=")[1]) for c in contigs}
    _emit(run(C.SimulateConfig.model_validate(data)))


@cli.command()
@click.option("--reads", multiple=True, required=True, help="BAM(s), repeat or comma-separate")
@click.option("--truth_bed", required=True, type=click.Path(path_type=Path))
@click.option("--output_bed", required=True, type=click.Path(path_type=Path))
@click.option("--min_coverage", type=int, default=2, show_default=True, help="keep bases with depth > this")
@click.option("--merged_bam", type=click.Path(path_type=Path), default=None)
def coverage(reads, truth_bed, output_bed, min_coverage, merged_bam) -> None:
    """Stage 1: merge BAMs, keep bases with depth > min_coverage, intersect with the truth BED."""
    from .coverage import coverage_bed

    _logs_beside(output_bed)
    cfg = _build(C.CoverageConfig, reads=_split(reads), truth_bed=truth_bed, output_bed=output_bed,
                 min_coverage=min_coverage, merged_bam=merged_bam)
    _emit(coverage_bed(cfg))  # type: ignore[arg-type]


@cli.command("make-examples")
@click.option("--mode", type=click.Choice(["training", "calling"]), required=True)
@click.option("--ref", required=True, type=click.Path(path_type=Path))
@click.option("--reads", multiple=True, required=True, help="BAM(s), repeat or comma-separate")
@click.option("--examples", required=True, help="output, e.g. out/train.tfrecord@4.gz")
@click.option("--task", type=int, default=0, show_default=True)
@click.option("--regions", multiple=True, help="contig, chr:start-end or BED; repeat or space-separate")
@click.option("--truth_variants", type=click.Path(path_type=Path))
@click.option("--confident_regions", type=click.Path(path_type=Path))
@click.option("--channels", multiple=True, help="optional channels, comma-separated: insert_size (default), homopolymer_weighted, is_homopolymer")
@click.option("--vsc_min_count_snps", type=int)
@click.option("--vsc_min_count_indels", type=int)
@click.option("--vsc_min_fraction_snps", type=float)
@click.option("--vsc_min_fraction_indels", type=float)
@click.option("--vsc_min_snp_lod", type=float,
              help="SNP candidates also need this het-vs-hom-ref log10 likelihood ratio from their reads' "
                   "base qualities (default: no such filter, as DeepVariant)")
@click.option("--min_mapping_quality", type=int)
@click.option("--min_base_quality", type=int)
@click.option("--indel_informative_reads/--noindel_informative_reads", default=None,
              help="indel images leave out reads that stop inside the indel's repeat (default on; off: as DeepVariant)")
@click.option("--indel_haplotype_support/--noindel_haplotype_support", default=None,
              help="indel images: reads are judged against the reference and the alt haplotype (default on)")
@click.option("--merge_insertion_alleles/--nomerge_insertion_alleles", default=None,
              help="insertions of one length at one anchor form one candidate whatever their bases (default on)")
@click.option("--pileup_image_height", type=int)
@click.option("--pileup_image_width", type=int)
@click.option("--exclude_regions", multiple=True, help="regions to leave out (contig, chr:start-end or BED)")
@click.option("--downsample_fraction", type=float, help="keep this fraction of reads (seeded); 0: all, as DeepVariant")
@click.option("--training_random_emit_ref_sites", type=float, help="emit this fraction of non-candidate sites (label 0)")
@click.option("--preset", type=click.Choice(["deepvariant"]),
              help="deepvariant: every option not given takes DeepVariant make_examples' value (dvtrain's indel "
                   "options off, no optional channel)")
@click.option("--gvcf_blocks", "gvcf", is_flag=True, default=None,  # DeepVariant's --gvcf takes a path: not this
              help="calling mode: also write reference blocks to SHARD.gvcf.tsv.gz (for call --gvcf_outfile)")
@click.option("--gvcf_gq_binsize", type=int, help="GQ bin size of the reference blocks (default 5)")
@click.option("--seed", type=int)
@_container_options
def make_examples_cmd(reads, regions, channels, exclude_regions, use_container, deepvariant_version,
                      container_runtime, print_command, **kw) -> None:
    """Stage 2: candidates -> pileup tensors -> tf.Example shard --task of N."""
    from .make_examples import make_examples

    _dry_run_needs_container(use_container, print_command)
    _logs_beside(kw["examples"])
    regs = [r for v in regions for r in v.split()]
    cfg = _build(C.MakeExamplesConfig, reads=_split(reads), regions=regs,
                 exclude_regions=[r for v in exclude_regions for r in v.split()],
                 channels=_split(channels) if channels else None, **kw)
    if use_container:
        from .containers import make_examples_spec

        engine = _container_engine(deepvariant_version, container_runtime)
        return _run_containers(engine, lambda: make_examples_spec(cfg, engine), print_command)  # type: ignore[arg-type]
    _emit(make_examples(cfg))  # type: ignore[arg-type]


def _beam_flags(args: list[str]) -> list[str]:
    """Extra command-line words as Beam flags: ``--flag=value``, ``--flag value`` or ``--switch``."""
    flags: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise click.UsageError(f"unexpected argument {arg!r} (Beam options look like --flag=value)")
        if "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("-"):
            arg, i = f"{arg}={args[i + 1]}", i + 1
        flags.append(arg)
        i += 1
    return flags


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--input_pattern_list", required=True, help="comma-separated shard specs / globs")
@click.option("--output_pattern_prefix", required=True)
@click.option("--output_dataset_name", required=True)
@click.option("--output_dataset_config_pbtxt", type=click.Path(path_type=Path))
@click.option("--num_shards", type=int)
@click.option("--seed", type=int)
@click.option("--memory_mb", type=int, help="examples one worker holds in memory (MiB, default 128); the rest spill")
@click.option("--spill_dir", help="folder for spilled buckets (default: beside the output; gs://... on Dataflow)")
@click.option("--progress/--no-progress", "show_progress", default=True, show_default=True,
              help="progress bar on stderr (drawn only on a terminal)")
@click.option("--runner", help="Beam runner: FnApiRunner (default, in-process), BundleBasedDirectRunner, "
                               "DataflowRunner, SparkRunner, FlinkRunner, PortableRunner, ...")
@click.pass_context
def shuffle(ctx: click.Context, input_pattern_list, show_progress: bool, **kw) -> None:
    """Stage 3: global shuffle (Apache Beam) + dataset_config.pbtxt.

    Any other --flag=value is a Beam pipeline option, as in DeepVariant's shuffle script,
    e.g. --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
    (docs/shuffle-runners.md).
    """
    from .shuffle import shuffle as run

    _logs_beside(kw["output_pattern_prefix"])
    cfg = _build(C.ShuffleConfig, input_pattern_list=_split((input_pattern_list,)),  # type: ignore[arg-type]
                 pipeline_options=_beam_flags(ctx.args) or None, **kw)
    bar = click.progressbar(length=1000, label="shuffling", file=sys.stderr, show_percent=True, show_eta=True) \
        if show_progress else None

    def report(p: dict) -> None:
        assert bar is not None
        bar.label = f"shuffled {p['written']:,} records"
        bar.update(max(0, int(1000 * p["fraction"]) - bar.pos))

    if bar is None:
        _emit(run(cfg))
        return
    with bar:
        result = run(cfg, progress=report)
    _emit(result)


def _train_option_names() -> dict[str, str]:
    """Every name ``--config.NAME`` accepts (field names and DeepVariant aliases) -> field name."""
    from pydantic import AliasChoices

    names = {}
    for field, info in C.TrainConfig.model_fields.items():
        names[field] = field
        if isinstance(info.validation_alias, AliasChoices):
            names.update({str(a): field for a in info.validation_alias.choices})
    return names


_TRAIN_PATH_FIELDS = ("train_dataset_config", "tune_dataset_config", "experiment_dir", "init_checkpoint")


def _train_overrides(args: list[str]) -> dict[str, tuple[Any, str]]:
    """``--config.NAME=VALUE`` (or ``--config.NAME VALUE``) words -> {field: (value, flag)}.

    Values are YAML scalars or lists (``0.0005``, ``true``, ``adam``, ``[1, 2, 3]``); paths stay
    strings and an empty value means None (``--config.init_checkpoint=``).
    """
    import difflib

    names = _train_option_names()
    out: dict[str, tuple[Any, str]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--config."):
            raise DvtrainError(f"{arg}: unexpected argument (training options look like --config.NAME=VALUE)")
        name, eq, raw = arg[len("--config."):].partition("=")
        flag = f"--config.{name}"
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise DvtrainError(f"{flag}: needs a value ({flag}=VALUE)")
            raw, i = args[i + 1], i + 1
        if name not in names:
            close = difflib.get_close_matches(name, list(names), n=1)
            raise DvtrainError(f"{flag}: unknown training option" + (f" (did you mean --config.{close[0]}?)" if close else ""))
        field = names[name]
        if raw == "":
            value: Any = None
        elif field in _TRAIN_PATH_FIELDS:
            value = raw
        else:
            try:
                value = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise DvtrainError(f"{flag}: cannot read value {raw!r}") from None
        out[field] = (value, flag)
        i += 1
    return out


class _TrainProgress:
    """A progress bar on stderr for ``dvtrain train`` (click's: drawn on a terminal only)."""

    def __init__(self) -> None:
        self.bar = None

    def step(self, step: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="training", file=sys.stderr, show_pos=True, show_eta=True)
            self.bar.__enter__()
        self.bar.update(step - self.bar.pos)

    def evaluated(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.label = f"epoch {int(row['epoch']) + 1}/{row['epochs']} tune/f1_weighted {row['tune/f1_weighted']:.4f}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--train_dataset_pbtxt", "train_dataset_config", type=click.Path(path_type=Path))
@click.option("--tune_dataset_pbtxt", "tune_dataset_config", type=click.Path(path_type=Path))
@click.option("--experiment_dir", type=click.Path(path_type=Path))
@click.option("--init_checkpoint", type=click.Path(path_type=Path), help="warm start from this .keras model")
@click.option("--num_epochs", "epochs", type=int)
@click.option("--batch_size", type=int)
@click.option("--learning_rate", type=float)
@click.option("--seed", type=int)
@click.option("--config_yaml", type=click.Path(path_type=Path), help="YAML file of training options")
@click.option("--config", "dv_config", metavar="DV_CONFIG.py[:NAME]",
              help="with --deepvariant: DeepVariant's dv_config.py (as its train's --config; default: dv_config.py "
                   "beside the experiment folder, downloaded from the pinned release when missing)")
@click.option("--progress/--no-progress", "show_progress", default=True, show_default=True,
              help="progress bar on stderr (drawn only on a terminal)")
@_container_options
@click.pass_context
def train(ctx: click.Context, config_yaml: Path | None, dv_config: str | None, show_progress: bool,
          use_container: bool, deepvariant_version: str | None, container_runtime: str | None,
          print_command: bool | None, **kw) -> None:
    """Stage 4: train the genotype classifier; best checkpoint by --config.best_checkpoint_metric.

    Any training option is --config.NAME=VALUE, as in DeepVariant (e.g. --config.optimizer=adam
    --config.learning_rate=0.0005 --config.architecture=inception_v3 --config.class_weights=balanced);
    the flags below are shortcuts for a few of them, docs/architecture.md lists them all. Started
    again with the same options, a stopped run resumes from its last evaluation.
    """
    from .train import STATE_FILE, train as run

    _dry_run_needs_container(use_container, print_command)
    _logs_beside(kw.get("experiment_dir"), inside=True)
    data: dict[str, Any] = _read_yaml(config_yaml) if config_yaml else {}
    names = _train_option_names()
    data = {names.get(k, k): v for k, v in data.items()}
    flags = {k: f"{config_yaml}: {k}" for k in data}
    named = {"train_dataset_config": "--train_dataset_pbtxt", "tune_dataset_config": "--tune_dataset_pbtxt",
             "epochs": "--num_epochs"}
    for field, value in kw.items():
        if value is not None:
            data[field], flags[field] = value, named.get(field, f"--{field}")
    for field, (value, flag) in _train_overrides(ctx.args).items():
        data[field], flags[field] = value, flag
    try:
        cfg = C.TrainConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        field = str(err["loc"][0]) if err.get("loc") else ""
        field = names.get(field, field)
        where = flags.get(field) or named.get(field) or f"--config.{field}"
        raise DvtrainError(f"{where}: {err['msg']}") from None
    if dv_config and not use_container:
        raise DvtrainError("--config names DeepVariant's dv_config.py, for --deepvariant; "
                           "a YAML of training options is --config_yaml")
    if use_container:  # DeepVariant's own train, in its -gpu image
        from .containers import train_spec

        engine = _container_engine(deepvariant_version, container_runtime)
        if dv_config:
            engine = engine.model_copy(update={"train_config": dv_config})
        return _run_containers(engine, lambda: train_spec(cfg, engine), print_command)
    bar = _TrainProgress() if show_progress else None
    try:
        result = run(cfg, progress=bar.evaluated if bar else None, on_step=bar.step if bar else None)
    except KeyboardInterrupt:
        if bar:
            bar.close()
        click.echo(f"dvtrain: training interrupted; the same command resumes from the last evaluation "
                   f"saved in {Path(str(cfg.experiment_dir)) / STATE_FILE}", err=True)
        raise
    finally:
        if bar:
            bar.close()
    for line in result.get("notes", []) + ([result["message"]] if result.get("message") else []):
        click.echo(f"dvtrain: note: {line}", err=True)
    result.pop("history", None)
    _emit(result)


@cli.command()
@click.option("--examples", required=True, help="calling-mode examples, e.g. out/test.tfrecord@4.gz")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path))
@click.option("--ref", required=True, type=click.Path(path_type=Path))
@click.option("--outfile", required=True, type=click.Path(path_type=Path), help="output .vcf.gz")
@click.option("--sample_name", default=None, help="sample column (default: the BAMs' read-group SM, else SAMPLE)")
@click.option("--reads", multiple=True, help="the BAM(s) the examples came from: their read groups name the sample")
@click.option("--batch_size", type=int)
@click.option("--qual_filter", type=float, help="variant calls with QUAL below this are LowQual (default 1.0)")
@click.option("--gvcf_outfile", type=click.Path(path_type=Path), help="also write a gVCF (needs make-examples --gvcf_blocks)")
@click.option("--nonvariant_site_path", help="reference-block files (default: SHARD.gvcf.tsv.gz beside each shard)")
@click.option("--threads", type=int, help="inference worker processes (default 2)")
@click.option("--engine", type=click.Choice(["auto", "numpy", "keras"]), help="inference engine (default auto)")
@_container_options
@click.pass_context
def call(ctx: click.Context, reads, use_container: bool, deepvariant_version: str | None,
         container_runtime: str | None, print_command: bool | None, **kw) -> None:
    """Stage 5: call_variants + postprocess_variants -> bgzipped, indexed VCF (and gVCF)."""
    from .call import call_variants, command_line

    _dry_run_needs_container(use_container, print_command)
    _logs_beside(kw["outfile"])
    if use_container:  # DeepVariant's call_variants, then postprocess_variants
        from .containers import call_variants_specs

        engine = _container_engine(deepvariant_version, container_runtime)
        cfg = _build(C.CallConfig, reads=_split(reads), **kw)
        return _run_containers(engine, lambda: call_variants_specs(cfg, engine), print_command)  # type: ignore[arg-type]

    # the command line as parsed (flags in a fixed order), so the VCF header is reproducible
    cfg = _build(C.CallConfig, reads=_split(reads), **kw)
    _emit(call_variants(cfg, command_line=command_line(_parsed_argv(ctx))))  # type: ignore[arg-type]


def _parsed_argv(ctx: click.Context) -> list[str]:
    """The command line as parsed: the subcommand, then each given option in the command's
    order (defaults included, unset ones left out), so a VCF header written from it is
    reproducible."""
    return [ctx.command.name or ""] + [
        w for p in ctx.command.params if ctx.params.get(p.name) not in (None, ())
        for x in (ctx.params[p.name] if isinstance(ctx.params[p.name], tuple) else (ctx.params[p.name],))
        for w in (p.opts[0], str(x))]


@cli.command("postprocess-variants")
@click.option("--ref", required=True, type=click.Path(path_type=Path))
@click.option("--infile", required=True, help="call_variants output: CallVariantsOutput TFRecords (.tfrecord.gz)")
@click.option("--outfile", required=True, type=click.Path(path_type=Path), help="output .vcf.gz (+ .tbi)")
@click.option("--qual_filter", type=float, default=1.0, show_default=True, help="variant calls with lower QUAL are LowQual")
@click.option("--multi_allelic_qual_filter", type=float, default=1.0, show_default=True,
              help="drop a multi-allelic site's alt whose own QUAL is lower")
@click.option("--cnn_homref_call_min_gq", type=float, default=20.0, show_default=True,
              help="RefCalls with a lower GQ get GT ./.")
@click.option("--sample_name", default=None, help="sample column (default: the records' call_set_name)")
@click.pass_context
def postprocess_variants_cmd(ctx: click.Context, ref: Path, infile: str, outfile: Path, qual_filter: float,
                             multi_allelic_qual_filter: float, cnn_homref_call_min_gq: float,
                             sample_name: str | None) -> None:
    """DeepVariant's postprocess_variants (its rules and flag names) on call_variants'
    output -> bgzipped, indexed VCF."""
    from .call import DeepVariantRules, command_line, postprocess_call_variants_output

    _logs_beside(outfile)
    rules = DeepVariantRules(multi_allelic_qual_filter, cnn_homref_call_min_gq)
    _emit(postprocess_call_variants_output(infile, ref, outfile, qual_filter, sample_name, rules,
                                           command_line=command_line(_parsed_argv(ctx))))


@cli.command("clean")
def clean_cmd() -> None:
    """Empty the scratch folder ($DVTRAIN_SCRATCH: cached downloads of s3:// and gs://
    inputs, outputs a killed run left) of everything no running stage uses. The download
    cache also keeps itself under $DVTRAIN_SCRATCH_LIMIT (default 20G)."""
    from .scratch import clean, root, usage

    def size(n: int) -> str:
        return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"

    base = root()
    done = clean(base)
    kept = f"; kept {done.kept_in_use} in use by running stages ({size(usage(base))})" if done.kept_in_use else ""
    click.echo(f"{base}: removed {done.files} files, {size(done.bytes)}{kept}")


def _model_checks(f: Callable) -> Callable:
    """call-bam's flags for the options a model fixes (CALL_OPTIONS): each is only checked
    against the model's, never changes it."""
    from typing import get_args

    from .call_bam import CALL_OPTIONS

    for name in reversed(CALL_OPTIONS):
        kind = next(t for t in get_args(C.CallBamConfig.model_fields[name].annotation) if t is not type(None))
        if name == "channels":
            f = click.option("--channels", help="the model's optional channels, comma-separated (checked)")(f)
        elif kind is bool:
            f = click.option(f"--{name}/--no{name}", default=None, help="checked against the model")(f)
        else:
            f = click.option(f"--{name}", type=kind, help="checked against the model")(f)
    return f


@cli.command("call-bam")
@click.option("--model", required=True, type=click.Path(path_type=Path),
              help="trained .keras model (its example_info.json beside it says how to make its examples); with "
                   "--deepvariant a DeepVariant checkpoint prefix")
@click.option("--ref", required=True, type=click.Path(path_type=Path))
@click.option("--reads", multiple=True, required=True, help="BAM(s)/CRAM(s), repeat or comma-separate")
@click.option("--output_vcf", required=True, type=click.Path(path_type=Path), help="output .vcf.gz (+ .tbi)")
@click.option("--output_gvcf", type=click.Path(path_type=Path), help="also a gVCF (.g.vcf.gz + .tbi)")
@click.option("--regions", multiple=True, help="contig, chr:start-end or BED; repeat or space-separate")
@click.option("--num_shards", type=int, help="make_examples shards, run in parallel (default 2)")
@click.option("--intermediate_results_dir", type=click.Path(path_type=Path),
              help="where the examples go (default: OUTPUT_VCF's folder, NAME.intermediate/)")
@click.option("--sample_name", help="sample column (default: the BAMs' read-group SM, else SAMPLE)")
@click.option("--batch_size", type=int)
@click.option("--qual_filter", type=float, help="variant calls with QUAL below this are LowQual (default 1.0)")
@click.option("--seed", type=int)
@_model_checks
@_container_options
def call_bam_cmd(reads, regions, channels, use_container, deepvariant_version, container_runtime, print_command,
                 **kw) -> None:
    """Reference + BAM(s) + trained model -> VCF (+ gVCF), like run_deepvariant: make_examples
    (calling mode, shards in parallel) then call_variants + postprocess_variants.

    Image shape, channels, candidate thresholds, read filters and indel options come from the
    model (example_info.json beside it, written by dvtrain train). Any of those flags given
    must agree with the model; one that does not is refused before any work.
    """
    from .call_bam import call_bam

    _dry_run_needs_container(use_container, print_command)
    _logs_beside(kw["output_vcf"])
    cfg = _build(C.CallBamConfig, reads=_split(reads), regions=[r for v in regions for r in v.split()],
                 channels=_split((channels,)) if channels is not None else None, **kw)
    if use_container:  # DeepVariant's run_deepvariant; --model is then a DeepVariant checkpoint
        from .containers import call_spec

        engine = _container_engine(deepvariant_version, container_runtime)
        return _run_containers(engine, lambda: call_spec(cfg, engine), print_command)  # type: ignore[arg-type]
    _emit(call_bam(cfg, note=lambda line: click.echo(f"dvtrain: note: {line}", err=True)))  # type: ignore[arg-type]


@cli.command()
@click.argument("truth_vcf", type=click.Path(path_type=Path))
@click.argument("query_vcf", type=click.Path(path_type=Path))
@click.option("-f", "--confident_bed", type=click.Path(path_type=Path), help="score only inside these regions")
@click.option("-r", "--reference", type=click.Path(path_type=Path))
@click.option("-o", "--output_prefix", required=True, type=click.Path(path_type=Path))
@click.option("-l", "--location", "--regions", "regions", multiple=True,
              help="restrict to these contigs (comma-separated or repeated; hap.py -l)")
@click.option("--pass-only", "pass_only", is_flag=True, default=None, help="drop non-PASS query records first")
@click.option("--stratification", type=click.Path(path_type=Path), help="TSV of NAME<TAB>BED: subsets in PREFIX.extended.csv")
@click.option("--threads", type=int, help="worker processes for matching")
@click.option("--region-rule", "region_rule", type=click.Choice(C.REGION_RULES),
              help="confident BED: 'overlap' counts an event with any base inside (hap.py, vcfeval "
                   "--bed-regions; default), 'contain' only one wholly inside (DeepVariant's labeler)")
@click.option("--truth-sample", "truth_sample", help="sample of a multi-sample truth VCF (default: the first)")
@click.option("--query-sample", "query_sample", help="sample of a multi-sample query VCF (default: the first)")
@click.option("--happy", is_flag=True, default=False,
              help="also run hap.py itself (jmcdani20/hap.py:v0.3.12, --engine=vcfeval) to PREFIX.happy.*")
@click.option("--container_runtime", type=click.Choice(["docker", "apptainer"]), help="with --happy")
def evaluate(regions, happy: bool, container_runtime: str | None, **kw) -> None:
    """Stage 6: hap.py-style comparison (haplotype replay) -> PREFIX.summary.csv,
    PREFIX.extended.csv, PREFIX.vcf.gz and PREFIX.metrics.json."""
    from .evaluate import evaluate as run
    from .report import format_table

    _logs_beside(kw["output_prefix"])
    contigs = [c for r in regions for c in r.split(",") if c]
    cfg = _build(C.EvaluateConfig, regions=contigs, **kw)
    rows = run(cfg)  # type: ignore[arg-type]
    click.echo(format_table([r for r in rows if r.get("Filter") == "PASS"]))
    if cfg.confident_bed is not None:  # type: ignore[attr-defined]
        click.echo(f"confident regions: {cfg.region_rule} rule")  # type: ignore[attr-defined]
    if happy:
        from .containers import happy_spec, runtime

        engine = _container_engine(None, container_runtime)
        spec = happy_spec(cfg.model_copy(update={"output_prefix": f"{cfg.output_prefix}.happy"}), engine)  # type: ignore[attr-defined]
        runtime(engine).run(spec, log=lambda line: click.echo(line, err=True))


@cli.command()
@click.argument("eval_vcf", type=click.Path(path_type=Path))
@click.argument("baseline_eval_vcf", type=click.Path(path_type=Path))
@click.option("-o", "--output_json", required=True, type=click.Path(path_type=Path))
@click.option("--block_size", type=int, help="bases per resampled block [1000]")
@click.option("--resamples", type=int, help="bootstrap resamples [2000]")
@click.option("--confidence", type=float, help="of the percentile interval [0.95]")
@click.option("--seed", type=int)
def margin(**kw) -> None:
    """How sure is an F1 margin: a paired block bootstrap of F1(EVAL_VCF) - F1(BASELINE_EVAL_VCF)
    per variant type, from two `dvtrain evaluate` decision VCFs (PREFIX.vcf.gz) of one truth."""
    from .margin import margin as run

    _logs_beside(kw["output_json"])
    out = run(_build(C.MarginConfig, **kw))  # type: ignore[arg-type]
    for vtype in ("INDEL", "SNP"):
        m = out.get(vtype)
        if m and m["difference"] is None:
            click.echo(f"{vtype:5} F1 {m['f1']} vs {m['baseline_f1']}: undefined (a call set without calls)")
        elif m:
            click.echo(f"{vtype:5} F1 {m['f1']:.4f} vs {m['baseline_f1']:.4f}: {m['difference']:+.4f} "
                       f"(sd {m['sd']:.4f}; {m['confidence']:.0%} interval {m['low']:+.4f} to {m['high']:+.4f}; "
                       f"{m['truth_total']} truth variants, {m['blocks']} blocks)")


@cli.command("benchmark-peers")
@click.option("--ref", required=True, type=click.Path(path_type=Path))
@click.option("--reads", multiple=True, required=True, help="BAM(s), repeat or comma-separate")
@click.option("--regions", multiple=True, help="contig, chr:start-end or BED; repeat or space-separate")
@click.option("--truth_vcf", type=click.Path(path_type=Path), help="given: each peer's calls are evaluated")
@click.option("--confident_regions", type=click.Path(path_type=Path), help="score only inside these regions (BED)")
@click.option("--output_dir", required=True, type=click.Path(path_type=Path))
@click.option("--peers", default="bcftools,freebayes", show_default=True, help="comma-separated peer callers")
def benchmark_peers_cmd(reads, regions, peers, **kw) -> None:
    """Call the same BAMs with bcftools / freebayes and score them like the models."""
    from .peers import benchmark_peers
    from .report import format_table

    _logs_beside(kw["output_dir"], inside=True)
    cfg = _build(C.PeersConfig, reads=_split(reads), regions=[r for v in regions for r in v.split()],
                 peers=_split((peers,)), **kw)
    result = benchmark_peers(cfg)  # type: ignore[arg-type]
    if result["rows"]:
        click.echo(format_table([r for r in result["rows"] if r.get("Filter") == "PASS"]))
    else:
        _emit({"vcfs": result["vcfs"], "skipped": result["skipped"]})


@cli.command()
@click.option("--config", "config_yaml", required=True, type=click.Path(path_type=Path), help="case-study YAML")
@click.option("--workdir", help="local folder, or s3://bucket/prefix / gs://bucket/prefix")
@click.option("--min_coverage", type=int)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override any config field (dotted keys)")
@click.option("--print-command", "print_command", is_flag=True,
              help="engine deepvariant: print every container command the run would start (argument lists, "
                   "images, mounts), in order, and run nothing")
def run(config_yaml: Path, workdir: str | None, min_coverage: int | None, sets: tuple[str, ...],
        print_command: bool) -> None:
    """Run the whole case study as a Prefect flow (ephemeral Prefect if no server is set)."""
    overrides = _overrides(sets)
    if workdir is not None:
        overrides["workdir"] = str(uri.resolve(workdir))
    if min_coverage is not None:
        overrides["min_coverage"] = min_coverage
    cfg = C.load_case_study(config_yaml, overrides)
    if print_command:
        if cfg.engine != "deepvariant":
            raise DvtrainError("--print-command prints the deepvariant engine's container commands; the native engine "
                               "runs none (add --set engine=deepvariant)")
        from .containers import describe
        from .layout import container_plan

        return _emit({"engine": "deepvariant", "dry_run": True,
                      "runs": [describe(spec, cfg.deepvariant, stage) for stage, spec in container_plan(cfg)]})
    _logs_beside(uri.resolve(cfg.workdir), inside=True)
    import os

    from .validate import check_case_study

    check_case_study(cfg)  # fail fast, in one line, before Prefect starts

    # An ephemeral Prefect server needs no telemetry (its heartbeat also races the first SQLite migration).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows import ensure_logging_setup
    from flows.case_study import check_remote_case_study_inputs, custom_model_training

    ensure_logging_setup()  # Prefect's console handler first (it stands back if the root logger has one) ...
    _LOG.capture()  # ... then the run's records go to the log too, and tracebacks only there
    check_remote_case_study_inputs(cfg)  # remote inputs and storage credentials (blocks need the Prefect API)

    report = custom_model_training(cfg)
    click.echo(f"report: {uri.join(cfg.workdir, 'report.md')}")
    del report


def _overrides(sets: tuple[str, ...]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as a dict (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in sets:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        k, v = item.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


@cli.command()
@click.option("--config", "config_yaml", required=True, type=click.Path(path_type=Path), help="case-study YAML")
@click.option("--deployment", default="custom-model-training/scheduled-retraining", show_default=True,
              help="FLOW/DEPLOYMENT to run (deployments/deploy.py creates it)")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="override any config field (dotted keys)")
@click.option("--publish-to", "publish_to", help="a dvtrain-storage block to copy the finished run to")
@click.option("--watch", is_flag=True, help="follow the run to its end and print its report")
def submit(config_yaml: Path, deployment: str, sets: tuple[str, ...], publish_to: str | None, watch: bool) -> None:
    """Validate a case study here, then start it as a run of a deployment on the Prefect server
    of $PREFECT_API_URL (its workers run it); prints the run's page in the UI."""
    cfg = C.load_case_study(config_yaml, _overrides(sets))
    from flows import submit as S

    run = S.submit_case_study(cfg, deployment, publish_to)
    click.echo(f"submitted run {run.id} of {deployment}: {S.run_url(run.id)}")  # (named when it starts)
    if not watch:
        return
    final = S.watch(run.id, echo=click.echo)
    if not final.state.is_completed():
        message = (final.state.message or "").strip().splitlines()
        raise DvtrainError(f"run {final.name} ended {final.state.name}" + (f": {message[0]}" if message else "")
                           + f" ({S.run_url(final.id)})")
    report = S.report_markdown(final.id)
    click.echo(report if report else f"report: {uri.join(cfg.workdir, 'report.md')}")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise DvtrainError(f"{path}: config file does not exist") from None
    except yaml.YAMLError as e:
        raise DvtrainError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DvtrainError(f"{path}: config must be a YAML mapping")
    return data


def _command(argv: list[str]) -> str:
    """The subcommand of an argument list (its first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), "dvtrain")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    global _LOG
    handler: Callable[..., Any] = cli.main
    args = list(sys.argv[1:] if argv is None else argv)
    _LOG = CommandLog(_command(args))
    try:
        handler(args=args, prog_name="dvtrain", standalone_mode=False)
        return 0
    except click.exceptions.Abort:
        click.echo("dvtrain: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except DvtrainError as e:
        click.echo(f"dvtrain: error: {e}", err=True)
        return 2
    except ValidationError as e:
        click.echo(f"dvtrain: error: {describe_validation_error(e)}", err=True)
        return 2
    except OSError as e:  # missing file, permissions, read-only or full file system, ...
        where = e.filename if e.filename is not None else "(no file named)"
        click.echo(f"dvtrain: error: {where}: {e.strerror or e}", err=True)
        return 2
    except Exception as e:  # a bug or an environment problem: one line here, the traceback in a log file
        log = _LOG.write_failure(e)
        stage = stage_of(e) or _LOG.command
        click.echo(f"dvtrain: error: stage {stage} failed unexpectedly: {_first_line(e)} (full log: {log})", err=True)
        return 1
    finally:
        _LOG.close()


if __name__ == "__main__":
    sys.exit(main())
