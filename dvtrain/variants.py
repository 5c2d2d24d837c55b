"""VCF reading (truth and query), normalisation, and VCF writing helpers.

The reader is a strict, streaming text parser (plain or bgzip VCF): it needs CHROM, POS,
REF, ALT, FILTER and one sample's GT (the first, or the one named), and it reports a malformed line as a one-line
error with the file and line number.

Missing ``##contig`` lines (real GIAB subsets have them for b37 but not for renamed
slices) are *handled*: the contig set and lengths come from the reference FASTA index,
which every stage that reads a truth VCF already has. A record on a contig the reference
does not have is rejected, because that is a genuine naming mismatch (``chr20`` vs ``20``).
"""

from __future__ import annotations

import gzip
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

from .errors import InputError, require_file

_BASES = re.compile(r"^[ACGTNacgtn]+$")


@dataclass(frozen=True, order=True)
class Variant:
    chrom: str
    pos: int  # 0-based start of REF
    ref: str
    alts: tuple[str, ...]
    gt: tuple[int, ...] = field(default=(), compare=False)  # -1 = a missing allele ('.')
    filter: str = field(default="PASS", compare=False)
    qual: Optional[float] = field(default=None, compare=False)

    @property
    def end(self) -> int:
        return self.pos + len(self.ref)

    @property
    def is_snp(self) -> bool:
        return len(self.ref) == 1 and all(len(a) == 1 for a in self.alts)

    def is_variant_call(self) -> bool:
        return any(a > 0 for a in self.gt)

    def called_alts(self) -> list[str]:
        return [self.alts[a - 1] for a in sorted(set(self.gt)) if a > 0]


def variant_type(ref: str, alt: str) -> str:
    return "SNP" if len(ref) == 1 and len(alt) == 1 else "INDEL"


def read_header_contigs(path: str | Path) -> dict[str, Optional[int]]:
    contigs: dict[str, Optional[int]] = {}
    for line in _lines(Path(path)):
        if not line.startswith("##"):
            break
        if line.startswith("##contig=<"):
            m = re.search(r"ID=([^,>]+)", line)
            n = re.search(r"length=(\d+)", line)
            if m:
                contigs[m.group(1)] = int(n.group(1)) if n else None
    return contigs


def _lines(p: Path) -> Iterator[str]:
    opener = gzip.open if p.name.endswith((".gz", ".bgz")) else open
    try:
        with opener(p, "rt") as fh:  # type: ignore[operator]
            for line in fh:
                yield line.rstrip("\n\r")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read VCF: {e}") from None


def read_vcf(
    path: str | Path,
    contigs: Optional[dict[str, int]] = None,
    regions: Optional[set[str]] = None,
    pass_only: bool = False,
    warn: Callable[[str], None] | None = None,
    sample: Optional[str] = None,
    rename: Callable[[str], str] | None = None,
) -> list[Variant]:
    """Read one sample's calls from a VCF: the first sample, or ``sample`` (an unknown name
    is an InputError naming the samples present).

    GT: phased and unphased separators are alike; a missing allele ('.') is kept as -1, so
    ``./.`` and ``.`` are no call and ``./1`` is one copy; a haploid GT has one allele.
    rename: applied to every CHROM first (e.g. to match another file's 'chr' naming).

    contigs: reference contig lengths. When given, contigs missing from the header are
    accepted with one warning; records on contigs the reference lacks are skipped with a
    warning, or are an error when no record at all lies on a reference contig.
    regions: keep only these contigs.
    """
    p = require_file(path, "VCF")
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    header_contigs: dict[str, Optional[int]] = {}
    saw_header = False
    undeclared: set[str] = set()
    unknown: dict[str, int] = {}  # contigs absent from the reference -> first line
    out: list[Variant] = []
    col = 9
    for n, line in enumerate(_lines(p), 1):
        if line.startswith("##"):
            if line.startswith("##contig=<"):
                m = re.search(r"ID=([^,>]+)", line)
                if m:
                    header_contigs[m.group(1)] = None
            continue
        if line.startswith("#CHROM"):
            saw_header = True
            samples = line.split("\t")[9:]
            if sample is not None:
                if sample not in samples:
                    present = ", ".join(samples[:10]) + (" ..." if len(samples) > 10 else "") if samples else "none"
                    raise InputError(p, f"sample {sample!r} not found (samples: {present})")
                col = 9 + samples.index(sample)
            continue
        if not line:
            continue
        if not saw_header:
            raise InputError(p, f"line {n}: record before the #CHROM header line (not a VCF?)")
        f = line.split("\t")
        if len(f) < 8:
            raise InputError(p, f"line {n}: expected at least 8 tab-separated columns, found {len(f)}")
        chrom = rename(f[0]) if rename is not None else f[0]
        if contigs is not None and chrom not in contigs:
            if chrom not in unknown:
                unknown[chrom] = n
            continue
        if regions is not None and chrom not in regions:
            continue
        try:
            pos = int(f[1]) - 1
        except ValueError:
            raise InputError(p, f"line {n}: POS {f[1]!r} is not an integer") from None
        ref = f[3].upper()
        if not _BASES.match(ref):
            raise InputError(p, f"line {n}: REF {f[3]!r} is not a DNA sequence")
        alts = tuple(a.upper() for a in f[4].split(",")) if f[4] != "." else ()
        if contigs is not None:
            if chrom not in header_contigs and chrom not in undeclared:
                undeclared.add(chrom)
                warn(f"{p}: no ##contig line for {chrom!r}; using its length from the reference")
            if pos + len(ref) > contigs[chrom]:
                raise InputError(p, f"line {n}: {chrom}:{pos + 1} lies beyond the contig end ({contigs[chrom]})")
        flt = f[6]
        if pass_only and flt not in ("PASS", "."):
            continue
        gt: tuple[int, ...] = ()
        if len(f) > col:
            fmt = f[8].split(":")
            if "GT" in fmt:
                raw = f[col].split(":")
                g = raw[fmt.index("GT")] if fmt.index("GT") < len(raw) else "."
                try:
                    gt = tuple(-1 if a == "." else int(a) for a in re.split(r"[/|]", g))
                except ValueError:
                    raise InputError(p, f"line {n}: GT {g!r} is not a genotype") from None
                if any(a > len(alts) for a in gt):
                    raise InputError(p, f"line {n}: GT {g!r} names an allele that ALT lacks")
        qual = None if f[5] == "." else float(f[5])
        # symbolic / breakend alleles are outside the scope of a small-variant caller
        alts_ok = tuple(a if _BASES.match(a) else "" for a in alts)
        out.append(Variant(chrom, pos, ref, alts_ok, gt, flt, qual))
    if not saw_header:
        raise InputError(p, "no #CHROM header line (not a VCF?)")
    if unknown:
        first, line_no = next(iter(unknown.items()))
        if not out:
            raise InputError(p, f"line {line_no}: contig {first!r} is not in the reference, and no record is on a "
                                "reference contig (rename the VCF's contigs or use the matching reference)")
        warn(f"{p}: skipped records on {len(unknown)} contig(s) not in the reference ({', '.join(sorted(unknown)[:5])})")
    return out


def normalize(
    pos: int, ref: str, alt: str, fetch: Callable[[int, int], str]
) -> tuple[int, str, str]:
    """Left-align and trim one biallelic variant (0-based pos). ``fetch(start, end)`` reads
    the reference."""
    if not alt or ref == alt:
        return pos, ref, alt
    while True:
        changed = False
        if ref and alt and ref[-1] == alt[-1] and (len(ref) > 1 or len(alt) > 1):
            ref, alt = ref[:-1], alt[:-1]
            changed = True
        if (not ref or not alt) and pos > 0:
            b = fetch(pos - 1, pos).upper()
            ref, alt, pos = b + ref, b + alt, pos - 1
            changed = True
        if not changed:
            break
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


FORMAT_LINES = [  # GT:GQ:DP:AD:VAF:PL, DeepVariant's FORMAT
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Conditional genotype quality">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Read depth for each allele">',
    '##FORMAT=<ID=VAF,Number=A,Type=Float,Description="Variant allele fractions.">',
    '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled genotype likelihoods rounded to the closest integer">',
]
DEFAULT_DEFINITIONS = [
    '##FILTER=<ID=PASS,Description="All filters passed">',
    '##FILTER=<ID=RefCall,Description="Genotyping model thinks this site is reference.">',
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End position (for use with symbolic alleles)">',
    *FORMAT_LINES,
]


def vcf_header(contigs: dict[str, int], sample: str, source: str = "dvtrain", *,
               definitions: Optional[list[str]] = None, meta: tuple[str, ...] | list[str] = ()) -> str:
    """A VCF 4.2 header: ``##fileformat``, ``##source``, the ##FILTER/##INFO/##FORMAT/##ALT
    ``definitions`` (default :data:`DEFAULT_DEFINITIONS`), one ``##contig`` line per contig
    with its length, the ``meta`` lines (complete ``##key=value`` lines, e.g. the command
    line) and the ``#CHROM`` line with one ``sample``."""
    lines = ["##fileformat=VCFv4.2", f"##source={source}"]
    lines += DEFAULT_DEFINITIONS if definitions is None else definitions
    lines += [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    for line in meta:
        if not line.startswith("##") or "\n" in line or "\r" in line:
            raise ValueError(f"not a one-line ## header line: {line[:60]!r}")
        lines.append(line)
    lines.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]))
    return "\n".join(lines) + "\n"


def write_bgzip_vcf(path: str | Path, text_lines: list[str], header: str) -> None:
    """Write a bgzipped, tabix-indexed VCF (.vcf.gz + .tbi). Both are built in a private
    temp folder beside the target and renamed into place only when complete."""
    import os

    import pysam

    from .fileio import temp_dir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir(path.parent, path.name) as td:
        plain = Path(td) / "out.vcf"
        plain.write_text(header + "".join(line + "\n" for line in text_lines))
        gz = Path(td) / "out.vcf.gz"
        pysam.tabix_compress(str(plain), str(gz), force=True)
        pysam.tabix_index(str(gz), preset="vcf", force=True)
        os.replace(gz, path)
        os.replace(str(gz) + ".tbi", str(path) + ".tbi")
