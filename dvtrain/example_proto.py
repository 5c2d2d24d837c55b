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


def _ld(field: int, payload: bytes) -> bytes:
    n = len(payload)
    tag = _LD_TAG[field] if field < 16 else _varint((field << 3) | 2)
    return tag + (_ONE_BYTE[n] if n < 128 else _varint(n)) + payload


def _encode_feature(value: Value) -> bytes:
    values = value if isinstance(value, list) else [value]
    if all(isinstance(v, (bytes, bytearray)) for v in values):
        inner = b"".join(_ld(1, bytes(v)) for v in values)
        return _ld(1, inner)
    if all(isinstance(v, bool) or isinstance(v, int) for v in values):
        packed = b"".join(_varint(int(v)) for v in values)
        return _ld(3, _ld(1, packed) if values else b"")
    if all(isinstance(v, (int, float)) for v in values):
        packed = struct.pack(f"<{len(values)}f", *values)
        return _ld(2, _ld(1, packed) if values else b"")
    raise TypeError(f"unsupported feature value {value!r}")


def encode_example(features: dict[str, Value]) -> bytes:
    """Serialise a dict of features as a tf.train.Example (sorted keys)."""
    entries = b"".join(
        _ld(1, _ld(1, key.encode()) + _ld(2, _encode_feature(features[key])))
        for key in sorted(features)
    )
    return _ld(1, entries)


def _fields(buf: bytes | memoryview):
    """(field number, wire type, value) of each field of a message: an int for varints, a
    slice of ``buf`` otherwise (zero-copy when ``buf`` is a memoryview)."""
    i = 0
    n = len(buf)
    while i < n:
        tag, i = _read_varint(buf, i)
        field, wire = tag >> 3, tag & 7
        if wire == 2:
            length, i = _read_varint(buf, i)
            if i + length > n:
                raise ValueError("truncated field")
            yield field, wire, buf[i : i + length]
            i += length
        elif wire == 0:
            v, i = _read_varint(buf, i)
            yield field, wire, v
        elif wire == 5:
            yield field, wire, buf[i : i + 4]
            i += 4
        elif wire == 1:
            yield field, wire, buf[i : i + 8]
            i += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")


def feature_lists(buf: bytes | memoryview) -> dict[str, tuple[int, memoryview]]:
    """A serialised tf.train.Example as {key: (kind, list message)}: kind 1 BytesList,
    2 FloatList, 3 Int64List, 0 an empty Feature. Zero-copy: the list messages are
    memoryviews into ``buf`` (call_variants takes the image bytes from them uncopied)."""
    out: dict[str, tuple[int, memoryview]] = {}
    for f1, wire, features in _fields(memoryview(buf)):
        if f1 != 1 or wire != 2:
            continue
        for f2, wire2, entry in _fields(features):
            if f2 != 1 or wire2 != 2:
                continue
            key, value = None, memoryview(b"")
            for f3, wire3, v in _fields(entry):
                if f3 == 1 and wire3 == 2:
                    key = str(v, "utf-8")
                elif f3 == 2 and wire3 == 2:
                    value = v
            if key is not None:
                out[key] = next(((kind, lst) for kind, w, lst in _fields(value) if w == 2), (0, memoryview(b"")))
    return out


def bytes_values(lst: memoryview) -> list[memoryview]:
    """A BytesList's values (memoryviews)."""
    return [v for f, wire, v in _fields(lst) if f == 1 and wire == 2]


def int_values(lst: memoryview) -> list[int]:
    """An Int64List's values (packed or not), as signed 64-bit integers."""
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
# alternate_bases=7 (repeated), calls=11 (VariantCall: call_set_name=9, genotype=7).
# AltAlleleIndices (``alt_allele_indices/encoded``): repeated int32 indices = 1.


def encode_variant(chrom: str, start: int, ref: str, alts: list[str]) -> bytes:
    out = _ld(14, chrom.encode())
    out += _varint((16 << 3) | 0) + _varint(start)
    out += _varint((13 << 3) | 0) + _varint(start + len(ref))
    out += _ld(6, ref.encode())
    out += b"".join(_ld(7, a.encode()) for a in alts)
    return out


def decode_variant(buf: bytes) -> dict:
    v: dict = {"reference_name": "", "start": 0, "end": 0, "reference_bases": "", "alternate_bases": []}
    for field, _, val in _fields(buf):
        if field == 14:
            v["reference_name"] = bytes(val).decode()
        elif field == 16:
            v["start"] = val
        elif field == 13:
            v["end"] = val
        elif field == 6:
            v["reference_bases"] = bytes(val).decode()
        elif field == 7:
            v["alternate_bases"].append(bytes(val).decode())
    return v


def encode_alt_allele_indices(indices: list[int]) -> bytes:
    return _ld(1, b"".join(_varint(i) for i in indices))


def decode_alt_allele_indices(buf: bytes) -> list[int]:
    """AltAlleleIndices: its repeated field 1, packed or not (the wire form of an Int64List)."""
    return int_values(memoryview(buf))
