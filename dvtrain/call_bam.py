"""Call a sample's BAMs with a trained model, as DeepVariant's ``run_deepvariant`` does:
make_examples (calling mode, shards in parallel) -> call_variants + postprocess -> VCF (+ gVCF).

A model only makes sense on examples made the way its training examples were: the image
height, width and channels, the candidate thresholds, the read filters and dvtrain's indel
options. ``dvtrain train`` keeps them in the ``example_info.json`` beside ``best_model.keras``
(make_examples records them, shuffle and train carry them; a ``calling`` entry adds what calling
changes, e.g. the case study's ``vsc_min_snp_lod``). :func:`plan` reads them back; an option the
caller gives must agree with the model's, or the run is refused in one line before any work.

The ``call-variants`` flow (deployment ``call-variants/on-demand``) runs the same :func:`plan`
through Prefect tasks; :func:`call_bam` runs it here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .config import MODEL_BOUND_OPTIONS, CallBamConfig, CallConfig, MakeExamplesConfig
from .errors import DvtrainError, InputError, require_file, require_keras_model

#: every option a model fixes: the image, then make_examples' choice and drawing of candidates
CALL_OPTIONS = ("channels", "pileup_image_height", "pileup_image_width", *MODEL_BOUND_OPTIONS)
INFO_NAME = "example_info.json"


@dataclass(frozen=True)
class ModelSettings:
    """What a model says about the examples it takes: ``options`` (every CALL_OPTIONS name),
    ``recorded`` (the names its example_info.json states; the rest are make_examples' defaults)."""

    info: Optional[Path]
    options: dict[str, Any]
    recorded: frozenset[str] = field(default_factory=frozenset)


def _defaults() -> dict[str, Any]:
    fields = MakeExamplesConfig.model_fields
    return {name: fields[name].get_default(call_default_factory=True) for name in CALL_OPTIONS}


def model_settings(model: str | Path) -> ModelSettings:
    """The options ``model`` was trained with, from the example_info.json beside it."""
    from .pileup import image_size, optional_channels

    options = _defaults()
    path = Path(model).parent / INFO_NAME
    if not path.is_file():
        return ModelSettings(None, options)
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        recorded: dict[str, Any] = {}
        if info.get("shape") is not None:
            recorded["pileup_image_height"], recorded["pileup_image_width"] = image_size(info)
        if info.get("channels"):
            recorded["channels"] = optional_channels(info)
        for section in ("make_examples", "calling"):  # calling's entries win: they are what calling changes
            values = info.get(section) or {}
            if not isinstance(values, dict):
                raise ValueError(f"{section!r} is not a JSON object")
            unknown = sorted(set(values) - set(MODEL_BOUND_OPTIONS))
            if unknown:
                raise ValueError(f"unknown make_examples option(s) {', '.join(unknown)} in {section!r}")
            recorded.update(values)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(path, f"not a usable example_info.json ({e})") from None
    options.update(recorded)
    return ModelSettings(path, options, frozenset(recorded))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    return "none" if value is None else str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def resolve_options(config: CallBamConfig) -> tuple[dict[str, Any], list[str]]:
    """The make_examples options to call ``config.model`` with, and notes for the user.

    An option given in ``config`` that the model records must equal it (else a one-line
    :class:`DvtrainError`); one the model does not record is taken as given."""
    settings = model_settings(config.model)
    options = dict(settings.options)
    for name in CALL_OPTIONS:
        given = getattr(config, name)
        if given is None:
            continue
        if name in settings.recorded and not _same(given, options[name]):
            raise DvtrainError(
                f"--{name} {_show(given)}: the model {config.model} takes {_show(options[name])} "
                f"({settings.info}); leave the flag out to call as it was trained")
        options[name] = given
    notes = []
    missing = [n for n in CALL_OPTIONS if n not in settings.recorded and getattr(config, n) is None]
    if missing:
        where = settings.info or f"no {INFO_NAME} beside {config.model}"
        notes.append(f"{where}: the model does not record {', '.join(missing)}; using make_examples' defaults "
                     f"for them (DeepVariant's), which may not be what it was trained with")
    return options, notes


@dataclass(frozen=True)
class CallPlan:
    """Every step of one call: make_examples shards, then call_variants + postprocess."""

    shards: list[MakeExamplesConfig]
    call: CallConfig
    options: dict[str, Any]
    notes: list[str]


def intermediate_dir(config: CallBamConfig) -> Path:
    """``intermediate_results_dir``, or ``NAME.intermediate/`` beside the output VCF."""
    if config.intermediate_results_dir is not None:
        return Path(str(config.intermediate_results_dir))
    out = Path(str(config.output_vcf))
    name = out.name
    for suffix in (".vcf.gz", ".vcf.bgz", ".vcf"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.parent / f"{name}.intermediate"


def plan(config: CallBamConfig) -> CallPlan:
    """Check the model and the options, and lay out the run (nothing is written)."""
    require_keras_model(config.model, "model")
    require_file(config.ref, "reference")
    options, notes = resolve_options(config)
    spec = str(intermediate_dir(config) / f"examples.tfrecord@{config.num_shards}.gz")
    gvcf = config.output_gvcf is not None
    shards = [MakeExamplesConfig(mode="calling", ref=config.ref, reads=config.reads, examples=spec, task=i,
                                 regions=config.regions, seed=config.seed, gvcf=gvcf, **options)
              for i in range(config.num_shards)]
    call = CallConfig(examples=spec, checkpoint=config.model, ref=config.ref, outfile=config.output_vcf,
                      gvcf_outfile=config.output_gvcf, sample_name=config.sample_name,
                      reads=config.reads if config.sample_name is None else [],  # their read groups name the sample
                      batch_size=config.batch_size, qual_filter=config.qual_filter)
    return CallPlan(shards, call, options, notes)


def check_inputs(config: CallBamConfig) -> tuple[dict[str, int], list[tuple[str, int, int]]]:
    """Fail fast, in one line, on the reference, the BAMs against it and the regions; returns
    the contig lengths and the regions as intervals (every contig when none are given)."""
    from .genome import contig_lengths, open_bams, parse_regions

    lengths = contig_lengths(config.ref)
    intervals = parse_regions(list(config.regions), lengths)
    for bam in open_bams(list(config.reads), lengths):
        bam.close()
    return lengths, intervals


def _make_examples_shard(cfg: MakeExamplesConfig) -> dict:
    """One shard in a worker process; a bad-input error comes back as its one line (the
    subclasses' constructors take other arguments than their pickled form)."""
    from .make_examples import make_examples

    try:
        return make_examples(cfg)
    except DvtrainError as e:
        raise DvtrainError(str(e)) from None


def run_shards(shards: list[MakeExamplesConfig], workers: int) -> list[dict]:
    """make_examples shards, ``workers`` at a time in spawned processes (one: in this process)."""
    if workers <= 1 or len(shards) <= 1:
        return [_make_examples_shard(s) for s in shards]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(shards)), mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(_make_examples_shard, shards))


def replay_command(config: CallBamConfig, options: dict[str, Any]) -> str:
    """The ``dvtrain call-bam`` command of this call with every option the model set spelled
    out, inputs by file name (so the same call in another folder writes the same header)."""
    from .call import command_line

    argv = ["call-bam", "--model", Path(str(config.model)).name, "--ref", Path(str(config.ref)).name]
    argv += [w for r in config.reads for w in ("--reads", Path(str(r)).name)]
    argv += [w for r in config.regions for w in ("--regions", r)]
    for name in ("sample_name", "qual_filter", "seed"):
        if getattr(config, name) is not None:
            argv += [f"--{name}", str(getattr(config, name))]
    for name in CALL_OPTIONS:
        value = options[name]
        if isinstance(value, bool):
            argv.append(f"--{name}" if value else f"--no{name}")
        elif value is not None:
            argv += [f"--{name}", ",".join(value) if isinstance(value, list) else str(value)]
    return command_line(argv)


def call_bam(config: CallBamConfig, workers: Optional[int] = None, note=None) -> dict:
    """Reference + BAMs + model -> ``output_vcf`` (+ ``output_gvcf``); shards run ``workers``
    at a time (default: all of them). ``note`` gets each note for the user (a str)."""
    from .call import call_variants

    p = plan(config)
    check_inputs(config)  # a bad BAM or region fails here, not in every shard
    for line in p.notes if note is not None else []:
        note(line)
    made = run_shards(p.shards, config.num_shards if workers is None else workers)
    called = call_variants(p.call, command_line=replay_command(config, p.options))
    return {"vcf": called["outfile"], "gvcf": called.get("gvcf_outfile"), "num_records": called["num_records"],
            "num_variants": called["num_variants"], "num_examples": sum(m["num_examples"] for m in made),
            "examples": p.call.examples, "sample_name": called["sample_name"], "options": p.options,
            "notes": p.notes}
