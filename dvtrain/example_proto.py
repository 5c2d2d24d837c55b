"""A small, dependency-free codec for ``tf.train.Example`` protos.

Keeps the library importable without TensorFlow (the GPU machine runs Keras on JAX),
and makes serialisation deterministic: features are written in sorted key order.
Values: ``bytes`` -> BytesList, ``float`` -> FloatList, ``int`` -> Int64List; lists of them.
"""

from __future__ import annotations

import struct
from typing import Union

Value = Union[bytes, int, float, list]


_ONE_BYTE = [bytes([i]) for i in range(128)]  # tags, lengths and counts below 128: one byte


def _varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _ONE_BYTE[n]
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes | memoryview, i: int) -> tuple[int, int]:
    b = buf[i]
    if b < 0x80:  # most tags and lengths: one byte
        return b, i + 1
    result, shift = b & 0x7F, 7
    while True:
        i += 1
        b = buf[i]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i + 1
        shift += 7


_LD_TAG = [_varint((field << 3) | 2) for field in range(16)]  # length-delimited tags of fields 0-15


def _header(field: int, n: int) -> bytes:
    """Tag and length of a length-delimited field ``field`` holding ``n`` bytes."""
    return (_LD_TAG[field] if field < 16 else _varint((field << 3) | 2)) + (_ONE_BYTE[n] if n < 128 else _varint(n))


def _ld(field: int, payload: bytes) -> bytes:
    return _header(field, len(payload)) + payload


_INTS = {int, bool}


def _feature_parts(value: Value) -> tuple[list[bytes], int]:
    """A Feature message as byte pieces and their total length: payloads (an image) are
    joined once, by encode_example, instead of copied at every level of nesting."""
    values = value if isinstance(value, list) else [value]
    # ints first (one exact type test per value covers the common case); an empty list is
    # an empty BytesList, as before
    if values and (set(map(type, values)) <= _INTS or all(isinstance(v, int) for v in values)):
        feature = _ld(3, _ld(1, b"".join([_varint(int(v)) for v in values])))
        return [feature], len(feature)
    if all(isinstance(v, (bytes, bytearray)) for v in values):
        parts: list[bytes] = []
        for v in values:
            parts += (_header(1, len(v)), bytes(v))
        n = sum(map(len, parts))
        head = _header(1, n)
        return [head] + parts, len(head) + n
    if all(isinstance(v, (int, float)) for v in values):
        feature = _ld(2, _ld(1, struct.pack(f"<{len(values)}f", *values)))
        return [feature], len(feature)
    raise TypeError(f"unsupported feature value {value!r}")


def encode_example(features: dict[str, Value]) -> bytes:
    """Serialise a dict of features as a tf.train.Example (sorted keys)."""
    parts: list[bytes] = []
    for key in sorted(features):
        feature, n = _feature_parts(features[key])
        name = _ld(1, key.encode())
        value = _header(2, n)
        parts += (_header(1, len(name) + len(value) + n), name, value, *feature)
    entries = sum(map(len, parts))
    return b"".join([_header(1, entries)] + parts)


def _field_at(buf: bytes | memoryview, i: int, n: int) -> tuple[int, int, int]:
    """The field starting at ``buf[i]`` of a message ending at ``n``: (tag, start of its
    payload, end of the field). A varint field's payload is the varint itself; fixed-width
    fields span their 4 or 8 bytes. A field running past ``n`` is a ValueError."""
    tag = buf[i]
    i += 1
    if tag >= 0x80:
        tag, i = _read_varint(buf, i - 1)
    wire = tag & 7
    if wire == 2:
        length = buf[i]
        i += 1
        if length >= 0x80:
            length, i = _read_varint(buf, i - 1)
        end = i + length
    elif wire == 0:
        end = _read_varint(buf, i)[1]
    elif wire == 5:
        end = i + 4
    elif wire == 1:
        end = i + 8
    else:
        raise ValueError(f"unsupported wire type {wire}")
    if end > n:
        raise ValueError("truncated field")
    return tag, i, end


def _fields(buf: bytes | memoryview):
    """(field number, wire type, value) of each field of a message: an int for varints, a
    slice of ``buf`` otherwise (zero-copy when ``buf`` is a memoryview)."""
    i, n = 0, len(buf)
    while i < n:
        tag, a, i = _field_at(buf, i, n)
        wire = tag & 7
        yield tag >> 3, wire, _read_varint(buf, a)[0] if wire == 0 else buf[a:i]


def feature_lists(buf: bytes | memoryview) -> dict[str, tuple[int, memoryview]]:
    """A serialised tf.train.Example as {key: (kind, list message)}: kind 1 BytesList,
    2 FloatList, 3 Int64List, 0 an empty Feature. Zero-copy: the list messages are
    memoryviews into ``buf`` (call_variants takes the image bytes from them uncopied).

    One flat loop per nesting level (Example > Features > map entry > Feature): calling
    reads every example this way, so it avoids a generator per message."""
    mv = memoryview(buf)
    out: dict[str, tuple[int, memoryview]] = {}
    i, n = 0, len(mv)
    while i < n:
        tag, a, i = _field_at(mv, i, n)
        if tag != 0x0A:  # Example.features
            continue
        j = a
        while j < i:  # Features: map entries (field 1)
            tag, b, j = _field_at(mv, j, i)
            if tag != 0x0A:
                continue
            key, value = None, (0, 0)
            k = b
            while k < j:  # entry: key (1), value (2)
                tag, c, k = _field_at(mv, k, j)
                if tag == 0x0A:
                    key = str(mv[c:k], "utf-8")
                elif tag == 0x12:
                    value = (c, k)
            if key is None:
                continue
            found: tuple[int, memoryview] = (0, memoryview(b""))
            m, end = value
            while m < end:  # Feature: the first length-delimited field is its list
                tag, c, m = _field_at(mv, m, end)
                if tag & 7 == 2:
                    found = (tag >> 3, mv[c:m])
                    break
            out[key] = found
    return out


def bytes_values(lst: memoryview) -> list[memoryview]:
    """A BytesList's values (memoryviews)."""
    out: list[memoryview] = []
    i, n = 0, len(lst)
    while i < n:
        tag, a, i = _field_at(lst, i, n)
        if tag == 0x0A:
            out.append(lst[a:i])
    return out


def int_values(lst: memoryview) -> list[int]:
    """An Int64List's values (packed or not), as signed 64-bit integers."""
    n = len(lst)
    if n >= 2 and lst[0] == 0x0A and lst[1] == n - 2 and (n == 2 or max(lst[2:]) < 0x80):
        return list(lst[2:])  # one packed run of values below 128 (shapes, counts, labels)
    vals: list[int] = []
    for f, wire, v in _fields(lst):
        if f != 1:
            continue
        if wire == 2:
            j = 0
            while j < len(v):
                x, j = _read_varint(v, j)
                vals.append(x)
        elif wire == 0:
            vals.append(v)
        else:
            raise ValueError("not an Int64List")
    return [x - (1 << 64) if x >= 1 << 63 else x for x in vals]


def _float_values(lst: memoryview) -> list[float]:
    out: list[float] = []
    for f, wire, v in _fields(lst):
        if f == 1:
            out.extend(struct.unpack(f"<{len(v) // 4}f", v) if wire == 2 else struct.unpack("<f", v))
    return out


def decode_example(buf: bytes, keys: set[str] | None = None) -> dict[str, list]:
    """Parse a serialised tf.train.Example into {key: [values]} (optionally only ``keys``)."""
    decoders = {1: lambda lst: [bytes(v) for v in bytes_values(lst)], 2: _float_values, 3: int_values}
    return {key: decoders[kind](lst) if kind in decoders else []
            for key, (kind, lst) in feature_lists(buf).items() if keys is None or key in keys}


# --------------------------------------------------------------------------------------
# nucleus.genomics.v1.Variant (the proto DeepVariant stores in ``variant/encoded``).
# Field numbers: reference_name=14, start=16, end=13, reference_bases=6,
# alternate_bases=7 (repeated), calls=11. VariantCall: call_set_name=9, genotype=7
# (repeated int32, packed), info=2 (map<string, ListValue>). ListValue: values=1;
# Value: number_value=2 (double), string_value=3, bool_value=4, int_value=7 (int32).
# AltAlleleIndices (``alt_allele_indices/encoded``): repeated int32 indices = 1.
# CallVariantsOutput (call_variants' output): variant=1, alt_allele_indices=2,
# genotype_probabilities=3 (repeated double, packed).


def _list_value(values: list) -> bytes:
    """A nucleus ListValue: ints as int_value, floats as number_value."""
    out = b""
    for v in values:
        if isinstance(v, int):
            out += _ld(1, _varint((7 << 3) | 0) + _varint(v))
        else:
            out += _ld(1, b"\x11" + struct.pack("<d", float(v)))  # field 2, fixed64
    return out


def encode_variant_call(sample: str, genotype: tuple[int, ...], info: dict[str, list]) -> bytes:
    """A VariantCall (info entries in sorted key order)."""
    out = b"".join(_ld(2, _ld(1, k.encode()) + _ld(2, _list_value(info[k]))) for k in sorted(info))
    out += _ld(7, b"".join(_varint(g) for g in genotype))
    return out + _ld(9, sample.encode())


def read_counts_call(sample: str, dp: int, ad: list[int], genotype: tuple[int, ...] = (-1, -1)) -> bytes:
    """The VariantCall DeepVariant's make_examples puts on a candidate: DP (reads at the
    site), AD (reference, then each alt) and VAF (each alt's AD / DP); a site with no
    real alt (ALT ``<*>``) gets DP only, as DeepVariant's AddReadDepths does."""
    info: dict[str, list] = {"DP": [dp]}
    if len(ad) > 1:
        info["AD"] = list(ad)
        info["VAF"] = [a / dp if dp else 0.0 for a in ad[1:]]
    return encode_variant_call(sample, genotype, info)


def encode_variant(chrom: str, start: int, ref: str, alts: list[str], call: bytes = b"") -> bytes:
    """A Variant; ``call``, when given, is its one VariantCall (see read_counts_call)."""
    out = _ld(14, chrom.encode())
    out += _varint((16 << 3) | 0) + _varint(start)
    out += _varint((13 << 3) | 0) + _varint(start + len(ref))
    out += _ld(6, ref.encode())
    out += b"".join(_ld(7, a.encode()) for a in alts)
    return out + (_ld(11, call) if call else b"")


def _value(buf: memoryview) -> object:
    for f, wire, v in _fields(buf):
        if f == 2 and wire == 1:
            return struct.unpack("<d", v)[0]
        if f == 7 and wire == 0:
            return v - (1 << 64) if v >= 1 << 63 else v
        if f == 3 and wire == 2:
            return str(v, "utf-8")
        if f == 4 and wire == 0:
            return bool(v)
    return None


def decode_variant_call(buf: bytes | memoryview) -> dict:
    """A VariantCall as {call_set_name, genotype, info: {key: [values]}}."""
    call: dict = {"call_set_name": "", "genotype": [], "info": {}}
    for f, wire, v in _fields(memoryview(buf)):
        if f == 9 and wire == 2:
            call["call_set_name"] = str(v, "utf-8")
        elif f == 7:  # packed (length-delimited) or one varint: as an Int64List's field 1
            call["genotype"] += int_values(memoryview(_ld(1, bytes(v)) if wire == 2 else _varint(8) + _varint(v)))
        elif f == 2 and wire == 2:
            key, values = "", []
            for g, w2, e in _fields(v):
                if g == 1 and w2 == 2:
                    key = str(e, "utf-8")
                elif g == 2 and w2 == 2:
                    values = [_value(x) for h, w3, x in _fields(e) if h == 1 and w3 == 2]
            call["info"][key] = values
    return call


def variant_calls(buf: bytes | memoryview) -> list[dict]:
    """The decoded VariantCalls (field 11) of a serialised Variant."""
    return [decode_variant_call(v) for f, wire, v in _fields(memoryview(buf)) if f == 11 and wire == 2]


def decode_variant(buf: bytes) -> dict:
    """A Variant's locus and alleles (its calls: :func:`variant_calls`)."""
    v: dict = {"reference_name": "", "start": 0, "end": 0, "reference_bases": "", "alternate_bases": []}
    mv = memoryview(buf)
    i, n = 0, len(mv)
    while i < n:
        tag, a, i = _field_at(mv, i, n)
        if tag == 0x72:  # 14: reference_name
            v["reference_name"] = str(mv[a:i], "utf-8")
        elif tag == 0x80:  # 16 (varint): start
            v["start"] = _read_varint(mv, a)[0]
        elif tag == 0x68:  # 13 (varint): end
            v["end"] = _read_varint(mv, a)[0]
        elif tag == 0x32:  # 6: reference_bases
            v["reference_bases"] = str(mv[a:i], "utf-8")
        elif tag == 0x3A:  # 7: alternate_bases
            v["alternate_bases"].append(str(mv[a:i], "utf-8"))
    return v


def encode_alt_allele_indices(indices: list[int]) -> bytes:
    return _ld(1, b"".join(_varint(i) for i in indices))


def decode_alt_allele_indices(buf: bytes) -> list[int]:
    """AltAlleleIndices: its repeated field 1, packed or not (the wire form of an Int64List)."""
    return int_values(memoryview(buf))


def decode_call_variants_output(buf: bytes) -> tuple[bytes, list[int], list[float]]:
    """A CallVariantsOutput as (its Variant's bytes, alt allele indices, genotype
    probabilities); a missing variant is b""."""
    variant, indices, probs = b"", [], []
    for f, wire, v in _fields(memoryview(buf)):
        if f == 1 and wire == 2:
            variant = bytes(v)
        elif f == 2 and wire == 2:
            indices = int_values(v)
        elif f == 3 and wire == 2:  # packed doubles
            probs += struct.unpack(f"<{len(v) // 8}d", v)
        elif f == 3 and wire == 1:
            probs += struct.unpack("<d", v)
    return variant, indices, probs
