"""The ``deepvariant`` engine: each stage run by Google's DeepVariant containers.

A stage becomes a ``ContainerSpec`` (image, argument list, bind mounts, user, environment,
GPUs): pure data built from the same pydantic configs the native engine takes, so every
spec is unit-tested without an engine. A runtime then runs a spec: ``DockerRuntime``
(the docker SDK) or ``ApptainerRuntime`` (``apptainer exec docker://...``, for HPC).

Mounts are minimal and keep host paths: every input file (with its index companions) is
bound read-only at its own absolute path, and the one output folder read-write, also at its
own path. Paths inside files the container reads (the ``tfrecord_path`` of a
dataset_config.pbtxt, for one) therefore resolve unchanged, and no home folder is mounted.
Containers run as the invoking uid:gid (outputs are not root's), never privileged, and
commands are argument lists, never shell strings.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
import urllib.request
from collections import deque
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from .config import (CallBamConfig, CallConfig, DeepVariantEngineConfig, EvaluateConfig,
                     MakeExamplesConfig, TrainConfig, deepvariant_training_refusal)
from .errors import DvtrainError, InputError
from .fileio import index_companions, sharded_paths

DV_BIN = "/opt/deepvariant/bin"
HAPPY = "/opt/hap.py/bin/hap.py"
LOG_TAIL = 50

# Building specs for a dry run (--print-command): inputs that earlier stages will make need
# not exist yet, and nothing is created or downloaded.
_PLANNING: ContextVar[bool] = ContextVar("dvtrain_container_planning", default=False)


@contextmanager
def planning() -> Iterator[None]:
    """Specs built inside accept inputs that do not exist yet and create nothing (dry runs)."""
    token = _PLANNING.set(True)
    try:
        yield
    finally:
        _PLANNING.reset(token)


class ContainerError(DvtrainError):
    """A container exited non-zero; the message carries its last log lines."""


@dataclass(frozen=True)
class Mount:
    source: str  # absolute host path
    target: str  # path inside the container
    read_only: bool = True


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    command: tuple[str, ...]
    mounts: tuple[Mount, ...]
    user: str  # "uid:gid"
    environment: dict[str, str] = field(default_factory=dict)
    gpus: int = 0  # GPUs to request; -1 all
    workdir: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.command or not all(isinstance(a, str) for a in self.command):
            raise ValueError("a container command is a non-empty list of strings")


def invoking_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


class _Mounts:
    """Collects bind mounts: inputs read-only at their own paths, one output folder."""

    def __init__(self) -> None:
        self.items: dict[str, Mount] = {}

    def input(self, path: str | Path, companions: bool = True) -> str:
        p = Path(path).resolve()
        if not p.exists() and not _PLANNING.get():  # (planned: an earlier stage of the run makes it)
            raise InputError(path, "does not exist")
        self._add(Mount(str(p), str(p), True))
        if companions and p.is_file():
            for _, side in index_companions(p):
                self._add(Mount(str(side), str(side), True))
        return str(p)

    def output(self, folder: str | Path) -> str:
        p = Path(folder).resolve()  # created by the runtime, just before the container starts
        self._add(Mount(str(p), str(p), False))
        return str(p)

    def _add(self, m: Mount) -> None:
        old = self.items.get(m.target)
        if old is None or (old.read_only and not m.read_only):
            self.items[m.target] = m

    def tuple(self) -> tuple[Mount, ...]:
        # an input inside the output folder is covered by the read-write mount
        rw = [m.source for m in self.items.values() if not m.read_only]
        keep = [m for m in self.items.values()
                if not m.read_only or not any(m.source.startswith(d + os.sep) for d in rw)]
        return tuple(sorted(keep, key=lambda m: m.target))


def _regions(mounts: _Mounts, regions: Iterable[str]) -> list[str]:
    """Region words: contigs and chr:start-end stay, BED files are mounted."""
    out = []
    for r in regions:
        out.append(mounts.input(r) if r.endswith((".bed", ".bed.gz")) and Path(r).exists() else r)
    return out


# ---------------------------------------------------------------- dvtrain-only options
# make_examples options DeepVariant 1.6.1 does not have, with the value that matches what it
# does. Set explicitly to anything else, the container engine refuses them (never drops them);
# left at their defaults, they are named in one note (dvtrain_only_notes).
DV_MAKE_EXAMPLES_ONLY = {"vsc_min_snp_lod": None, "indel_informative_reads": False,
                         "indel_haplotype_support": False, "merge_insertion_alleles": False}
# training options DeepVariant's train has no setting for (seed: its seeds are its own)
DV_TRAIN_ONLY = ("mixed_precision", "beta_1", "beta_2", "calling_vsc_min_snp_lod")


def _refuse_dvtrain_only(cfg: MakeExamplesConfig | TrainConfig) -> None:
    if isinstance(cfg, MakeExamplesConfig):
        wanted = DV_MAKE_EXAMPLES_ONLY
        bad = [k for k, v in wanted.items() if k in cfg.model_fields_set and getattr(cfg, k) != v]
    else:
        defaults = {k: TrainConfig.model_fields[k].default for k in DV_TRAIN_ONLY}
        bad = [k for k in DV_TRAIN_ONLY if k in cfg.model_fields_set and getattr(cfg, k) != defaults[k]]
        problem = deepvariant_training_refusal(
            cfg.best_checkpoint_metric, cfg.architecture if "architecture" in cfg.model_fields_set else None)
        if problem:
            raise DvtrainError(problem)
        if cfg.class_weights == "balanced":
            raise DvtrainError("class_weights balanced: DeepVariant's train takes weights as numbers only "
                               "(class_weights: [w0, w1, w2])")
    if bad:
        k = bad[0]
        raise DvtrainError(f"{k} {getattr(cfg, k)!r}: a dvtrain option that DeepVariant's "
                           f"{'make_examples' if isinstance(cfg, MakeExamplesConfig) else 'train'} does not have; "
                           f"the deepvariant engine cannot honour it (unset it, or use the native engine)")


def dvtrain_only_notes(cfg: MakeExamplesConfig | TrainConfig) -> list[str]:
    """What the deepvariant engine does instead of the dvtrain-only defaults (one line each)."""
    if isinstance(cfg, MakeExamplesConfig):
        on = [k for k, v in DV_MAKE_EXAMPLES_ONLY.items() if getattr(cfg, k) != v]
        return [f"DeepVariant's make_examples has no {', '.join(on)} (dvtrain's defaults): "
                "it draws its own candidates and images"] if on else []
    notes = [f"DeepVariant's train has its own fixed seeds: seed {cfg.seed} does not apply"]
    if cfg.architecture != "inception_v3":
        notes.append(f"DeepVariant's train trains inception_v3 (architecture {cfg.architecture} is the native engine's)")
    return notes


# ---------------------------------------------------------------- stage specs
def gvcf_records(examples: str) -> str:
    """DeepVariant's non-variant-site records beside an examples spec:
    NAME.tfrecord@N.gz -> NAME.gvcf.tfrecord@N.gz."""
    folder, _, name = examples.rpartition("/")
    stem, dot, rest = name.partition(".tfrecord")
    return f"{folder}/{stem}.gvcf.tfrecord{rest}" if dot else f"{examples}.gvcf.tfrecord.gz"


def make_examples_spec(cfg: MakeExamplesConfig, engine: DeepVariantEngineConfig) -> ContainerSpec:
    """DeepVariant make_examples for shard ``cfg.task`` of ``cfg.examples`` (NAME.tfrecord@N.gz)."""
    _refuse_dvtrain_only(cfg)
    m = _Mounts()
    out_dir = m.output(Path(sharded_paths(cfg.examples)[0]).parent)
    examples = str(Path(out_dir) / Path(cfg.examples).name)
    cmd = [f"{DV_BIN}/make_examples", "--mode", cfg.mode, "--ref", m.input(cfg.ref),
           "--reads", ",".join(m.input(r) for r in cfg.reads), "--examples", examples, "--task", str(cfg.task)]
    if cfg.channels:
        cmd += ["--channels", ",".join(cfg.channels)]
    if cfg.regions:
        cmd += ["--regions", " ".join(_regions(m, cfg.regions))]
    if cfg.exclude_regions:
        cmd += ["--exclude_regions", " ".join(_regions(m, cfg.exclude_regions))]
    if cfg.mode == "training":
        cmd += ["--truth_variants", m.input(cfg.truth_variants), "--confident_regions", m.input(cfg.confident_regions)]
    if cfg.downsample_fraction < 1:
        cmd += ["--downsample_fraction", repr(cfg.downsample_fraction)]
    if cfg.training_random_emit_ref_sites:
        cmd += ["--training_random_emit_ref_sites", repr(cfg.training_random_emit_ref_sites)]
    if cfg.gvcf:  # DeepVariant writes the non-variant sites as records for postprocess --nonvariant_site_tfrecord_path
        cmd += ["--gvcf", gvcf_records(examples), "--gvcf_gq_binsize", str(cfg.gvcf_gq_binsize)]
    for flag in ("vsc_min_count_snps", "vsc_min_count_indels", "vsc_min_fraction_snps", "vsc_min_fraction_indels",
                 "min_mapping_quality", "min_base_quality", "pileup_image_height", "pileup_image_width"):
        cmd += [f"--{flag}", str(getattr(cfg, flag))]
    # no --random_seed: DeepVariant's make_examples defines no such flag (its seeds are fixed
    # inside), and absl stops on an unknown one
    return ContainerSpec(engine.image_for("cpu"), tuple(cmd), m.tuple(), engine.user or invoking_user(),
                         {"TF_CPP_MIN_LOG_LEVEL": "2"}, 0, out_dir)


DV_OPTIMIZERS = ("nadam", "rmsprop")  # the optimizers DeepVariant 1.6.1's train knows


def dv_train_config(engine: DeepVariantEngineConfig, experiment_dir: str | Path) -> tuple[Path, str]:
    """(host path, config name) of the dv_config.py DeepVariant's train reads.

    The release image holds only the binaries, so the file comes from outside, as in
    DeepVariant's training case study: ``engine.train_config`` (PATH or PATH:NAME), else
    ``dv_config.py`` beside the experiment folder, downloaded there from the pinned release
    when missing. Fails in one line, before any container starts, saying how to provide it."""
    if engine.train_config:
        path, _, name = engine.train_config.partition(":")
        if not Path(path).is_file() and not _PLANNING.get():
            raise InputError(path, "no such file (deepvariant.train_config: DeepVariant's dv_config.py)")
        return Path(path).resolve(), name or "base"
    target = Path(experiment_dir).resolve().parent / "dv_config.py"
    if target.is_file() or _PLANNING.get():
        return target, "base"
    url = engine.train_config_url.format(version=engine.version.split("-")[0])
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            text = answer.read()
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DvtrainError(f"DeepVariant's train needs dv_config.py, which its image does not contain, and {url} "
                           f"could not be downloaded ({reason}); download it and pass its path as "
                           "deepvariant.train_config (dvtrain train --deepvariant --config PATH)") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(text)
    os.replace(partial, target)
    return target, "base"


def dv_steps(examples: int, batch_size: int) -> int:
    """Examples as the batches DeepVariant's num_validation_examples and limit count: 0 stays 0 (all)."""
    return math.ceil(examples / batch_size) if examples else 0


def train_spec(cfg: TrainConfig, engine: DeepVariantEngineConfig) -> ContainerSpec:
    """DeepVariant train (the -gpu image) with ``--config=dv_config.py:NAME`` and overrides.
    Settings DeepVariant would misread or cannot honour are refused in one line before anything runs."""
    if cfg.optimizer not in DV_OPTIMIZERS:
        raise DvtrainError(f"optimizer {cfg.optimizer}: DeepVariant's train knows only {' and '.join(DV_OPTIMIZERS)}; "
                           "choose one of them for the deepvariant engine")
    _refuse_dvtrain_only(cfg)
    m = _Mounts()
    out = m.output(cfg.experiment_dir)
    config_file, name = dv_train_config(engine, cfg.experiment_dir)
    cmd = [f"{DV_BIN}/train", f"--config={m.input(config_file, companions=False)}:{name}"]
    for key, pbtxt in (("train_dataset_pbtxt", cfg.train_dataset_config), ("tune_dataset_pbtxt", cfg.tune_dataset_config)):
        cmd.append(f"--config.{key}={m.input(pbtxt)}")
        for shard_dir in _dataset_dirs(pbtxt):
            m.input(shard_dir, companions=False)
    if cfg.init_checkpoint:
        cmd.append(f"--config.init_checkpoint={_checkpoint(m, str(cfg.init_checkpoint))}")
    options = {
        "num_epochs": cfg.epochs, "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
        "learning_rate_decay_rate": cfg.learning_rate_decay_rate,
        "learning_rate_num_epochs_per_decay": cfg.learning_rate_num_epochs_per_decay,
        "warmup_steps": cfg.warmup_steps, "optimizer": cfg.optimizer, "rho": cfg.rho, "momentum": cfg.momentum,
        "epsilon": cfg.epsilon, "use_ema": cfg.use_ema, "ema_momentum": cfg.ema_momentum,
        "label_smoothing": cfg.label_smoothing, "weight_decay": cfg.weight_decay,
        "backbone_dropout_rate": cfg.backbone_dropout_rate, "early_stopping_patience": cfg.early_stopping_patience,
        "tune_every_steps": cfg.tune_every_steps, "log_every_steps": cfg.log_every_steps,
        "best_checkpoint_metric": cfg.best_checkpoint_metric,
        # both count batches in DeepVariant, examples here
        "num_validation_examples": dv_steps(cfg.num_validation_examples, cfg.batch_size),
        "limit": dv_steps(cfg.limit, cfg.batch_size),
    }
    if isinstance(cfg.class_weights, list):
        options["class_weights"] = ",".join(f"{w:g}" for w in cfg.class_weights)
    options.update(engine.train_overrides)
    cmd += [f"--config.{k}={v}" for k, v in options.items()]
    cmd += [f"--experiment_dir={out}", f"--strategy={engine.strategy}"]
    return ContainerSpec(engine.image_for("gpu"), tuple(cmd), m.tuple(), engine.user or invoking_user(),
                         {"TF_CPP_MIN_LOG_LEVEL": "2"}, engine.gpus, out)


def _dataset_dirs(pbtxt: str | Path) -> list[str]:
    """The folders of a dataset_config.pbtxt's tfrecord_path (they must be mounted too)."""
    from .shuffle import read_dataset_config

    if _PLANNING.get() and not Path(pbtxt).is_file():  # shuffle will write its shards beside it
        return [str(Path(pbtxt).resolve().parent)]
    return sorted({str(Path(read_dataset_config(pbtxt)["tfrecord_path"]).parent)})


def _checkpoint(m: _Mounts, ckpt: str) -> str:
    """A checkpoint prefix (model.ckpt-N: its .index/.data-* files) or folder, mounted
    with its example_info.json; gs:// checkpoints are passed through."""
    if "://" in ckpt:
        return ckpt
    p = Path(ckpt).resolve()
    if p.is_dir():
        return m.input(p, companions=False)
    parts = sorted(p.parent.glob(p.name + ".*")) + sorted(p.parent.glob("example_info.json"))
    if not parts and _PLANNING.get():  # written by a training stage of the planned run
        m.input(p.parent, companions=False)
        return str(p)
    if not parts:
        raise InputError(ckpt, "no checkpoint files (PREFIX.index, PREFIX.data-*) found")
    for part in parts:
        m.input(part, companions=False)
    return str(p)


def call_spec(cfg: CallBamConfig, engine: DeepVariantEngineConfig) -> ContainerSpec:
    """``run_deepvariant --model_type WGS --customized_model MODEL``: BAMs to VCF (+ gVCF) in
    one container (``dvtrain call-bam --deepvariant``). The model is a DeepVariant checkpoint,
    which carries its own example settings: the model checks of call-bam's native engine are
    refused when given, and batch_size / qual_filter, when set, reach call_variants /
    postprocess_variants through run_deepvariant's *_extra_args."""
    from .call_bam import CALL_OPTIONS, intermediate_dir

    given = [k for k in CALL_OPTIONS if getattr(cfg, k) is not None]
    if given:
        raise DvtrainError(f"{given[0]}: call-bam checks it against a dvtrain model's example_info.json; "
                           "DeepVariant's run_deepvariant takes its settings from the checkpoint (leave it out)")
    m = _Mounts()
    out = Path(m.output(Path(cfg.output_vcf).parent))
    inter = Path(m.output(intermediate_dir(cfg)))
    cmd = [f"{DV_BIN}/run_deepvariant", f"--model_type={engine.model_type}",
           f"--customized_model={_checkpoint(m, str(cfg.model))}", f"--ref={m.input(cfg.ref)}",
           f"--reads={','.join(m.input(r) for r in cfg.reads)}", f"--output_vcf={out / Path(cfg.output_vcf).name}",
           f"--num_shards={cfg.num_shards}", f"--intermediate_results_dir={inter}"]
    if cfg.regions:
        cmd.append(f"--regions={' '.join(_regions(m, cfg.regions))}")
    if cfg.output_gvcf:
        gvcf = Path(m.output(Path(cfg.output_gvcf).parent)) / Path(cfg.output_gvcf).name
        cmd.append(f"--output_gvcf={gvcf}")
    if cfg.sample_name:
        cmd.append(f"--sample_name={cfg.sample_name}")
    if "batch_size" in cfg.model_fields_set:
        cmd.append(f"--call_variants_extra_args=batch_size={cfg.batch_size}")
    if "qual_filter" in cfg.model_fields_set:
        cmd.append(f"--postprocess_variants_extra_args=qual_filter={cfg.qual_filter}")
    return ContainerSpec(engine.image_for("gpu" if engine.gpus else "cpu"), tuple(cmd), m.tuple(),
                         engine.user or invoking_user(), {"TF_CPP_MIN_LOG_LEVEL": "2"}, engine.gpus, str(out))


def call_variants_specs(cfg: CallConfig, engine: DeepVariantEngineConfig) -> tuple[ContainerSpec, ContainerSpec]:
    """``call_variants`` over calling examples, then ``postprocess_variants`` to the VCF."""
    m = _Mounts()
    out = Path(m.output(Path(cfg.outfile).parent))
    for shard in sharded_paths(cfg.examples):
        m.input(shard, companions=False)
        info = Path(shard + ".example_info.json")
        if info.is_file():
            m.input(info, companions=False)
    examples = str(Path(cfg.examples).resolve())
    cvo = str(out / (Path(cfg.outfile).name.split(".vcf")[0] + ".call_variants_output.tfrecord.gz"))
    ckpt = _checkpoint(m, str(cfg.checkpoint))
    user = engine.user or invoking_user()
    image = engine.image_for("gpu" if engine.gpus else "cpu")
    call = ContainerSpec(image, (f"{DV_BIN}/call_variants", f"--outfile={cvo}", f"--examples={examples}",
                                 f"--checkpoint={ckpt}"), m.tuple(), user, {"TF_CPP_MIN_LOG_LEVEL": "2"},
                         engine.gpus, str(out))
    post_cmd = [f"{DV_BIN}/postprocess_variants", f"--ref={m.input(cfg.ref)}", f"--infile={cvo}",
                f"--outfile={out / Path(cfg.outfile).name}", f"--qual_filter={cfg.qual_filter}"]
    if cfg.gvcf_outfile:  # make_examples --gvcf wrote the non-variant sites beside the examples
        sites = cfg.nonvariant_site_path or gvcf_records(examples)
        for shard in sharded_paths(sites):
            m.input(shard, companions=False)
        post_cmd += [f"--nonvariant_site_tfrecord_path={sites}", f"--gvcf_outfile={out / Path(cfg.gvcf_outfile).name}"]
    if cfg.sample_name:
        post_cmd.append(f"--sample_name={cfg.sample_name}")
    post = ContainerSpec(image, tuple(post_cmd), m.tuple(), user, {}, 0, str(out))
    return call, post


def happy_spec(cfg: EvaluateConfig, engine: DeepVariantEngineConfig) -> ContainerSpec:
    """hap.py with the vcfeval engine (``--engine=vcfeval --pass-only``, as the case study)."""
    m = _Mounts()
    out = Path(m.output(Path(cfg.output_prefix).parent))
    if cfg.reference is None:
        raise InputError("evaluate", "hap.py needs the reference FASTA (--reference)")
    cmd = [HAPPY, m.input(cfg.truth_vcf), m.input(cfg.query_vcf), "-r", m.input(cfg.reference),
           "-o", str(out / Path(cfg.output_prefix).name), "--engine=vcfeval"]
    if cfg.confident_bed:
        cmd += ["-f", m.input(cfg.confident_bed)]
    if cfg.pass_only:
        cmd.append("--pass-only")
    if cfg.regions:
        cmd += ["-l", ",".join(cfg.regions)]
    return ContainerSpec(engine.happy_image, tuple(cmd), m.tuple(), engine.user or invoking_user(), {}, 0, str(out))


# ---------------------------------------------------------------- runtimes
def _make_outputs(spec: ContainerSpec) -> None:
    """Create the read-write mount folders (specs themselves create nothing)."""
    for m in spec.mounts:
        if not m.read_only:
            Path(m.source).mkdir(parents=True, exist_ok=True)


def _fail(spec: ContainerSpec, code: int, tail: Iterable[str]) -> ContainerError:
    lines = "\n".join(tail)
    return ContainerError(f"{spec.image} {Path(spec.command[0]).name} exited with code {code}; "
                          f"last {LOG_TAIL} log lines:\n{lines}")


class DockerRuntime:
    """Runs specs with the docker SDK: pull with retries, stream logs, remove the container."""

    def __init__(self, client=None, pull_retries: int = 3, retry_wait_s: float = 5.0):
        self._client = client
        self.pull_retries, self.retry_wait_s = pull_retries, retry_wait_s

    @property
    def client(self):
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env()
                self._client.ping()
            except docker.errors.DockerException as e:
                raise DvtrainError(f"docker: no engine reachable ({e}); engine deepvariant needs one "
                                   "(or runtime: apptainer)") from None
        return self._client

    def pull(self, image: str) -> None:
        import docker

        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        for attempt in range(1, self.pull_retries + 1):
            try:
                self.client.images.pull(image)
                return
            except docker.errors.APIError as e:
                if attempt == self.pull_retries:
                    raise DvtrainError(f"docker: cannot pull {image} after {attempt} tries: {e}") from None
                time.sleep(self.retry_wait_s * 2 ** (attempt - 1))

    def run_kwargs(self, spec: ContainerSpec) -> dict:
        """The ``containers.run`` arguments of a spec (never privileged, no shell)."""
        from docker.types import DeviceRequest, Mount as DockerMount

        kw = {
            "image": spec.image, "command": list(spec.command), "user": spec.user, "environment": dict(spec.environment),
            "mounts": [DockerMount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
                       for m in spec.mounts],
            "working_dir": spec.workdir, "privileged": False, "detach": True,
        }
        if not any("://" in a for a in spec.command):  # gs:// checkpoints need the network; nothing else does
            kw["network_mode"] = "none"
        if spec.gpus:
            kw["device_requests"] = [DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
        return kw

    def argv(self, spec: ContainerSpec) -> list[str]:
        """The ``docker run`` command line that does what ``run_kwargs`` asks of the SDK."""
        kw = self.run_kwargs(spec)
        argv = ["docker", "run", "--rm", "--user", spec.user]
        for m in spec.mounts:
            argv += ["--mount", f"type=bind,source={m.source},target={m.target}" + (",readonly" if m.read_only else "")]
        if kw.get("network_mode"):
            argv += ["--network", kw["network_mode"]]
        if spec.gpus:
            argv += ["--gpus", "all" if spec.gpus < 0 else str(spec.gpus)]
        if spec.workdir:
            argv += ["--workdir", spec.workdir]
        for k, v in sorted(spec.environment.items()):
            argv += ["--env", f"{k}={v}"]
        return argv + [spec.image, *spec.command]

    def run(self, spec: ContainerSpec, log: Callable[[str], None] = print) -> None:
        self.pull(spec.image)
        _make_outputs(spec)
        container = self.client.containers.run(**self.run_kwargs(spec))
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        try:
            pending = b""
            for chunk in container.logs(stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace").rstrip()
                    tail.append(text)
                    log(text)
            if pending:
                tail.append(pending.decode(errors="replace"))
                log(tail[-1])
            code = int(container.wait().get("StatusCode", 1))
        finally:
            try:
                container.remove(force=True)
            except Exception:  # already gone; nothing to clean up
                pass
        if code:
            raise _fail(spec, code, tail)


class ApptainerRuntime:
    """Runs specs with ``apptainer exec docker://IMAGE`` (Singularity works the same)."""

    def __init__(self, binary: str = "apptainer"):
        self.binary = binary

    def argv(self, spec: ContainerSpec) -> list[str]:
        argv = [self.binary, "exec", "--containall", "--cleanenv", "--no-home"]
        for m in spec.mounts:
            argv += ["--bind", f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"]
        for k, v in sorted(spec.environment.items()):
            argv += ["--env", f"{k}={v}"]
        if spec.workdir:
            argv += ["--pwd", spec.workdir]
        if spec.gpus:
            argv.append("--nv")
        return argv + [f"docker://{spec.image}", *spec.command]

    def run(self, spec: ContainerSpec, log: Callable[[str], None] = print) -> None:
        tail: deque[str] = deque(maxlen=LOG_TAIL)
        _make_outputs(spec)
        try:
            proc = subprocess.Popen(self.argv(spec), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace")
        except FileNotFoundError:
            raise DvtrainError(f"{self.binary}: not installed (runtime apptainer)") from None
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            log(tail[-1])
        if proc.wait():
            raise _fail(spec, proc.returncode, tail)


def runtime(engine: DeepVariantEngineConfig):
    return ApptainerRuntime(engine.apptainer_binary) if engine.runtime == "apptainer" else \
        DockerRuntime(pull_retries=engine.pull_retries)


def describe(spec: ContainerSpec, engine: DeepVariantEngineConfig, stage: str = "") -> dict:
    """What a dry run prints for one spec: the runtime's exact argument list (and as one shell
    line), image, mounts, GPUs; inputs that do not exist yet are listed under ``missing``."""
    import shlex

    argv = runtime(engine).argv(spec)
    out = {"image": spec.image, "argv": argv, "shell": shlex.join(argv), "gpus": spec.gpus,
           "mounts": [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts],
           "missing": [m.source for m in spec.mounts if m.read_only and not Path(m.source).exists()]}
    return {"stage": stage, **out} if stage else out


# ---------------------------------------------------------------- stages through containers
def _run_noted(spec: ContainerSpec, cfg: MakeExamplesConfig | TrainConfig, engine: DeepVariantEngineConfig,
               log: Callable[[str], None]) -> None:
    """Run ``spec`` after logging what DeepVariant does instead of dvtrain's own defaults."""
    for note in dvtrain_only_notes(cfg):
        log(f"note: {note}")
    runtime(engine).run(spec, log)


def run_make_examples(cfg: MakeExamplesConfig, engine: DeepVariantEngineConfig,
                      log: Callable[[str], None] = print) -> dict:
    """make_examples shard ``cfg.task`` in the container; the shard's summary as the native
    stage returns it (path, num_examples, class_counts in training mode)."""
    from .example_proto import decode_example
    from .fileio import read_tfrecords, shard_path

    _run_noted(make_examples_spec(cfg, engine), cfg, engine, log)
    path = shard_path(cfg.examples, cfg.task)
    if not Path(path).is_file():
        raise ContainerError(f"{path}: DeepVariant make_examples exited 0 but wrote no examples there")
    counts = [0, 0, 0]
    n = 0
    for rec in read_tfrecords(path):
        n += 1
        if cfg.mode == "training":
            label = decode_example(rec, keys={"label"}).get("label")
            if label and 0 <= int(label[0]) <= 2:
                counts[int(label[0])] += 1
    out = {"path": path, "num_examples": n, "engine": "deepvariant"}
    if cfg.mode == "training":
        out["class_counts"] = counts
    return out


def latest_checkpoint(experiment_dir: str | Path) -> Optional[str]:
    """The checkpoint prefix (``.../ckpt-N`` of ``ckpt-N.index``) with the highest N under
    ``experiment_dir``, or None."""
    found = []
    for index in Path(experiment_dir).rglob("*.index"):
        prefix = str(index)[: -len(".index")]
        digits = prefix.rsplit("-", 1)[-1]
        found.append((int(digits) if digits.isdigit() else -1, prefix))
    return max(found)[1] if found else None


def run_train(cfg: TrainConfig, engine: DeepVariantEngineConfig, log: Callable[[str], None] = print) -> dict:
    """DeepVariant train in the container; ``best_model`` is its latest checkpoint prefix
    (DeepVariant keeps the checkpoints that improved ``best_checkpoint_metric``)."""
    _run_noted(train_spec(cfg, engine), cfg, engine, log)
    best = latest_checkpoint(cfg.experiment_dir)
    if best is None:
        raise ContainerError(f"{cfg.experiment_dir}: DeepVariant train exited 0 but left no checkpoint (*.index)")
    return {"best_model": best, "engine": "deepvariant", "epochs": cfg.epochs,
            "init_checkpoint": str(cfg.init_checkpoint) if cfg.init_checkpoint else None}


def run_call(cfg: CallConfig, engine: DeepVariantEngineConfig, log: Callable[[str], None] = print) -> dict:
    """call_variants then postprocess_variants in the container -> ``cfg.outfile``."""
    rt = runtime(engine)
    for spec in call_variants_specs(cfg, engine):
        rt.run(spec, log)
    if not Path(cfg.outfile).is_file():
        raise ContainerError(f"{cfg.outfile}: DeepVariant postprocess_variants exited 0 but wrote no VCF")
    return {"outfile": str(cfg.outfile), "engine": "deepvariant"}
