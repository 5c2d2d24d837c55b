"""DeepVariant-style pileup images: H x W x C uint8 tensors centred on a candidate.

The drawing rules follow DeepVariant r1.6.1 (pileup_image_native.cc and
pileup_channel_lib.h/.cc); docs/pileup.md states them exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import __version__
from .config import MODEL_BOUND_OPTIONS, OPTIONAL_CHANNELS, MakeExamplesConfig
from .errors import InputError
from .reads import Read, ReadBatch, RefCache

REF_ROWS = 5
# Reads are taken for the image when they overlap the candidate's REF span widened by
# this many bases on each side (DeepVariant's read_overlap_buffer_bp).
READ_OVERLAP_BUFFER = 5
# DeepVariant channel enum ids (read_base=1 ... base_differs_from_ref=6, is_homopolymer=16,
# homopolymer_weighted=17, insert_size=19).
BASE_CHANNELS = ["read_base", "base_quality", "mapping_quality", "strand", "read_supports_variant", "base_differs_from_ref"]
CHANNEL_IDS = {"read_base": 1, "base_quality": 2, "mapping_quality": 3, "strand": 4,
               "read_supports_variant": 5, "base_differs_from_ref": 6, "is_homopolymer": 16,
               "homopolymer_weighted": 17, "insert_size": 19}

# Pixel values (DeepVariant default PileupImageOptions).
MAX_PIXEL = 254
BASE_QUALITY_CAP = 40
MAPPING_QUALITY_CAP = 60
REFERENCE_BASE_QUALITY = 60  # drawn as a base/mapping quality in the reference band
MAX_FRAGMENT_LENGTH = 1000
MAX_HOMOPOLYMER_WEIGHTED = 30  # homopolymer_weighted: int(254 * min(run, 30) / 30)
MIN_HOMOPOLYMER = 3  # is_homopolymer: 254 inside a run of 3 or more identical bases, else 0
STRAND_FORWARD, STRAND_REVERSE = 70, 240
SUPPORTS_ALT, SUPPORTS_OTHER = 254, 152  # int(254 * 1.0), int(254 * 0.6): ref and other alleles alike
MATCHES_REF, DIFFERS_FROM_REF = 50, 254  # int(254 * 0.2), int(254 * 1.0)
ANCHOR_BASE_VALUE = 0  # the '*' drawn at an indel anchor has no base colour

BASE_VALUE = np.zeros(256, dtype=np.uint8)
for _b, _v in {"A": 250, "G": 180, "T": 100, "C": 30}.items():
    BASE_VALUE[ord(_b)] = _v
    BASE_VALUE[ord(_b.lower())] = _v


def channel_names(extra: Iterable[str]) -> list[str]:
    return BASE_CHANNELS + [c for c in extra]


def optional_channels(info: dict) -> list[str]:
    """The optional channel names of an example_info.json (its ``channels`` ids after the six
    base channels), e.g. the channels a model was trained with."""
    names = {v: k for k, v in CHANNEL_IDS.items()}
    ids = info.get("channels") or []
    if list(ids[:len(BASE_CHANNELS)]) != [CHANNEL_IDS[c] for c in BASE_CHANNELS] or \
            any(i not in names for i in ids[len(BASE_CHANNELS):]):
        raise ValueError(f"channels {ids} are not DeepVariant's six base channels followed by "
                         f"optional ones dvtrain draws ({', '.join(OPTIONAL_CHANNELS)})")
    return [names[i] for i in ids[len(BASE_CHANNELS):]]


def _model_example_info(model: str | Path, read: Callable[[dict], object]):
    """``read`` applied to the example_info.json beside ``model`` (where ``dvtrain train``
    writes it); None when there is none."""
    info = Path(model).parent / "example_info.json"
    if not info.is_file():
        return None
    try:
        return read(json.loads(info.read_text()))
    except (ValueError, AttributeError, TypeError, KeyError) as e:
        raise InputError(info, f"not a usable example_info.json ({e})") from None


def model_channels(model: str | Path) -> list[str]:
    """The optional channels ``model`` was trained with (its example_info.json); insert_size,
    make_examples' default, when there is none."""
    found = _model_example_info(model, optional_channels)
    return ["insert_size"] if found is None else found


def image_size(info: dict) -> tuple[int, int]:
    """(height, width) of an example_info.json's ``shape`` (ValueError unless [h, w, c] > 0)."""
    shape = info["shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise ValueError(f"shape {shape!r} is not [height, width, channels]")
    return shape[0], shape[1]


def model_image_size(model: str | Path) -> tuple[int, int]:
    """The (height, width) of the images ``model`` was trained on (its example_info.json);
    make_examples' defaults when there is none."""
    found = _model_example_info(model, image_size)
    defaults = MakeExamplesConfig.model_fields
    return (defaults["pileup_image_height"].default, defaults["pileup_image_width"].default) if found is None \
        else found


def example_info(cfg: MakeExamplesConfig) -> dict:
    """DeepVariant's example_info.json (version, shape, channel ids), plus ``make_examples``:
    the options that chose and drew these examples (``MODEL_BOUND_OPTIONS``), which a model
    trained on them must be called with. DeepVariant reads only shape and channels."""
    chans = channel_names(cfg.channels)
    return {
        "version": f"dvtrain-{__version__}",
        "shape": [cfg.pileup_image_height, cfg.pileup_image_width, len(chans)],
        "channels": [CHANNEL_IDS[c] for c in chans],
        "make_examples": {name: getattr(cfg, name) for name in MODEL_BOUND_OPTIONS},
    }


def scale(value: int, cap: int) -> int:
    """DeepVariant's ScaleColor: int(254 * min(value, cap) / cap), truncated.

    Integer floor division gives the same pixel as DeepVariant's float32 arithmetic for
    every integer value (the exact quotient is either an integer or at least 1/cap away
    from one)."""
    return MAX_PIXEL * min(max(int(value), 0), cap) // cap


# base_quality pixel for every quality 0..255
BQ_PIXEL = np.array([scale(q, BASE_QUALITY_CAP) for q in range(256)], dtype=np.uint8)
MQ_PIXEL = np.array([scale(q, MAPPING_QUALITY_CAP) for q in range(256)], dtype=np.uint8)
INSERT_PIXEL = np.array([scale(n, MAX_FRAGMENT_LENGTH) for n in range(MAX_FRAGMENT_LENGTH + 1)], dtype=np.uint8)
# pixel per homopolymer run length 0..255, for each of the two run channels
RUN_PIXEL = {"homopolymer_weighted": np.array([scale(n, MAX_HOMOPOLYMER_WEIGHTED) for n in range(256)], dtype=np.uint8),
             "is_homopolymer": np.where(np.arange(256) >= MIN_HOMOPOLYMER, MAX_PIXEL, 0).astype(np.uint8)}


def _bq_pixels(quals: np.ndarray) -> np.ndarray:
    return BQ_PIXEL.take(quals, mode="clip")


def _alleles(cand) -> list:
    """``cand`` is one candidate or a list of candidates at one position (the alt alleles
    of a multi-allelic image); each has chrom, pos, ref, alt and is_snp."""
    alleles = [cand] if hasattr(cand, "pos") else list(cand)
    if not alleles or len({a.pos for a in alleles}) != 1:
        raise ValueError("build_image needs one or more candidates at a single position")
    return alleles


def _as_batch(reads: ReadBatch | list[Read]) -> ReadBatch:
    return reads if isinstance(reads, ReadBatch) else ReadBatch.from_reads(reads)


def _eligible(batch: ReadBatch, rows: np.ndarray, pos: int, min_bq: int) -> np.ndarray:
    """The ``rows`` whose quality drawn at ``pos`` is >= min_bq: their aligned base there,
    and any insertion anchored there (DeepVariant leaves the other reads out)."""
    if not rows.size:
        return rows
    hit, i = batch.base_at(rows, pos)
    low = hit & (batch.quals[i] < min_bq)
    bad_ins = batch.ins_row[(batch.ins_pos == pos) & (batch.ins_qual < min_bq)]
    if bad_ins.size:
        low |= np.isin(rows, bad_ins)
    return rows[~low]


def repeat_end(pos: int, ref_allele: str, alt: str, seq: str) -> int:
    """The first reference position after every placement of the indel (left-aligned at
    ``pos``, 0-based, anchor base included in both alleles): the indel can slide right
    through a tandem repeat, so only a read aligned past the repeat tells it from the
    reference."""
    if len(ref_allele) > len(alt):  # deletion of ref_allele[1:]
        n = len(ref_allele) - 1
        k = 0
        while pos + 1 + n + k < len(seq) and seq[pos + 1 + n + k] == seq[pos + 1 + k]:
            k += 1
        return pos + 1 + n + k
    ins = alt[1:]  # insertion after pos
    k = 0
    while ins and pos + 1 + k < len(seq) and seq[pos + 1 + k] == ins[k % len(ins)]:
        k += 1
    return pos + 1 + k


def informative(batch: ReadBatch, rows: np.ndarray, alleles: list, seq: str) -> np.ndarray:
    """Mask over ``rows`` of the reads that can tell an indel-only candidate from the
    reference: reads carrying one of its indels, and reads aligned from the anchor base to
    past the repeat the indel sits in (``repeat_end``). A read that ends, or is clipped,
    inside the repeat looks like a reference read although it cannot be one; at 4x two
    such reads turn a hom-alt insertion into a het call."""
    keys = [(a.pos, a.ref, a.alt) for a in alleles]
    need = max(repeat_end(a.pos, a.ref, a.alt, seq) for a in alleles)
    spans = (batch.start[rows] <= alleles[0].pos) & (batch.end[rows] > need)
    carries = np.fromiter((any(k in batch.events.get(int(r), ()) for k in keys) for r in rows), bool, rows.size)
    return spans | carries


HAPLOTYPE_FLANK = 10  # reference bases around the anchor and the repeat that haplotype_support compares
DISPLACED_INDEL = 5  # an indel of the candidate's kind and length anchored up to this far left of it is the same event
N_BASE = ord("N")


def _alt_to_ref(pos: int, ref_allele: str, alt: str, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference position of each position ``q`` of the alt haplotype (the reference with the
    indel, left-aligned at ``pos`` with the anchor base in both alleles, applied), and
    whether it has one (an inserted base has none)."""
    n = len(alt) - len(ref_allele)
    return np.where(q <= pos, q, q - n), (q <= pos) | (q > pos + max(n, 0))


def _haplotype_bases(pos: int, ref_allele: str, alt: str, arr: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Base (ASCII) ``q`` of the alt haplotype (``_alt_to_ref``); ``q`` indexes that haplotype."""
    at, kept = _alt_to_ref(pos, ref_allele, alt, q)
    bases = arr.take(np.maximum(at, 0), mode="clip")
    if len(alt) > len(ref_allele):  # an inserted base: alt[1:] follows pos
        ins = np.frombuffer(alt[1:].encode(), dtype=np.uint8)
        bases = np.where(kept, bases, ins[np.clip(q - pos - 1, 0, ins.size - 1)])
    return bases


def haplotype_support(batch: ReadBatch, rows: np.ndarray, alleles: list,
                      ref: RefCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(supports, tells, placed) over ``rows`` for an indel-only candidate, a local stand-in
    for DeepVariant's realigner. A read supports the indel if it carries it, carries an
    indel of the same kind and length placed elsewhere in the repeat or up to
    ``DISPLACED_INDEL`` bases left of it (a copy displaced by a sequencing error), or,
    aligned without the indel, shows more of an alt haplotype than of the reference from
    ``HAPLOTYPE_FLANK`` bases before the anchor to as many past the repeat. The alt
    haplotype is placed two ways: left-aligned with the reference, for reads that start at
    or before the anchor (a read ending just past an insertion is aligned with mismatches
    there), and right-aligned, for reads that end past the repeat (a read that starts inside
    an insertion is aligned with a mismatch at the anchor, which turns it into a 1-read SNP
    allele of the site). A read tells the indel from the reference if it
    supports it or shows more of the reference than of every alt placement it can take; one
    that shows both equally (it stops inside the repeat, or is clipped there), or that
    carries another indel in the repeat (slippage of either haplotype), cannot. ``placed``:
    for a read that supports without carrying an indel of the kind, 1 + 2 * (index of the
    allele) + (0 left-aligned, 1 right-aligned), the alt placement it matched; else 0."""
    keys = [(a.pos, a.ref, a.alt) for a in alleles]
    pos = alleles[0].pos
    need = max(repeat_end(a.pos, a.ref, a.alt, ref.seq) for a in alleles)
    lengths = {len(a.alt) - len(a.ref) for a in alleles}
    carries = np.zeros(rows.size, dtype=bool)
    other = np.zeros(rows.size, dtype=bool)  # another indel at the locus: neither haplotype
    for j, r in enumerate(rows.tolist()):
        for ev in batch.events.get(r, ()):
            if ev in keys or (pos - DISPLACED_INDEL <= ev[0] <= need and len(ev[2]) - len(ev[1]) in lengths):
                carries[j] = True
                break
            other[j] |= pos <= ev[0] <= need
    flat, idx = batch.window(rows, pos - HAPLOTYPE_FLANK, need + HAPLOTYPE_FLANK)
    p = batch.rpos[flat]
    b = batch.bases[flat] & 0xDF
    rb = ref.arr.take(p, mode="clip")
    left = batch.start[rows] <= pos  # can show the left-aligned alt haplotype
    right = batch.end[rows] > need  # can show the right-aligned one
    placed = np.zeros(rows.size, dtype=np.int64)
    ref_like = left | right
    for k, a in enumerate(alleles):
        shift = len(a.alt) - len(a.ref)
        for side, (ok, ab) in enumerate(((left, _haplotype_bases(a.pos, a.ref, a.alt, ref.arr, p)),
                                         (right, _haplotype_bases(a.pos, a.ref, a.alt, ref.arr, p + shift)))):
            w = (b != N_BASE) & (rb != N_BASE) & (ab != N_BASE)  # where no sequence has an N
            miss_ref = np.bincount(idx, weights=w & (b != rb), minlength=rows.size)
            miss_alt = np.bincount(idx, weights=w & (b != ab), minlength=rows.size)
            placed = np.where((placed == 0) & ok & (miss_alt < miss_ref), 1 + 2 * k + side, placed)
            ref_like &= ~ok | (miss_ref < miss_alt)
    placed[carries] = 0
    supports = carries | (placed > 0)
    return supports, supports | (ref_like & ~other), placed


def snp_carriers(batch: ReadBatch, rows: np.ndarray, alleles: list) -> np.ndarray:
    """Mask over ``rows`` of the reads whose aligned base at the site is one of the SNP alts
    among ``alleles``."""
    out = np.zeros(rows.size, dtype=bool)
    alts = [ord(a.alt) & 0xDF for a in alleles if a.is_snp]
    if alts:
        hit, i = batch.base_at(rows, alleles[0].pos)
        called = batch.bases[i] & 0xDF
        for alt in alts:  # one to three alts: plain comparisons beat np.isin's sort
            out |= hit & (called == alt)
    return out


def select_reads(cand, reads: ReadBatch | list[Read], cfg: MakeExamplesConfig, rng_seed: int,
                 ref: RefCache | None = None, ref_len: int | None = None) -> np.ndarray:
    """Rows of the batch drawn for ``cand`` (one candidate or a list at one position), in
    image row order.

    Reads overlapping [pos - 5, pos + len(ref) + 5) (``ref``: the longest REF of ``cand``,
    or the whole site's) with MAPQ >= min_mapping_quality and no low-quality base at the
    candidate are eligible. With ``cfg.indel_informative_reads``
    (and ``ref``), a candidate whose alleles are all indels keeps only the reads that can
    tell it from the reference (``haplotype_support`` with ``cfg.indel_haplotype_support``,
    else ``informative``); with ``cfg.indel_haplotype_support`` an image mixing indel and
    SNP alleles keeps those reads plus the ones showing a SNP alt. When there are more than
    H - 5, a permutation seeded by ``rng_seed`` keeps H - 5 of them. Rows follow the batch order: (alignment start, read
    name), ties in input order.
    """
    return _select(cand, _as_batch(reads), cfg, rng_seed, ref, ref_len)[0]


def _select(cand, batch: ReadBatch, cfg: MakeExamplesConfig, rng_seed: int,
            ref: RefCache | None, ref_len: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``select_reads``' rows, the mask over them of the reads ``haplotype_support`` counts
    as supporting the image's indel alleles (all False otherwise), and its ``placed``.
    ``ref_len``: the whole site's REF length (all images of a site take the reads over it)."""
    max_reads = cfg.pileup_image_height - REF_ROWS
    if max_reads <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64)
    alleles = _alleles(cand)
    pos = alleles[0].pos
    lo = pos - READ_OVERLAP_BUFFER
    hi = pos + max(ref_len or max(len(a.ref) for a in alleles), 1) + READ_OVERLAP_BUFFER
    rows = batch.overlapping(lo, hi)
    rows = _eligible(batch, rows[batch.mapq[rows] >= cfg.min_mapping_quality], pos, cfg.min_base_quality)
    supports = np.zeros(rows.size, dtype=bool)
    placed = np.zeros(rows.size, dtype=np.int64)
    indels = [a for a in alleles if not a.is_snp]
    if ref is not None and rows.size and indels:
        if cfg.indel_haplotype_support:  # mixed images too: reads showing a SNP alt stay
            supports, tells, placed = haplotype_support(batch, rows, indels, ref)
            if len(indels) < len(alleles):  # reads showing the image's SNP stay as aligned
                snps = snp_carriers(batch, rows, alleles)
                tells |= snps
                placed[snps] = 0
            if cfg.indel_informative_reads:
                rows, supports, placed = rows[tells], supports[tells], placed[tells]
        elif cfg.indel_informative_reads and len(indels) == len(alleles):
            tells = informative(batch, rows, alleles, ref.seq)
            rows, supports = rows[tells], supports[tells]
    if rows.size > max_reads:
        keep = np.sort(np.random.default_rng(rng_seed).permutation(rows.size)[:max_reads])
        rows, supports, placed = rows[keep], supports[keep], placed[keep]
    return rows, supports, placed


def build_image(cand, reads: ReadBatch | list[Read], ref: RefCache, cfg: MakeExamplesConfig,
                rng_seed: int, ref_len: int | None = None) -> np.ndarray:
    """The H x W x C uint8 pileup tensor for one candidate, or for a list of candidates at
    one position (reads carrying any of them support the variant). ``ref_len``: the REF
    length of the whole site when the candidates are a subset of its alleles (the reads are
    those over the site, as DeepVariant takes them). Rules: docs/pileup.md."""
    batch = _as_batch(reads)
    alleles = _alleles(cand)
    H, W = cfg.pileup_image_height, cfg.pileup_image_width
    chans = channel_names(cfg.channels)
    C = len(chans)
    img = np.zeros((H, W, C), dtype=np.uint8)
    w0 = alleles[0].pos - W // 2
    w1 = w0 + W
    # reference band: constant channels across the whole width, base colour per column
    nref = min(REF_ROWS, H)
    img[:nref, :, 1] = scale(REFERENCE_BASE_QUALITY, BASE_QUALITY_CAP)
    img[:nref, :, 2] = scale(REFERENCE_BASE_QUALITY, BASE_QUALITY_CAP)
    img[:nref, :, 3] = STRAND_FORWARD
    img[:nref, :, 4] = SUPPORTS_OTHER
    img[:nref, :, 5] = MATCHES_REF
    if "insert_size" in chans:
        img[:nref, :, chans.index("insert_size")] = MAX_PIXEL
    run_chans = [(chans.index(name), px) for name, px in RUN_PIXEL.items() if name in chans]
    lo, hi = max(0, w0), min(len(ref.seq), w1)
    if lo < hi:
        img[:nref, lo - w0:hi - w0, 0] = BASE_VALUE[ref.arr[lo:hi]]
        if run_chans:
            ref_runs = ref.window_runs(lo, hi)  # runs of the window's reference, cut at its edges
            for c, px in run_chans:
                img[:nref, lo - w0:hi - w0, c] = px[ref_runs]
    refcol = np.zeros(W, dtype=np.uint8)  # reference byte per column, 0 off the contig
    if lo < hi:
        refcol[lo - w0:hi - w0] = ref.arr[lo:hi]

    sel, realigned, placed = _select(alleles, batch, cfg, rng_seed, ref, ref_len)
    if sel.size:
        _draw_reads(img, batch, sel, alleles, w0, refcol, chans, run_chans, realigned, placed)
    return img


def _draw_bases(body: np.ndarray, drawn: np.ndarray, batch: ReadBatch, flat: np.ndarray, rows, cols: np.ndarray,
                refcol: np.ndarray, run_chans: list[tuple[int, np.ndarray]]) -> None:
    """Aligned bases ``flat`` of the batch at image rows ``rows`` and columns ``cols``: base
    colour, base quality, differs-from-reference, homopolymer runs; marked in ``drawn``."""
    b = batch.bases[flat]
    pix = rows * body.shape[1] + cols  # pixel index in the read rows
    at = pix * body.shape[2]  # its first channel in the flat image: 1-D indexing is twice as fast
    out = _flat(body)
    out[at] = BASE_VALUE[b]
    out[at + 1] = _bq_pixels(batch.quals[flat])
    out[at + 5] = np.where((b | 32) == (refcol[cols] | 32), MATCHES_REF, DIFFERS_FROM_REF)
    for c, px in run_chans:
        out[at + c] = px[batch.runs[flat]]
    _flat(drawn)[pix] = True


def _flat(a: np.ndarray, *inner: int) -> np.ndarray:
    """A view of a contiguous array with its leading axes flattened (to 1-D, or to
    (-1, *inner)); an error, never a silent copy, if it is not contiguous."""
    return np.reshape(a, (-1, *inner), copy=False)


def _draw_reads(img: np.ndarray, batch: ReadBatch, sel: np.ndarray, alleles: list, w0: int, refcol: np.ndarray,
                chans: list[str], run_chans: list[tuple[int, np.ndarray]], realigned: np.ndarray,
                placed: np.ndarray) -> None:
    """Draw the reads ``sel`` (batch rows) into rows 5.. of ``img``, all at once (numpy
    over the batch's flat arrays; see docs/pileup.md for the rules). ``run_chans``: the
    (channel index, pixel per run length) of the homopolymer channels drawn; ``realigned``:
    a mask over ``sel`` of reads that support the variant whatever their own alignment;
    ``placed``: per read of ``sel``, ``haplotype_support``'s code of the alt placement a read
    without the indel matched (0: none), which redraws it realigned to that placement."""
    R, W = sel.size, img.shape[1]
    w1 = w0 + W
    body = img[REF_ROWS:REF_ROWS + R]
    # aligned bases inside the window
    flat, rows = batch.window(sel, w0, w1)
    cols = batch.rpos[flat] - w0
    drawn = np.zeros((R, W), dtype=bool)
    _draw_bases(body, drawn, batch, flat, rows, cols, refcol, run_chans)
    image_row = np.full(len(batch), -1, dtype=np.int64)  # batch row -> image row
    image_row[sel] = np.arange(R)
    # deletions: the deleted columns stay empty; the aligned base before the gap becomes
    # an anchor ('*': no base colour, differs from the reference)
    if batch.del_row.size:
        drow = image_row[batch.del_row]
        dpos = batch.del_start - 1
        ok = (drow >= 0) & (dpos >= w0) & (dpos < w1)
        if ok.any():
            aligned, _ = batch.base_at(batch.del_row[ok], dpos[ok])
            drow, dcol = drow[ok][aligned], dpos[ok][aligned] - w0
            body[drow, dcol, 0] = ANCHOR_BASE_VALUE
            body[drow, dcol, 5] = DIFFERS_FROM_REF
    # insertions: the base before the inserted bases becomes an anchor carrying the
    # quality of the first inserted base
    if batch.ins_row.size:
        irow = image_row[batch.ins_row]
        keep = (irow >= 0) & (batch.ins_pos >= w0) & (batch.ins_pos < w1)
        if keep.any():
            irow, icol = irow[keep], batch.ins_pos[keep] - w0
            body[irow, icol, 0] = ANCHOR_BASE_VALUE
            body[irow, icol, 1] = _bq_pixels(batch.ins_qual[keep])
            body[irow, icol, 5] = DIFFERS_FROM_REF
            for c, px in run_chans:  # the first inserted base's run
                body[irow, icol, c] = px[batch.ins_run[keep]]
            drawn[irow, icol] = True
    s0 = np.minimum(np.maximum(batch.start[sel], w0), w1) - w0  # np.clip costs more on short arrays
    s1 = np.minimum(np.maximum(batch.end[sel], w0), w1) - w0
    # reads that match an alt haplotype without carrying the indel: drawn realigned to it
    # (their bases moved to the columns that placement gives them, inserted bases left out,
    # the anchor marked as the indel's), as the carriers of the indel are drawn
    indels = [a for a in alleles if not a.is_snp]
    for j in np.flatnonzero(placed):
        a, side = indels[(placed[j] - 1) // 2], (placed[j] - 1) % 2
        f = flat[rows == j]
        q = batch.rpos[f] + (len(a.alt) - len(a.ref)) * side
        new, kept = _alt_to_ref(a.pos, a.ref, a.alt, q)
        ok = kept & (new >= w0) & (new < w1)
        f, c = f[ok], new[ok] - w0
        body[j] = 0
        drawn[j] = False
        _draw_bases(body, drawn, batch, f, j, c, refcol, run_chans)
        if w0 <= a.pos < w1 and (new[kept] == a.pos).any() and (q > a.pos).any():
            body[j, a.pos - w0, 0] = ANCHOR_BASE_VALUE
            body[j, a.pos - w0, 5] = DIFFERS_FROM_REF
        s0[j], s1[j] = (c.min(), c.max() + 1) if c.size else (0, 0)
    # read-level channels on every drawn column of the read's span inside the window;
    # columns of the span the read does not draw (deletions, skips) are cleared
    grid = np.arange(W)
    span = (grid >= s0[:, None]) & (grid < s1[:, None]) | drawn  # (an anchor may precede the read)
    mq = MQ_PIXEL.take(batch.mapq[sel], mode="clip")
    strand = np.where(batch.reverse[sel], STRAND_REVERSE, STRAND_FORWARD).astype(np.uint8)
    supports = realigned | snp_carriers(batch, sel, alleles)
    keys = [(a.pos, a.ref, a.alt) for a in indels]
    if keys and batch.events:
        supports |= np.fromiter((any(k in batch.events.get(int(r), ()) for k in keys) for r in sel), bool, R)
    sup = np.where(supports, SUPPORTS_ALT, SUPPORTS_OTHER).astype(np.uint8)
    body[..., 2] = np.where(span, mq[:, None], body[..., 2])
    body[..., 3] = np.where(span, strand[:, None], body[..., 3])
    body[..., 4] = np.where(span, sup[:, None], body[..., 4])
    if "insert_size" in chans:
        c = chans.index("insert_size")
        ins = INSERT_PIXEL.take(batch.tlen[sel], mode="clip")
        body[..., c] = np.where(span, ins[:, None], body[..., c])
    _flat(body, body.shape[2])[np.flatnonzero(span & ~drawn)] = 0  # pixels by flat index
