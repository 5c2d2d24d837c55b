"""DeepVariant-style pileup images: H x W x C uint8 tensors centred on a candidate.

See docs/pileup.md for the drawing rules.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from . import __version__
from .config import MakeExamplesConfig
from .reads import Read, RefCache

REF_ROWS = 5
# DeepVariant channel enum ids (read_base=1 ... base_differs_from_ref=6, insert_size=19).
BASE_CHANNELS = ["read_base", "base_quality", "mapping_quality", "strand", "read_supports_variant", "base_differs_from_ref"]
CHANNEL_IDS = {"read_base": 1, "base_quality": 2, "mapping_quality": 3, "strand": 4,
               "read_supports_variant": 5, "base_differs_from_ref": 6, "insert_size": 19}
BASE_VALUE = np.zeros(256, dtype=np.uint8)
for _b, _v in {"A": 250, "G": 180, "T": 100, "C": 30}.items():
    BASE_VALUE[ord(_b)] = _v
    BASE_VALUE[ord(_b.lower())] = _v


def channel_names(extra: Iterable[str]) -> list[str]:
    return BASE_CHANNELS + [c for c in extra]


def example_info(cfg: MakeExamplesConfig) -> dict:
    chans = channel_names(cfg.channels)
    return {
        "version": f"dvtrain-{__version__}",
        "shape": [cfg.pileup_image_height, cfg.pileup_image_width, len(chans)],
        "channels": [CHANNEL_IDS[c] for c in chans],
    }


def build_image(cand, reads: list[Read], ref: RefCache, cfg: MakeExamplesConfig,
                rng_seed: int) -> np.ndarray:
    """The H x W x C uint8 pileup tensor for one candidate."""
    H, W = cfg.pileup_image_height, cfg.pileup_image_width
    chans = channel_names(cfg.channels)
    C = len(chans)
    img = np.zeros((H, W, C), dtype=np.uint8)
    half = W // 2
    w0 = cand.pos - half
    # reference band
    lo, hi = max(0, w0), min(len(ref.seq), w0 + W)
    if lo < hi:
        refvals = BASE_VALUE[ref.arr[lo:hi]]
        cols = slice(lo - w0, hi - w0)
        img[:REF_ROWS, cols, 0] = refvals
        img[:REF_ROWS, cols, 1] = 254
        img[:REF_ROWS, cols, 2] = 254
        img[:REF_ROWS, cols, 3] = 70
        img[:REF_ROWS, cols, 4] = 152
        img[:REF_ROWS, cols, 5] = 50
    # reads overlapping the candidate's REF span
    cand_end = cand.pos + max(1, len(cand.ref))
    rows = [rd for rd in reads if rd.start < cand_end and rd.end > cand.pos]
    max_reads = H - REF_ROWS
    if len(rows) > max_reads:
        rng = np.random.default_rng(rng_seed)
        keep = np.sort(rng.choice(len(rows), size=max_reads, replace=False))
        rows = [rows[i] for i in keep]
    key = (cand.pos, cand.ref, cand.alt)
    snp = cand.is_snp
    alt_code = ord(cand.alt) if snp else 0
    has_insert = "insert_size" in chans
    for r, rd in enumerate(rows, start=REF_ROWS):
        s, e = max(rd.start, w0), min(rd.end, w0 + W)
        if s >= e:
            continue
        span = slice(s - w0, e - w0)
        if snp:
            hit = np.nonzero(rd.rpos == cand.pos)[0]
            supports = bool(hit.size) and rd.bases[hit[0]] in (alt_code, alt_code + 32)
        else:
            supports = key in rd.events
        row = img[r]
        row[span, 2] = int(254 * min(rd.mapq, 60) / 60)
        row[span, 3] = 240 if rd.reverse else 70
        row[span, 4] = 254 if supports else 152
        row[span, 5] = 254  # deletions/unaligned columns differ unless overwritten below
        if has_insert:
            row[span, 6] = int(254 * min(rd.tlen, 1000) / 1000)
        m = (rd.rpos >= w0) & (rd.rpos < w0 + W)
        cols = rd.rpos[m] - w0
        b = rd.bases[m]
        row[cols, 0] = BASE_VALUE[b]
        row[cols, 1] = (254 * np.minimum(rd.quals[m], 40) // 40).astype(np.uint8)
        refb = ref.arr[rd.rpos[m]]
        row[cols, 5] = np.where((b | 32) == (refb | 32), 50, 254)
        if rd.ins_anchors.size:
            a = rd.ins_anchors[(rd.ins_anchors >= w0) & (rd.ins_anchors < w0 + W)] - w0
            row[a, 5] = 254
    return img
