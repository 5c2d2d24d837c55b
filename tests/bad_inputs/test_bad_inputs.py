"""A data-driven corpus of bad inputs, each run through the real CLI (issue 9).

Every case builds one bad input in its own ``tmp_path`` from a small good dataset (simulated
once per module), runs ``python -m dvtrain.cli ...`` and checks what a user sees:

* a non-zero exit code;
* stderr is ONE line, ``dvtrain: error: FILE: problem`` (click's ``Error: ...`` after its
  usage lines for a flag of the wrong type) naming the offending file (or flag) and the problem;
* no ``Traceback`` on stdout or stderr;
* no output (nor temp file) left in the case's output folder.

``ACCEPTED`` lists inputs that look suspicious but are handled by design (documented), with
the behaviour they get: exit 0 and no traceback.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
H, W = 20, 21  # small pileup images keep make-examples fast


# ------------------------------------------------------------------ the good dataset
@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """Simulated chr1/chr20 (20 kb each), their examples (training chr1 and chr20, calling
    chr20) and dataset configs. Read-only: cases copy what they change."""
    from dvtrain.config import MakeExamplesConfig, SimulateConfig
    from dvtrain.make_examples import make_examples
    from dvtrain.simulate import simulate

    root = tmp_path_factory.mktemp("bad-inputs-good")
    sim = simulate(SimulateConfig(outdir=root / "data", seed=3, contigs={"chr1": 20_000, "chr20": 20_000}))
    d = {
        "root": root, "ref": Path(sim["ref"]), "truth_vcf": Path(sim["truth_vcf"]),
        "truth_bed": Path(sim["truth_bed"]), "generic": Path(sim["bams"]["generic"]),
        "lowcov": Path(sim["bams"]["lowcov"]),
    }
    common = dict(ref=d["ref"], reads=[d["generic"]], pileup_image_height=H, pileup_image_width=W)
    training = dict(common, mode="training", truth_variants=d["truth_vcf"], confident_regions=d["truth_bed"])
    for name, kw in (("train", dict(training, regions=["chr1"])), ("tune", dict(training, regions=["chr20"])),
                     ("calling", dict(common, mode="calling", regions=["chr20"])),
                     ("tall", dict(training, regions=["chr20"], pileup_image_height=H + 4))):
        spec = str(root / "ex" / f"{name}.tfrecord@1.gz")
        res = make_examples(MakeExamplesConfig(examples=spec, **kw))
        assert res["num_examples"] > 0, name
        d[name] = Path(res["path"])
        d[f"{name}_spec"] = spec
        d[f"{name}_pbtxt"] = write_pbtxt(root / "ex" / f"{name}.dataset_config.pbtxt", name, d[name])
    return d


def write_pbtxt(path: Path, name: str, tfrecord: Path, n: int = 0) -> Path:
    path.write_text(f'name: "{name}"\ntfrecord_path: "{tfrecord}"\nnum_examples: {n}\n')
    return path


@dataclass
class Ctx:
    """What a setup function gets: the good dataset, a folder for bad inputs, the output folder."""

    good: dict
    inp: Path
    out: Path

    def copy(self, key: str, name: Optional[str] = None, with_index: bool = True) -> Path:
        src = self.good[key]
        dst = self.inp / (name or src.name)
        shutil.copy(src, dst)
        if with_index:
            for ext in (".bai", ".fai", ".tbi"):
                if Path(str(src) + ext).exists():
                    shutil.copy(str(src) + ext, str(dst) + ext)
        return dst


@dataclass
class Case:
    id: str
    setup: Callable[[Ctx], tuple[list[str], str]]  # -> (argv, the name the message must contain)
    expect: tuple[str, ...]  # substrings of the problem (case-insensitive)
    usage: bool = False  # a click usage error ("Usage: ...", "Error: ...")
    root_skip: Optional[str] = None  # skip when running as root, with this reason
    marks: tuple = field(default_factory=tuple)
    sandbox: Optional[str] = None  # run the CLI with the output folder "readonly" / "full" / "fsize"-limited


# ------------------------------------------------------------------ input builders
def _records(path: Path) -> list[bytes]:
    from dvtrain.fileio import read_tfrecords

    return list(read_tfrecords(path))


def _write_records(path: Path, records: list[bytes]) -> Path:
    from dvtrain.fileio import TFRecordWriter

    with TFRecordWriter(path) as w:
        for r in records:
            w.write(r)
    return path


def _label(rec: bytes) -> int:
    from dvtrain.example_proto import decode_example

    return int(decode_example(rec, keys={"label"})["label"][0])


def _renamed_bam(src: Path, dst: Path, rename: Callable[[str], str]) -> Path:
    import pysam

    with pysam.AlignmentFile(str(src), "rb") as bam:
        header = bam.header.to_dict()
        for sq in header["SQ"]:
            sq["SN"] = rename(sq["SN"])
        with pysam.AlignmentFile(str(dst), "wb", header=header) as out:
            for r in bam.fetch(until_eof=True):
                out.write(r)
    pysam.index(str(dst))
    return dst


def _fasta(src: Path, dst: Path, rename: Callable[[str], str] = lambda c: c, lengths: Optional[dict] = None) -> Path:
    import pysam

    with pysam.FastaFile(str(src)) as fa, open(dst, "w") as fh:
        for c in fa.references:
            seq = fa.fetch(c)[: (lengths or {}).get(c, None)]
            fh.write(f">{rename(c)}\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    return dst


def _vcf_text(ctx: Ctx) -> str:
    with gzip.open(ctx.good["truth_vcf"], "rt") as fh:
        return fh.read()


def _strip_chr(line: str) -> str:
    return line[3:] if line.startswith("chr") else line.replace("ID=chr", "ID=")


# make-examples / coverage / train command lines over the good inputs, with overrides
def me_calling(ctx: Ctx, ref=None, reads=None, examples=None, regions="chr20", extra=()) -> list[str]:
    return ["make-examples", "--mode", "calling", "--ref", str(ref or ctx.good["ref"]),
            "--reads", str(reads or ctx.good["lowcov"]), "--examples", examples or str(ctx.out / "ex.tfrecord@1.gz"),
            "--regions", regions, "--pileup_image_height", str(H), "--pileup_image_width", str(W), *extra]


def me_training(ctx: Ctx, vcf=None, bed=None, regions="chr20", ref=None) -> list[str]:
    return ["make-examples", "--mode", "training", "--ref", str(ref or ctx.good["ref"]), "--reads", str(ctx.good["lowcov"]),
            "--examples", str(ctx.out / "ex.tfrecord@1.gz"), "--regions", regions,
            "--truth_variants", str(vcf or ctx.good["truth_vcf"]), "--confident_regions", str(bed or ctx.good["truth_bed"]),
            "--pileup_image_height", str(H), "--pileup_image_width", str(W)]


def coverage(ctx: Ctx, reads=None, bed=None, extra=(), out_bed=None) -> list[str]:
    return ["coverage", "--reads", ",".join(str(r) for r in (reads or [ctx.good["lowcov"]])),
            "--truth_bed", str(bed or ctx.good["truth_bed"]), "--output_bed", str(out_bed or ctx.out / "cov.bed"),
            "--min_coverage", "0", *extra]


def train(ctx: Ctx, train_pbtxt=None, tune_pbtxt=None, extra=()) -> list[str]:
    return ["train", "--train_dataset_pbtxt", str(train_pbtxt or ctx.good["train_pbtxt"]),
            "--tune_dataset_pbtxt", str(tune_pbtxt or ctx.good["tune_pbtxt"]), "--experiment_dir", str(ctx.out / "exp"),
            "--num_epochs", "1", "--config.architecture=small_cnn", "--no-progress", *extra]


def shuffle(ctx: Ctx, inputs: list[str]) -> list[str]:
    return ["shuffle", "--input_pattern_list", ",".join(inputs), "--output_pattern_prefix", str(ctx.out / "shuf"),
            "--output_dataset_name", "shuf", "--output_dataset_config_pbtxt", str(ctx.out / "shuf.pbtxt"),
            "--num_shards", "1", "--no-progress"]


# ------------------------------------------------------------------ the cases
def bam_no_index(ctx):
    bam = ctx.copy("lowcov", with_index=False)
    return me_calling(ctx, reads=bam), bam.name


def bam_stale_index(ctx):
    bam = ctx.copy("lowcov")
    t = os.stat(str(bam) + ".bai").st_mtime + 60
    os.utime(bam, (t, t))  # the BAM was rewritten after it was indexed
    return me_calling(ctx, reads=bam), bam.name


def bam_truncated(ctx):
    data = ctx.good["generic"].read_bytes()
    bam = ctx.inp / "truncated.bam"
    bam.write_bytes(data[: len(data) // 2 + 123])  # mid-block
    return coverage(ctx, reads=[bam]), bam.name


def sam_as_bam(ctx):
    import pysam

    bam = ctx.inp / "reads.bam"
    bam.write_text(pysam.view("-h", str(ctx.good["lowcov"])))
    return coverage(ctx, reads=[bam]), bam.name


def bam_ref_contig_names(ctx):
    ref = _fasta(ctx.good["ref"], ctx.inp / "other.fa", rename=lambda c: c.replace("chr", "ctg"))
    return me_calling(ctx, ref=ref, regions="ctg20"), ctx.good["lowcov"].name


def bam_ref_contig_length(ctx):
    ref = _fasta(ctx.good["ref"], ctx.inp / "short.fa", lengths={"chr20": 15_000})
    return me_calling(ctx, ref=ref), ctx.good["lowcov"].name


def bam_no_chr_prefix(ctx):
    bam = _renamed_bam(ctx.good["lowcov"], ctx.inp / "nochr.bam", lambda c: c.removeprefix("chr"))
    return me_calling(ctx, reads=bam), bam.name


def bams_differ(ctx):
    bam = _renamed_bam(ctx.good["lowcov"], ctx.inp / "nochr.bam", lambda c: c.removeprefix("chr"))
    return coverage(ctx, reads=[ctx.good["generic"], bam]), bam.name


def vcf_no_chr_prefix(ctx):
    vcf = ctx.inp / "truth.nochr.vcf"
    vcf.write_text("\n".join(_strip_chr(x) if not x.startswith("#CHROM") else x for x in _vcf_text(ctx).splitlines()) + "\n")
    return me_training(ctx, vcf=vcf), vcf.name


def vcf_bad_pos(ctx):
    lines = _vcf_text(ctx).splitlines()
    i = next(n for n, x in enumerate(lines) if x.startswith("chr20\t"))
    f = lines[i].split("\t")
    f[1] = "12x"
    lines[i] = "\t".join(f)
    vcf = ctx.inp / "badpos.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    return me_training(ctx, vcf=vcf), vcf.name


def vcf_missing(ctx):
    return me_training(ctx, vcf=ctx.inp / "nothere.vcf.gz"), "nothere.vcf.gz"


def bed_no_chr_prefix_me(ctx):
    bed = ctx.inp / "nochr.bed"
    bed.write_text("".join(_strip_chr(x) + "\n" for x in ctx.good["truth_bed"].read_text().splitlines()))
    return me_training(ctx, bed=bed), bed.name


def bed_no_chr_prefix_cov(ctx):
    bed = ctx.inp / "nochr.bed"
    bed.write_text("".join(_strip_chr(x) + "\n" for x in ctx.good["truth_bed"].read_text().splitlines()))
    return coverage(ctx, bed=bed), bed.name


def bed_empty_cov(ctx):
    bed = ctx.inp / "empty.bed"
    bed.write_text("")
    return coverage(ctx, bed=bed), bed.name


def bed_empty_me(ctx):
    bed = ctx.inp / "empty.bed"
    bed.write_text("# no intervals\n")
    return me_training(ctx, bed=bed), bed.name


def bed_end_before_start(ctx):
    bed = ctx.inp / "backwards.bed"
    bed.write_text("chr1\t100\t200\nchr1\t500\t400\n")
    return coverage(ctx, bed=bed), bed.name


def ref_not_fasta(ctx):
    ref = ctx.inp / "ref.fa"
    ref.write_bytes(b"\x00\x01 this is not a FASTA file\n" * 3)
    return me_calling(ctx, ref=ref), ref.name


def min_coverage_negative(ctx):
    return coverage(ctx, extra=("--min_coverage", "-1")), "min_coverage"


def min_coverage_fraction(ctx):
    return coverage(ctx, extra=("--min_coverage", "1.5")), "--min_coverage"


def task_out_of_range(ctx):
    return me_calling(ctx, examples=str(ctx.out / "ex.tfrecord@2.gz"), extra=("--task", "2")), "ex.tfrecord@2.gz"


def regions_select_nothing(ctx):
    return me_calling(ctx, regions="chr20:30000-40000"), "chr20:30000-40000"


def region_unknown_contig(ctx):
    return me_calling(ctx, regions="chrZ"), "chrZ"


def shuffle_mixed_shapes(ctx):
    return shuffle(ctx, [ctx.good["tune_spec"], ctx.good["tall_spec"]]), "tall.tfrecord"


def shuffle_corrupt_gzip(ctx):
    data = bytearray(ctx.good["train"].read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    bad = ctx.inp / "corrupt.tfrecord.gz"
    bad.write_bytes(bytes(data))
    return shuffle(ctx, [str(bad)]), bad.name


def train_bad_crc(ctx):
    bad = _write_records(ctx.inp / "badcrc.tfrecord", _records(ctx.good["train"]))
    data = bytearray(bad.read_bytes())
    data[12 + 40] ^= 0xFF  # a byte of the first record's payload
    bad.write_bytes(bytes(data))
    return train(ctx, train_pbtxt=write_pbtxt(ctx.inp / "train.pbtxt", "train", bad)), bad.name


def train_single_class(ctx):
    recs = [r for r in _records(ctx.good["train"]) if _label(r) == 1]
    path = _write_records(ctx.inp / "one-class.tfrecord.gz", recs)
    pbtxt = write_pbtxt(ctx.inp / "one-class.dataset_config.pbtxt", "train", path, len(recs))
    return train(ctx, train_pbtxt=pbtxt), pbtxt.name


def train_empty_tune(ctx):
    path = _write_records(ctx.inp / "empty.tfrecord.gz", [])
    pbtxt = write_pbtxt(ctx.inp / "tune.dataset_config.pbtxt", "tune", path)
    return train(ctx, tune_pbtxt=pbtxt), pbtxt.name


def train_tune_shape(ctx):
    return train(ctx, tune_pbtxt=ctx.good["tall_pbtxt"]), ctx.good["tall_pbtxt"].name


def train_init_missing(ctx):
    return train(ctx, extra=("--init_checkpoint", str(ctx.inp / "nomodel.keras"))), "nomodel.keras"


def train_init_not_model(ctx):
    bad = ctx.inp / "model.keras"
    bad.write_text("not a keras model\n")
    return train(ctx, extra=("--init_checkpoint", str(bad))), bad.name


def out_not_writable(ctx):
    locked = ctx.out / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return coverage(ctx, out_bed=locked / "cov.bed", extra=("--merged_bam", str(locked / "m.bam"))), "locked"


def out_read_only(ctx):
    """The output folder is on a read-only mount (EROFS: holds for root too)."""
    return coverage(ctx, out_bed=ctx.out / "cov.bed", extra=("--merged_bam", str(ctx.out / "m.bam"))), "out/m.bam"


def out_disk_full(ctx):
    """The output folder is a 16 KiB tmpfs: the calling examples do not fit (ENOSPC)."""
    return me_calling(ctx, regions="chr1 chr20"), "ex.tfrecord"


def out_file_size_limit(ctx):
    """RLIMIT_FSIZE 16 KiB (SIGXFSZ ignored): writes past it fail with EFBIG."""
    return shuffle(ctx, [str(ctx.good["train"]), str(ctx.good["tune"])]), "/out:"


def _case_study_yaml(ctx) -> Path:
    import yaml

    path = ctx.inp / "case-study.yaml"
    path.write_text(yaml.safe_dump({
        "reference": str(ctx.good["ref"]), "truth_vcf": str(ctx.good["truth_vcf"]), "truth_bed": str(ctx.good["truth_bed"]),
        "reads": [str(ctx.good["lowcov"])], "baseline": {"reads": [str(ctx.good["generic"])]},
        "splits": {"train": ["chr1"], "tune": ["chr20"], "test": ["chr20"]}, "workdir": str(ctx.out / "wd"), "peers": []}))
    return path


def run_name_escapes(ctx):
    """The run's name becomes folder and run names: '../../etc' would climb out of the workdir."""
    return ["run", "--config", str(_case_study_yaml(ctx)), "--set", "name=../../etc"], "name"


def run_contig_escapes(ctx):
    return ["run", "--config", str(_case_study_yaml(ctx)), "--set", "splits.train=['../../etc']"], "../../etc"


def truth_none_in_confident(ctx):
    """The confident regions miss every truth variant: training would see only hom-ref labels."""
    import pysam

    with pysam.VariantFile(str(ctx.good["truth_vcf"])) as vf:
        starts = sorted(r.start for r in vf.fetch("chr20"))
    gap = max(zip(starts, starts[1:]), key=lambda ab: ab[1] - ab[0])
    bed = ctx.inp / "no-variants.bed"
    bed.write_text(f"chr20\t{gap[0] + 5}\t{gap[1] - 5}\n")
    return me_training(ctx, bed=bed), "truth.vcf.gz"


def call_checkpoint_not_model(ctx):
    bad = ctx.inp / "model.keras"
    bad.write_text("not a keras model\n")
    return ["call", "--examples", ctx.good["calling_spec"], "--checkpoint", str(bad), "--ref", str(ctx.good["ref"]),
            "--outfile", str(ctx.out / "calls.vcf.gz")], bad.name


def evaluate_query_not_vcf(ctx):
    bad = ctx.inp / "query.vcf"
    bad.write_text("chr20\t100\tA\tG\n")
    return ["evaluate", str(ctx.good["truth_vcf"]), str(bad), "-r", str(ctx.good["ref"]),
            "-o", str(ctx.out / "eval")], bad.name



def margin_not_decision_vcf(ctx):
    plain = ctx.copy("truth_vcf")  # a VCF, but not evaluate's TRUTH/QUERY decision VCF
    return ["margin", str(plain), str(plain), "-o", str(ctx.out / "margins.json")], plain.name


CASES = [
    Case("bam-no-index", bam_no_index, ("no index",)),
    Case("bam-stale-index", bam_stale_index, ("older than",)),
    Case("bam-truncated", bam_truncated, ("truncated",)),
    Case("sam-passed-as-bam", sam_as_bam, ("not a bam",)),
    Case("bam-ref-contig-names", bam_ref_contig_names, ("no BAM contig is in the reference",)),
    Case("bam-ref-contig-length", bam_ref_contig_length, ("chr20", "length")),
    Case("bam-no-chr-prefix", bam_no_chr_prefix, ("no BAM contig is in the reference",)),
    Case("bams-with-different-contigs", bams_differ, ("contigs differ",)),
    Case("vcf-no-chr-prefix", vcf_no_chr_prefix, ("not in the reference",)),
    Case("vcf-bad-pos", vcf_bad_pos, ("POS", "not an integer")),
    Case("vcf-missing", vcf_missing, ("does not exist",)),
    Case("bed-no-chr-prefix-make-examples", bed_no_chr_prefix_me, ("contig names differ",)),
    Case("bed-no-chr-prefix-coverage", bed_no_chr_prefix_cov, ("contig names differ",)),
    Case("bed-empty-coverage", bed_empty_cov, ("no intervals",)),
    Case("bed-empty-make-examples", bed_empty_me, ("no intervals",)),
    Case("bed-end-before-start", bed_end_before_start, ("line 2", "invalid interval")),
    Case("ref-not-fasta", ref_not_fasta, ("not a FASTA",)),
    Case("min-coverage-negative", min_coverage_negative, ("greater than or equal to 0",)),
    Case("min-coverage-fraction", min_coverage_fraction, ("not a valid integer",), usage=True),
    Case("task-not-below-shard-count", task_out_of_range, ("--task 2", "2 shard")),
    Case("regions-select-nothing", regions_select_nothing, ("empty",)),
    Case("region-unknown-contig", region_unknown_contig, ("not in the reference",)),
    Case("shuffle-mixed-shapes", shuffle_mixed_shapes, ("shape",)),
    Case("shuffle-corrupt-gzip", shuffle_corrupt_gzip, ("cannot read tfrecords",)),
    Case("train-bad-crc", train_bad_crc, ("checksum",)),
    Case("train-single-class", train_single_class, ("one class",)),
    Case("train-empty-tune-set", train_empty_tune, ("no examples",)),
    Case("train-tune-shape-differs", train_tune_shape, ("shape",)),
    Case("train-init-checkpoint-missing", train_init_missing, ("does not exist",)),
    Case("train-init-checkpoint-not-a-model", train_init_not_model, ("not a Keras model",)),
    Case("output-dir-not-writable", out_not_writable, ("permission denied",),
         root_skip="running as root: chmod 0555 does not stop root's writes"),
    Case("output-dir-read-only", out_read_only, ("read-only file system",), sandbox="readonly"),
    Case("output-disk-full", out_disk_full, ("no space left on device",), sandbox="full"),
    Case("output-file-size-limit", out_file_size_limit, ("file too large",), sandbox="fsize"),
    Case("truth-without-variants-in-confident-regions", truth_none_in_confident, ("no PASS variant", "hom-ref")),
    Case("run-name-escapes-workdir", run_name_escapes, ("should match pattern",)),
    Case("run-contig-escapes-workdir", run_contig_escapes, ("which the reference lacks",)),
    Case("call-checkpoint-not-a-model", call_checkpoint_not_model, ("not a keras model",)),
    Case("evaluate-query-not-vcf", evaluate_query_not_vcf, ("line 1", "not a vcf")),
    Case("margin-not-decision-vcf", margin_not_decision_vcf, ("not a dvtrain evaluate", "decision vcf")),
]


# A private mount namespace (unshare -rm: no privileges needed where user namespaces are
# allowed) puts a read-only bind mount or a small tmpfs over the output folder for one run;
# what is left in the folder is listed before the namespace (and the tmpfs) goes away.
_SANDBOX = {
    "readonly": 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" || exit 97',
    "full": 'mount -t tmpfs -o size=16k tmpfs "$0" || exit 97',
}
_SANDBOX_RUN = '\n"$@"; rc=$?\nfind "$0" -mindepth 1 > "$0.left"\nexit $rc'


def _sandbox_available() -> Optional[str]:
    if not shutil.which("unshare"):
        return "no unshare(1) here"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"], capture_output=True)
    return None if probe.returncode == 0 else f"no private mount namespaces here: {probe.stderr.decode().strip()}"


def _limit_file_size() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 10, 16 << 10))


def _run(argv: list[str], sandbox: Optional[str] = None, out: Optional[Path] = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "dvtrain.cli", *argv]
    kw = {}
    if sandbox in _SANDBOX:
        cmd = ["unshare", "-rm", "sh", "-c", _SANDBOX[sandbox] + _SANDBOX_RUN, str(out), *cmd]
    elif sandbox == "fsize":
        kw["preexec_fn"] = _limit_file_size
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, **kw)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(case: Case, good, tmp_path):
    if case.root_skip and os.geteuid() == 0:
        pytest.skip(case.root_skip)
    if case.sandbox in _SANDBOX and (why := _sandbox_available()):
        pytest.skip(why)
    ctx = Ctx(good, tmp_path / "in", tmp_path / "out")
    ctx.inp.mkdir()
    ctx.out.mkdir()
    argv, name = case.setup(ctx)
    proc = _run(argv, case.sandbox, ctx.out)
    assert proc.returncode != 97, f"sandbox set-up failed: {proc.stderr}"
    both = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"exit 0 for a bad input; stderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in both, both[-4000:]
    lines = proc.stderr.strip().splitlines()
    if case.usage:  # click: "Usage: ...", "Try ...", "", "Error: ..."
        assert lines and lines[0].startswith("Usage:"), proc.stderr
        lines = [x for x in lines[1:] if x.strip() and not x.startswith("Try ")]
        prefix = "Error:"
    else:
        prefix = "dvtrain: error:"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    msg = lines[0]
    assert msg.startswith(prefix), msg
    assert name in msg, f"{name!r} not named in: {msg}"
    for want in case.expect:
        assert want.lower() in msg.lower(), f"{want!r} not in: {msg}"
    assert _files(ctx.out) == [], f"left behind: {_files(ctx.out)}"
    left = Path(f"{ctx.out}.left")  # listed inside the sandbox, before its mount went away
    if case.sandbox in _SANDBOX:
        assert left.read_text() == "", f"left behind: {left.read_text()}"


# ------------------------------------------------------------------ accepted by design
def vcf_plain_gzip(ctx):
    """A truth VCF that is gzip but not bgzip: the reader streams it (variants.py: plain or bgzip)."""
    vcf = ctx.inp / "truth.vcf.gz"
    with gzip.open(vcf, "wt") as fh:
        fh.write(_vcf_text(ctx))
    return me_training(ctx, vcf=vcf)


def vcf_no_tabix(ctx):
    """No .tbi: the truth VCF is read whole, never queried by region."""
    return me_training(ctx, vcf=ctx.copy("truth_vcf", with_index=False))


def ref_no_fai(ctx):
    """No .fai: it is built beside the FASTA (genome.contig_lengths)."""
    return me_calling(ctx, ref=ctx.copy("ref", with_index=False))


def bed_unsorted(ctx):
    """Coverage keeps the truth BED's order, as ``bedtools intersect -a`` does."""
    bed = ctx.inp / "unsorted.bed"
    bed.write_text("".join(reversed(ctx.good["truth_bed"].read_text().splitlines(keepends=True))))
    return coverage(ctx, bed=bed)


def bed_overlapping(ctx):
    """Overlapping truth lines are kept (and counted) line by line, as in bedtools; make-examples merges them."""
    bed = ctx.inp / "overlap.bed"
    bed.write_text("chr20\t1000\t5000\nchr20\t4000\t9000\n")
    return me_training(ctx, bed=bed)


def ref_lowercase_iupac(ctx):
    """Soft-masked (lowercase) stretches and IUPAC codes (R, Y, N) in the reference: bases are
    upper-cased; a non-ACGT reference base yields no candidate there."""
    import pysam

    ref = ctx.inp / "masked.fa"
    with pysam.FastaFile(str(ctx.good["ref"])) as fa, open(ref, "w") as fh:
        for c in fa.references:
            seq = list(fa.fetch(c))
            for i in range(0, len(seq), 997):
                seq[i] = "RYNKMSW"[(i // 997) % 7]
            seq = "".join(seq)
            seq = seq[:3000] + seq[3000:9000].lower() + seq[9000:]
            fh.write(f">{c}\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)) + "\n")
    return me_training(ctx, ref=ref)


def vcf_no_contig_lines(ctx):
    """Truth VCFs without ##contig lines (GIAB slices, the shared NA12878 data): lengths come from the reference."""
    vcf = ctx.inp / "nocontig.vcf"
    vcf.write_text("".join(line for line in _vcf_text(ctx).splitlines(keepends=True) if not line.startswith("##contig")))
    return me_training(ctx, vcf=vcf)


def bed_zero_length(ctx):
    """start == end holds no base in BED (0-based, half-open): it is what a 1-based single position looks like."""
    bed = ctx.inp / "one-based.bed"
    bed.write_text(ctx.good["truth_bed"].read_text() + "chr20\t500\t500\n")
    return me_training(ctx, bed=bed)


#: (setup, a warning stderr must carry, or None)
ACCEPTED = [(vcf_plain_gzip, None), (vcf_no_tabix, None), (ref_no_fai, None), (bed_unsorted, None),
            (bed_overlapping, None), (ref_lowercase_iupac, None),
            (vcf_no_contig_lines, "no ##contig line for 'chr20'; using its length from the reference"),
            (bed_zero_length, "zero-length interval(s) (start == end, first on line")]


@pytest.mark.parametrize("setup,warning", ACCEPTED, ids=[f.__name__.replace("_", "-") for f, _ in ACCEPTED])
def test_accepted_input(setup, warning, good, tmp_path):
    ctx = Ctx(good, tmp_path / "in", tmp_path / "out")
    ctx.inp.mkdir()
    ctx.out.mkdir()
    proc = _run(setup(ctx))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    if warning:
        assert warning in proc.stderr, proc.stderr
    assert _files(ctx.out), "no output written"
