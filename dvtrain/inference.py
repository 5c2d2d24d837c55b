"""Inference for call_variants: calling-mode examples -> per-example genotype probabilities.

**Inference.** Examples are read shard by shard and run through the model ``batch_size``
at a time. With ``threads`` > 1 and several shards, shards go to that many worker
processes (spawned, single-threaded BLAS each: on the shared 2-core machine here, one
process with two OpenBLAS threads ran the narrow matrix products of the convolutions at a
fifth of one single-threaded process's speed). Two engines compute the same probabilities:

* ``numpy`` (:class:`NumpyCNN`): a NumPy forward pass over the weights in the ``.keras``
  file, for float32 models built of InputLayer, Rescaling, Conv2D, AveragePooling2D,
  Cropping2D, Flatten, Concatenate, Dense and Dropout (dvtrain's ``small_cnn``,
  ``read_sums`` and ``read_evidence``). It needs no TensorFlow
  (whose start-up alone takes 4-7 s here) and skips the empty bottom of the pileup: image
  rows below the last drawn read are all zero, so every convolution output row whose
  receptive field lies wholly in them equals the same row of an all-zero image, computed
  once; only the rows above are computed per example (a 4x image draws ~10 of 100 rows).
  Examples are grouped by drawn height, scratch buffers are reused between groups, and
  the first convolution runs on the raw uint8 pixels (Rescaling folded in). Results match
  Keras to float32 rounding (tests compare them).
* ``keras``: ``model.predict_on_batch``; any architecture (e.g. ``inception_v3``).

``auto`` (default) takes numpy when the model qualifies, else keras.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from .errors import DvtrainError, InputError, ShapeMismatchError, require_keras_model
from .example_proto import (bytes_values, decode_alt_allele_indices, decode_variant, feature_lists, int_values,
                            variant_calls)
from .fileio import read_tfrecords


# ---------------------------------------------------------------- the numpy engine
class UnsupportedModel(Exception):
    """The model is not a plain chain of layers the numpy engine implements."""


# Keras 3 stores layer weights under layers/<snake_case class name>[_<n>] in model.weights.h5
_H5_NAMES = {"InputLayer": "input_layer", "Rescaling": "rescaling", "Conv2D": "conv2d",
             "AveragePooling2D": "average_pooling2d", "Flatten": "flatten", "Dense": "dense", "Dropout": "dropout",
             "Cropping2D": "cropping2d", "Concatenate": "concatenate"}
_ACTIVATIONS = {"linear", "relu", "softmax"}
CHUNK = 16  # examples per forward pass inside a batch (grouped by drawn height)


def _same_padding(size: int, k: int, s: int) -> tuple[int, int, int]:
    """(output size, padding before, padding after) of TensorFlow's 'same' padding."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        np.maximum(x, 0, out=x)
    elif name == "softmax":
        x = x - x.max(axis=-1, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=-1, keepdims=True)
    return x


class NumpyCNN:
    """Forward pass of dvtrain's ``small_cnn``, ``read_sums`` and ``read_evidence`` models in NumPy.

    Built from the ``.keras`` file alone (config.json + model.weights.h5); raises
    :class:`UnsupportedModel` for anything else. The layers form a graph in topological
    order: ``srcs[i]`` names the ops whose outputs op ``i`` reads (-1: the image); a chain
    when not given. :meth:`predict` computes, per group of examples, only the convolution
    rows that the drawn part of the images reaches (see the module docstring) and takes the
    rest from an all-zero image's activations.
    """

    def __init__(self, input_shape: tuple[int, int, int], ops: list[tuple],
                 srcs: Optional[list[tuple[int, ...]]] = None):
        self.input_shape = input_shape
        self.ops = ops
        self.srcs = srcs if srcs is not None else [(i - 1,) for i in range(len(ops))]
        # Scratch memory, reused from chunk to chunk: fresh large arrays would each be
        # mapped and page-faulted in anew (measured: a third of the CPU time as sys time).
        self._buffers: dict[object, np.ndarray] = {}
        self._reuse = False  # off while the blank maps below are computed (they are kept)
        self._lock = threading.Lock()
        self.shapes: list[tuple[int, ...]] = []  # input shape (no batch) of each op
        self.blank: list[Optional[np.ndarray]] = []  # an all-zero image's input to each op
        vals: dict[int, tuple[np.ndarray, int]] = {-1: (np.zeros((1,) + input_shape, dtype=np.float32), input_shape[0])}
        for i, op in enumerate(ops):
            x = vals[self.srcs[i][0]][0]
            self.shapes.append(tuple(x.shape[1:]))
            self.blank.append(x if x.ndim == 4 else None)
            vals[i] = self._node(i, vals)
        x = vals[len(ops) - 1][0]
        if x.ndim != 2:
            raise UnsupportedModel(f"output of shape {list(x.shape[1:])} is not one vector per example")
        self.num_outputs = int(x.shape[1])
        # Rescaling then Conv2D: convolve the raw uint8 pixels with the kernel times the
        # scale, and add the all-zero image's pre-activation, which holds the offset's
        # share (in-bounds taps only) and the bias. Exact algebra; rows of a raw image
        # below its drawn part contribute nothing, so they need no blank rows.
        self.fused: Optional[tuple[np.ndarray, np.ndarray]] = None
        self.fused_ops = (-1, -1)  # (the Rescaling, the Conv2D) of the fused pair
        for r, op in enumerate(ops):
            readers = [k for k, s in enumerate(self.srcs) if r in s]
            if op[0] == "rescale" and self.srcs[r] == (-1,) and len(readers) == 1 and ops[readers[0]][0] == "conv":
                c = readers[0]
                kernel = ops[c][1]
                pre, _ = self._conv(c, self.blank[c], input_shape[0], activation="linear")  # type: ignore[arg-type]
                self.fused = ((kernel * op[1]).reshape(-1, kernel.shape[3]), pre)
                self.fused_ops = (r, c)
                break
        self._reuse = True

    def _scratch(self, tag: object, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised array of ``shape`` in the buffer kept under ``tag``."""
        dtype = np.dtype(dtype)
        if not self._reuse:
            return np.empty(shape, dtype=dtype)
        size = math.prod(shape) * dtype.itemsize
        buf = self._buffers.get(tag)
        if buf is None or buf.size < size:
            buf = self._buffers[tag] = np.empty(size, dtype=np.uint8)
        return buf[:size].view(dtype).reshape(shape)

    # -- loading
    @classmethod
    def load(cls, path: str | Path) -> "NumpyCNN":
        import h5py

        try:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("metadata.json"))
                cfg = json.loads(z.read("config.json"))
                weights = z.read("model.weights.h5")
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise UnsupportedModel(f"not a Keras 3 .keras file ({e})") from None
        if not str(meta.get("keras_version", "")).startswith("3."):
            raise UnsupportedModel(f"saved by Keras {meta.get('keras_version')!r}")
        if cfg.get("class_name") != "Functional":
            raise UnsupportedModel(f"a {cfg.get('class_name')} model")
        layers = cfg["config"]["layers"]
        names = [lay["name"] for lay in layers]
        # one input and one output: [name, 0, 0], or a list holding just that
        if cfg["config"].get("input_layers") not in ([names[0], 0, 0], [[names[0], 0, 0]]) or \
                cfg["config"].get("output_layers") not in ([names[-1], 0, 0], [[names[-1], 0, 0]]):
            raise UnsupportedModel("not one input and one output")
        used: dict[str, int] = {}
        h5_names = []
        inputs: list[list[str]] = []  # the layers each layer reads
        for i, lay in enumerate(layers):
            kind = lay["class_name"]
            if kind not in _H5_NAMES:
                raise UnsupportedModel(f"layer {lay['name']} is a {kind}")
            base = _H5_NAMES[kind]
            used[base] = used.get(base, -1) + 1
            h5_names.append(base if used[base] == 0 else f"{base}_{used[base]}")
            nodes = lay.get("inbound_nodes") or []
            if i == 0:
                if kind != "InputLayer" or nodes:
                    raise UnsupportedModel("the first layer is not the input")
                continue
            if len(nodes) != 1 or len(nodes[0].get("args", [])) != 1 or \
                    set(nodes[0].get("kwargs", {})) - {"training", "mask"}:
                raise UnsupportedModel(f"layer {lay['name']} is not called once")
            arg = nodes[0]["args"][0]
            args = arg if kind == "Concatenate" and isinstance(arg, list) else [arg]
            srcs = [a.get("config", {}).get("keras_history", [None])[0] if isinstance(a, dict) else None for a in args]
            if any(src not in names[:i] for src in srcs):
                raise UnsupportedModel(f"layer {lay['name']} reads a tensor of no earlier layer")
            inputs.append(srcs)
            policy = lay["config"].get("dtype")
            policy = policy.get("config", {}).get("name") if isinstance(policy, dict) else policy
            if policy not in (None, "float32"):
                raise UnsupportedModel(f"layer {lay['name']} computes in {policy}")
        shape = layers[0]["config"].get("batch_shape") or layers[0]["config"].get("batch_input_shape")
        if not shape or len(shape) != 4 or any(not isinstance(d, int) for d in shape[1:]):
            raise UnsupportedModel("input is not H x W x C")
        with h5py.File(io.BytesIO(weights), "r") as h5:
            raw = [cls._op(lay, h5, h5_name) for lay, h5_name in zip(layers[1:], h5_names[1:])]
        index = {names[0]: -1}  # layer name -> op index (a Dropout stands for its input)
        ops: list[tuple] = []
        srcs: list[tuple[int, ...]] = []
        for lay, op, src in zip(layers[1:], raw, inputs):
            if op is None:
                index[lay["name"]] = index[src[0]]
                continue
            if (op[0] == "concat") != (len(src) > 1):
                raise UnsupportedModel(f"layer {lay['name']} reads {len(src)} tensors")
            index[lay["name"]] = len(ops)
            ops.append(op)
            srcs.append(tuple(index[s] for s in src))
        if index[names[-1]] != len(ops) - 1:
            raise UnsupportedModel("the output is not the last layer")
        return cls(tuple(int(d) for d in shape[1:]), ops, srcs)  # type: ignore[arg-type]

    @staticmethod
    def _op(lay: dict, h5, h5_name: str) -> Optional[tuple]:
        kind, c = lay["class_name"], lay["config"]

        def var(i: int) -> np.ndarray:
            key = f"layers/{h5_name}/vars/{i}"
            if key not in h5:
                raise UnsupportedModel(f"no weights at {key}")
            return np.asarray(h5[key][()], dtype=np.float32)

        if kind == "Dropout":
            return None
        if kind == "Rescaling":
            if not all(isinstance(c.get(k), (int, float)) for k in ("scale", "offset")):
                raise UnsupportedModel("per-channel Rescaling")
            return ("rescale", np.float32(c["scale"]), np.float32(c["offset"]))
        if kind == "Flatten":
            if c.get("data_format", "channels_last") != "channels_last":
                raise UnsupportedModel("channels_first Flatten")
            return ("flatten",)
        if kind == "Cropping2D":
            (top, bottom), (left, right) = c["cropping"]
            if c.get("data_format", "channels_last") != "channels_last":
                raise UnsupportedModel("channels_first Cropping2D")
            return ("crop", int(top), int(bottom), int(left), int(right))
        if kind == "Concatenate":
            return ("concat", int(c.get("axis", -1)))
        if kind == "AveragePooling2D":
            pool = tuple(c["pool_size"])
            strides = tuple(c.get("strides") or pool)
            if c.get("padding") != "valid" or c.get("data_format", "channels_last") != "channels_last":
                raise UnsupportedModel("AveragePooling2D other than valid, channels_last")
            return ("avgpool", pool, strides)
        act = c.get("activation", "linear")
        if act not in _ACTIVATIONS:
            raise UnsupportedModel(f"activation {act}")
        kernel = var(0)
        bias = var(1) if c.get("use_bias", True) else np.zeros(kernel.shape[-1], np.float32)
        if kind == "Dense":
            if kernel.ndim != 2 or bias.shape != (kernel.shape[1],) or kernel.shape[1] != c["units"]:
                raise UnsupportedModel(f"Dense {lay['name']} weights {list(kernel.shape)}")
            return ("dense", kernel, bias, act)
        # Conv2D
        if c.get("data_format", "channels_last") != "channels_last" or tuple(c.get("dilation_rate", (1, 1))) != (1, 1) \
                or c.get("groups", 1) != 1 or c.get("padding") not in ("same", "valid") or act == "softmax":
            raise UnsupportedModel(f"Conv2D {lay['name']} options")
        if kernel.ndim != 4 or tuple(kernel.shape[:2]) != tuple(c["kernel_size"]) or kernel.shape[3] != c["filters"]:
            raise UnsupportedModel(f"Conv2D {lay['name']} weights {list(kernel.shape)}")
        return ("conv", kernel, bias, tuple(c["strides"]), c["padding"], act)

    # -- forward pass
    def _node(self, i: int, vals: dict[int, tuple[np.ndarray, int]]) -> tuple[np.ndarray, int]:
        """Op ``i`` on the outputs ``vals`` of the ops it reads."""
        if self.ops[i][0] != "concat":
            return self._apply(i, *vals[self.srcs[i][0]])
        parts = [vals[s][0] for s in self.srcs[i]]
        if any(p.ndim != 2 for p in parts) or self.ops[i][1] not in (-1, 1):
            raise UnsupportedModel("Concatenate other than of vectors")
        return np.concatenate(parts, axis=1), 0

    def _apply(self, i: int, x: np.ndarray, T: int) -> tuple[np.ndarray, int]:
        """Op ``i`` on ``x`` whose rows [0, T) are computed (later rows: the blank map's)."""
        op = self.ops[i]
        kind = op[0]
        if kind == "crop":
            _, top, bottom, left, right = op
            H, W = self.shapes[i][:2]
            rows = min(T, H - bottom) - top
            if rows < 1:  # nothing drawn below the cut: one blank row stands for all
                blank = self.blank[i][:, top:top + 1, left:W - right]  # type: ignore[index]
                return np.repeat(blank, x.shape[0], axis=0), 1
            return x[:, top:top + rows, left:W - right], rows
        if kind == "rescale":
            return x.astype(np.float32) * op[1] + op[2], T
        if kind == "conv":
            return self._conv(i, x, T)
        if x.ndim == 4 and T < self.shapes[i][0]:  # pooling and dense layers see every row
            blank = self.blank[i][:, T:]  # type: ignore[index]
            x = np.concatenate([x, np.broadcast_to(blank, (x.shape[0],) + blank.shape[1:])], axis=1)
        if kind == "avgpool":
            if x.ndim != 4:
                raise UnsupportedModel("pooling after flatten")
            (ph, pw), (sh, sw) = op[1], op[2]
            oh, ow = (x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1
            acc = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=np.float32)
            for dy in range(ph):
                for dx in range(pw):
                    acc += x[:, dy:dy + sh * (oh - 1) + 1:sh, dx:dx + sw * (ow - 1) + 1:sw]
            return acc / np.float32(ph * pw), oh
        if kind == "flatten":
            return x.reshape(x.shape[0], -1), 0
        # dense
        if x.ndim != 2 or x.shape[1] != op[1].shape[0]:
            raise UnsupportedModel(f"Dense input of shape {list(x.shape[1:])}")
        y = x @ op[1]
        y += op[2]
        return _activate(y, op[3]), 0

    def _conv(self, i: int, x: np.ndarray, T: int, activation: Optional[str] = None,
              raw: bool = False) -> tuple[np.ndarray, int]:
        """Conv2D op ``i`` on rows [0, T) of its input (later rows: the blank map's). With
        ``raw``, ``x`` is the uint8 image and ``i`` the Conv2D of ``fused_ops``."""
        _, kernel, bias, (sh, sw), padding, act = self.ops[i]
        act = activation or act
        kh, kw, cin, cout = kernel.shape
        H, W, C = self.shapes[i]
        if C != cin:
            raise UnsupportedModel(f"Conv2D kernel for {cin} channels on {C}")
        if padding == "same":
            oh, top, _ = _same_padding(H, kh, sh)
            ow, left, right = _same_padding(W, kw, sw)
        else:
            oh, top, ow, left, right = (H - kh) // sh + 1, 0, (W - kw) // sw + 1, 0, 0
        # output rows r >= ceil((T + top) / sh) read only rows >= T (blank) or padding
        t_out = oh if T >= H else min(oh, -(-(T + top) // sh))
        lo, hi = -top, (t_out - 1) * sh - top + kh  # input rows the computed outputs read
        n = x.shape[0]
        slab = self._scratch(("slab", i), (n, hi - lo, W + left + right, C), np.uint8 if raw else np.float32)
        slab.fill(0)
        a = min(T, hi)
        slab[:, -lo:-lo + a, left:left + W] = x[:, :a]
        if hi > T and T < H and not raw:
            b = min(hi, H)
            slab[:, T - lo:b - lo, left:left + W] = self.blank[i][:, T:b]  # type: ignore[index]
        s0, s1, s2, s3 = slab.strides
        patches = np.lib.stride_tricks.as_strided(slab, (n, t_out, ow, kh, kw, C), (s0, s1 * sh, s2 * sw, s1, s2, s3))
        cols = self._scratch(("cols", i), patches.shape, np.float32)
        np.copyto(cols, patches)  # im2col (and uint8 -> float32 for a raw image) in one pass
        cols2 = cols.reshape(n * t_out * ow, kh * kw * C)
        y = self._scratch(("out", i), (n * t_out * ow, cout), np.float32)
        if raw:
            scaled, pre = self.fused  # type: ignore[misc]
            np.matmul(cols2, scaled, out=y)
            y4 = y.reshape(n, t_out, ow, cout)
            y4 += pre[:, :t_out]
        else:
            np.matmul(cols2, kernel.reshape(kh * kw * C, cout), out=y)
            y += bias
        return _activate(y, act).reshape(n, t_out, ow, cout), t_out

    def predict(self, images) -> np.ndarray:
        """Softmax outputs (float32) for uint8 images (N x H x W x C, or a list of H x W x C).

        Examples are grouped by drawn height (rows above the all-zero bottom), CHUNK at a
        time, and only those rows are copied into each group's input."""
        n = len(images)
        h, w, c = self.input_shape
        height = np.ones(n, dtype=np.int64)
        for k, img in enumerate(images):
            if tuple(img.shape) != self.input_shape:
                raise ValueError(f"image of shape {list(img.shape)}, model takes {list(self.input_shape)}")
            rows = np.flatnonzero(img.reshape(h, -1).max(axis=1))
            if rows.size:
                height[k] = rows[-1] + 1
        order = np.argsort(height, kind="stable")
        out = np.empty((n, self.num_outputs), dtype=np.float32)
        with self._lock:  # one predict at a time per model: they share the scratch buffers
            for a in range(0, n, CHUNK):
                self._chunk(images, height, order[a:a + CHUNK], out)
        return out

    def _chunk(self, images, height: np.ndarray, idx: np.ndarray, out: np.ndarray) -> None:
        """Forward pass of the examples ``idx`` (drawn rows only) into ``out[idx]``."""
        _, w, c = self.input_shape
        T = int(height[idx].max())
        x = self._scratch("x", (idx.size, T, w, c), np.uint8)
        x.fill(0)
        for j, k in enumerate(idx.tolist()):
            x[j, :height[k]] = images[k][:height[k]]
        vals: dict[int, tuple[np.ndarray, int]] = {-1: (x, T)}
        rescale, conv = self.fused_ops
        for i in range(len(self.ops)):
            if i == conv:
                vals[i] = self._conv(i, x, T, raw=True)
            elif i != rescale:
                vals[i] = self._node(i, vals)
        out[idx] = vals[len(self.ops) - 1][0]


# ---------------------------------------------------------------- models
@dataclass
class _Engine:
    name: str  # numpy / keras
    input_shape: tuple[int, ...]
    predict: Callable[[list[np.ndarray]], np.ndarray]  # a list of H x W x C images -> N x 3


_ENGINES: dict[tuple[str, str, int], _Engine] = {}  # per process: (path, engine, mtime) -> engine


def load_engine(path: str | Path, engine: str = "auto") -> _Engine:
    """The model at ``path`` behind ``engine`` (auto / numpy / keras), cached per process."""
    p = require_keras_model(path, "model")
    key = (str(p.resolve()), engine, p.stat().st_mtime_ns)
    if key in _ENGINES:
        return _ENGINES[key]
    eng: Optional[_Engine] = None
    if engine in ("auto", "numpy"):
        try:
            net = NumpyCNN.load(p)
            eng = _Engine("numpy", net.input_shape, net.predict)
        except UnsupportedModel as e:
            if engine == "numpy":
                raise InputError(p, f"the numpy engine cannot run this model: {e} (use engine keras)") from None
    if eng is None:
        from .model import load_model  # imports the Keras backend

        model = load_model(p)
        eng = _Engine("keras", tuple(model.input_shape[1:]), lambda x: np.asarray(model.predict_on_batch(np.stack(x))))
    _ENGINES[key] = eng
    return eng


# ---------------------------------------------------------------- reading and inference
@dataclass(frozen=True)
class Prediction:
    """One example's model output and what postprocess needs of it."""

    chrom: str
    start: int
    ref: str
    alts: tuple[str, ...]
    sub: tuple[int, ...]  # the example's alt indices (0-based)
    probs: tuple[float, float, float]  # P(0 copies), P(1), P(2) of the example's alt(s)
    counts: Optional[tuple[int, ...]]  # dvtrain/allele_counts: depth, ref reads, alt reads


def call_counts(variant: bytes | memoryview, sub: tuple[int, ...]) -> Optional[tuple[int, int, int]]:
    """(depth, ref reads, reads of the alts in ``sub``) from the DP and AD of the one
    VariantCall DeepVariant's make_examples stores in ``variant/encoded``; None without."""
    calls = variant_calls(variant)
    info = calls[0]["info"] if len(calls) == 1 else {}
    dp, ad = info.get("DP") or [], info.get("AD") or []
    if len(dp) != 1 or not isinstance(dp[0], int) or len(ad) < 2 or any(i + 1 >= len(ad) for i in sub):
        return None
    return dp[0], int(ad[0]), sum(int(ad[i + 1]) for i in sub)


def _examples(path: Path, shape: tuple[int, ...]) -> Iterator[tuple[np.ndarray, tuple]]:
    size = math.prod(shape)
    for rec in read_tfrecords(path):
        try:
            ex = feature_lists(rec)
            image = ex.get("image/encoded")
            variant = ex.get("variant/encoded")
            if image is None or variant is None or image[0] != 1 or variant[0] != 1:
                raise InputError(path, "example without image/encoded or variant/encoded")
            have = tuple(int_values(ex["image/shape"][1])) if "image/shape" in ex else ()
            if have != shape:
                raise ShapeMismatchError(path, f"image shape {list(have)} does not fit the model ({list(shape)})")
            img = np.frombuffer(bytes_values(image[1])[0], dtype=np.uint8)
            if img.size != size:
                raise InputError(path, f"image/encoded holds {img.size} bytes, not {list(shape)}")
            var_bytes = bytes(bytes_values(variant[1])[0])
            var = decode_variant(var_bytes)
            sub = tuple(decode_alt_allele_indices(bytes(bytes_values(ex["alt_allele_indices/encoded"][1])[0]))) \
                if "alt_allele_indices/encoded" in ex else (0,)
            # dvtrain's own counts, else (DeepVariant's examples) the VariantCall's DP and AD
            counts = tuple(int_values(ex["dvtrain/allele_counts"][1])) if "dvtrain/allele_counts" in ex \
                else call_counts(var_bytes, sub) or ()
        except (ValueError, IndexError, UnicodeDecodeError) as e:
            raise InputError(path, f"a record is not a tf.train.Example ({e})") from None
        yield img.reshape(shape), (var["reference_name"], int(var["start"]), var["reference_bases"],
                                   tuple(var["alternate_bases"]), sub, counts or None)


def predict_shard(path: str | Path, checkpoint: str | Path, engine: str = "auto", batch_size: int = 64) -> list[Prediction]:
    """Every example of one shard through the model, in file order."""
    eng = load_engine(checkpoint, engine)
    out: list[Prediction] = []
    images: list[np.ndarray] = []
    metas: list[tuple] = []

    def flush() -> None:
        probs = np.asarray(eng.predict(images), dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != 3:
            raise InputError(checkpoint, f"model outputs {list(probs.shape[1:])} values per example, not 3")
        for pr, (chrom, start, ref, alts, sub, counts) in zip(probs.tolist(), metas):
            out.append(Prediction(chrom, start, ref, alts, sub, (pr[0], pr[1], pr[2]), counts))
        images.clear()
        metas.clear()

    for img, meta in _examples(Path(path), tuple(eng.input_shape)):
        images.append(img)
        metas.append(meta)
        if len(images) == batch_size:
            flush()
    if images:
        flush()
    return out


def _worker(path: str, checkpoint: str, engine: str, batch_size: int):
    """predict_shard in a worker process; a DvtrainError comes back as data (its
    constructor takes two arguments, which pickling an exception does not keep)."""
    try:
        return "ok", predict_shard(path, checkpoint, engine, batch_size)
    except DvtrainError as e:
        return "error", (type(e).__name__, getattr(e, "path", path), getattr(e, "problem", str(e)))


_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Processes started inside inherit one-thread BLAS settings (read at NumPy import)."""
    old = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: "1" for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_inference(paths: list[Path], checkpoint: str | Path, engine: str, batch_size: int,
                  threads: int) -> tuple[list[Prediction], str]:
    """Predictions of every shard, in shard order, and the engine used. The numpy engine
    spreads shards over ``threads`` spawned processes."""
    import multiprocessing as mp

    eng = load_engine(checkpoint, engine)  # fails fast on a bad model; decides the engine
    workers = min(threads, len(paths))
    if eng.name != "numpy" or workers < 2 or mp.current_process().daemon:
        return [p for path in paths for p in predict_shard(path, checkpoint, engine, batch_size)], eng.name
    from concurrent.futures import ProcessPoolExecutor

    with _single_threaded_children(), \
            ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_worker, str(path), str(checkpoint), "numpy", batch_size) for path in paths]
        results = [f.result() for f in futures]
    preds: list[Prediction] = []
    for status, value in results:
        if status == "error":
            kind, where, problem = value
            raise (ShapeMismatchError if kind == "ShapeMismatchError" else InputError)(where, problem)
        preds += value
    return preds, eng.name
