"""A reader for dlib's serialized DNN files, enough for the face ResNet and the MMOD detector.

dlib writes a network by recursion: the loss layer, then every wrapper's version number from
the output side inwards, then the input layer, then each layer's body from the input side
outwards. Tag/skip ids and other template arguments are not stored, so the reader is driven
by the network's C++ type, mirrored here as a spec (`face_resnet_spec`, `mmod_spec`).

Encodings (dlib/serialize.h): integers are a control byte (low nibble: byte count, 0x80:
negative) then little-endian magnitude bytes; floats are an int64 mantissa then an int16
exponent (value = mantissa * 2**exponent); bools are '1'/'0'; strings are a length then
bytes; tensors are a version (2), n, k, nr, nc, then float32 little-endian values (NCHW).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facegate.errors import ModelIntegrityError


class DlibFormatError(ModelIntegrityError):
    code = "model_format"


class Reader:
    def __init__(self, data: bytes, name: str = "model") -> None:
        self.data = data
        self.pos = 0
        self.name = name

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} at byte {self.pos}", file=self.name)

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"file ends early (wanted {n} more bytes): truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self, signed: bool = True) -> int:
        ctrl = self.raw(1)[0]
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        value = int.from_bytes(self.raw(size), "little")
        if ctrl & 0x80:
            if not signed:
                raise self.fail("negative value where an unsigned one belongs")
            value = -value
        return value

    def real(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in special:
            return special[exponent]
        return math.ldexp(float(mantissa), exponent)

    def boolean(self) -> bool:
        c = self.raw(1)
        if c not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {c!r}")
        return c == b"1"

    def string(self) -> str:
        n = self.integer(signed=False)
        if n > 256:
            raise self.fail(f"implausible string length {n}")
        return self.raw(n).decode("latin-1")

    def tensor(self) -> np.ndarray:
        if (v := self.integer()) != 2:
            raise self.fail(f"tensor version {v}, expected 2")
        shape = tuple(self.integer() for _ in range(4))
        if any(s < 0 for s in shape):
            raise self.fail(f"bad tensor shape {shape}")
        count = math.prod(shape)
        return np.frombuffer(self.raw(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, ...]:
        if (v := self.integer()) != 1:
            raise self.fail(f"alias tensor version {v}, expected 1")
        return tuple(self.integer() for _ in range(4))


def _read_con(r: Reader, ver: str, d: dict[str, Any]) -> None:
    params = r.tensor().reshape(-1)
    d["type"] = "con"
    d["num_filters"], d["nr"], d["nc"] = r.integer(), r.integer(), r.integer()
    d["stride_y"], d["stride_x"] = r.integer(), r.integer()
    d["padding_y"], d["padding_x"] = r.integer(), r.integer()
    fshape = r.alias_shape()
    r.alias_shape()  # biases
    for _ in range(4):
        r.real()  # learning-rate and weight-decay multipliers
    use_bias = r.boolean() if ver != "con_4" else True
    d["use_relu"] = r.boolean() if ver == "con_6" else False
    nf = math.prod(fshape)
    d["filters"] = params[:nf].reshape(fshape)
    d["biases"] = params[nf : nf + d["num_filters"]].copy() if use_bias else None
    if params.size != nf + (d["num_filters"] if use_bias else 0):
        raise r.fail("convolution parameters do not match their shapes")


def _read_affine(r: Reader, ver: str, d: dict[str, Any]) -> None:
    params = r.tensor().reshape(-1)
    gshape = r.alias_shape()
    r.alias_shape()
    d["type"] = "affine"
    d["mode"] = "conv" if r.integer() == 0 else "fc"
    d["disabled"] = r.boolean() if ver == "affine_2" else False
    g = math.prod(gshape)
    d["gamma"], d["beta"] = params[:g].reshape(gshape), params[g : 2 * g].reshape(gshape)


def _read_batch_norm(r: Reader, ver: str, d: dict[str, Any]) -> None:
    # A batch-norm layer stored where dlib's inference net has an affine layer: dlib folds
    # the running statistics into gamma/beta on load, in float32; so do we.
    params = r.tensor().reshape(-1)
    gshape = r.alias_shape()
    r.alias_shape()
    for _ in range(2):
        r.tensor()  # batch means and inverse stds (training only)
    running_means, running_vars = r.tensor().reshape(gshape), r.tensor().reshape(gshape)
    r.integer(signed=False)
    r.integer(signed=False)
    for _ in range(4):
        r.real()
    eps = np.float32(r.real())
    g = math.prod(gshape)
    gamma, beta = params[:g].reshape(gshape), params[g : 2 * g].reshape(gshape)
    scale = (gamma / np.sqrt(running_vars + eps)).astype(np.float32)
    d.update(
        type="affine",
        mode="conv" if ver == "bn_con2" else "fc",
        disabled=False,
        gamma=scale,
        beta=(beta - scale * running_means).astype(np.float32),
    )


def _read_relu(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "relu"
    d["disabled"] = r.boolean() if ver == "relu_2" else False


def _read_pool(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "max_pool" if ver.startswith("max") else "avg_pool"
    d["nr"], d["nc"] = r.integer(), r.integer()
    d["stride_y"], d["stride_x"] = r.integer(), r.integer()
    d["padding_y"], d["padding_x"] = r.integer(), r.integer()


def _read_add_prev(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "add_prev"


def _read_fc(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "fc"
    n_out, n_in = r.integer(signed=False), r.integer(signed=False)
    params = r.tensor().reshape(-1)
    r.alias_shape()
    r.alias_shape()
    no_bias = r.integer() == 1
    for _ in range(4):
        r.real()
    use_bias = (r.boolean() if ver == "fc_3" else True) and not no_bias
    d["weights"] = params[: n_in * n_out].reshape(n_in, n_out)  # input-major
    d["biases"] = params[n_in * n_out : n_in * n_out + n_out].copy() if use_bias else None
    d["num_outputs"] = n_out


def _read_input(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "input_pyramid" if "pyramid" in ver else "input_sized"
    d["mean"] = (r.real(), r.real(), r.real())
    if ver == "input_rgb_image_sized":
        d["nr"], d["nc"] = r.integer(signed=False), r.integer(signed=False)
    elif ver == "input_rgb_image_pyramid2":
        d["padding"], d["outer_padding"] = r.integer(signed=False), r.integer(signed=False)
    else:
        d["padding"], d["outer_padding"] = 10, 11  # defaults of the older format


def _read_loss_metric(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "loss_metric"
    if ver == "loss_metric_2":
        r.real()
        r.real()


def _read_loss_mmod(r: Reader, ver: str, d: dict[str, Any]) -> None:
    d["type"] = "loss_mmod"
    d.update(_read_mmod_options(r))


# Each layer version dlib writes, and the reader of its body.
_LAYER_READERS: dict[str, Callable[[Reader, str, dict[str, Any]], None]] = {
    **dict.fromkeys(("con_4", "con_5", "con_6"), _read_con),
    **dict.fromkeys(("affine_", "affine_2"), _read_affine),
    **dict.fromkeys(("bn_con2", "bn_fc2"), _read_batch_norm),
    **dict.fromkeys(("relu_", "relu_2"), _read_relu),
    **dict.fromkeys(("max_pool_2", "avg_pool_2"), _read_pool),
    "add_prev_": _read_add_prev,
    **dict.fromkeys(("fc_2", "fc_3"), _read_fc),
    **dict.fromkeys(
        ("input_rgb_image_sized", "input_rgb_image_pyramid", "input_rgb_image_pyramid2"), _read_input
    ),
    **dict.fromkeys(("loss_metric_", "loss_metric_2"), _read_loss_metric),
    "loss_mmod_": _read_loss_mmod,
}


def _read_layer(r: Reader) -> dict[str, Any]:
    """One layer's body, keyed on its version string."""
    ver = r.string()
    reader = _LAYER_READERS.get(ver)
    if reader is None:
        raise r.fail(f"unknown layer {ver!r}")
    d: dict[str, Any] = {"version": ver}
    reader(r, ver, d)
    return d


def _read_mmod_options(r: Reader) -> dict[str, Any]:
    version = r.integer()
    if not 1 <= version <= 4:
        raise r.fail(f"MMOD options version {version}")
    if version == 1:
        windows = [(r.integer(signed=False), r.integer(signed=False))]
    else:
        windows = []
        for _ in range(r.integer(signed=False)):
            wv = r.integer()
            windows.append((r.integer(signed=False), r.integer(signed=False)))
            if wv == 2:
                r.string()
    for _ in range(3):
        r.real()  # training losses and truth-match IoU
    nms_iou, nms_covered = r.real(), r.real()
    r.real()
    r.real()
    if version >= 3:
        r.raw(1)
    if version >= 4:
        r.boolean()
        r.real()
    return {"windows": windows, "nms_iou": nms_iou, "nms_covered": nms_covered}


# --- network specs: the C++ types, as nested tuples ----------------------------------------------

Spec = tuple[Any, ...]


def _layer(kind: str, sub: Spec, **params: int) -> Spec:
    return ("layer", kind, params, sub)


def _con(n: int, k: int, stride: int, sub: Spec) -> Spec:
    pad = 0 if stride != 1 else k // 2  # dlib's default padding
    return _layer(
        "con", sub, num_filters=n, nr=k, nc=k, stride_y=stride, stride_x=stride, padding_y=pad, padding_x=pad
    )


def _pool(kind: str, k: int, stride: int, sub: Spec) -> Spec:
    pad = 0 if stride != 1 else k // 2
    return _layer(kind, sub, nr=k, nc=k, stride_y=stride, stride_x=stride, padding_y=pad, padding_x=pad)


def face_resnet_spec() -> Spec:
    """dlib's `anet_type` (tools/python/src/face_recognition.cpp)."""

    def block(n: int, stride: int, sub: Spec) -> Spec:
        return _layer("affine", _con(n, 3, 1, _layer("relu", _layer("affine", _con(n, 3, stride, sub)))))

    def ares(n: int, sub: Spec) -> Spec:
        return _layer("relu", _layer("add_prev", block(n, 1, ("tag", 1, sub)), tag=1))

    def ares_down(n: int, sub: Spec) -> Spec:
        inner = _pool("avg_pool", 2, 2, ("skip", 1, ("tag", 2, block(n, 2, ("tag", 1, sub)))))
        return _layer("relu", _layer("add_prev", inner, tag=2))

    net: Spec = ("input", "input_sized")
    net = _pool("max_pool", 3, 2, _layer("relu", _layer("affine", _con(32, 7, 2, net))))
    for _ in range(3):
        net = ares(32, net)
    for n, extra in ((64, 3), (128, 2), (256, 2)):
        net = ares_down(n, net)
        for _ in range(extra):
            net = ares(n, net)
    net = ares_down(256, net)
    net = _layer("fc", _pool("avg_pool", 0, 1, net), num_outputs=128)
    return ("loss", "loss_metric", net)


def mmod_spec() -> Spec:
    """dlib's MMOD face detector `net_type` (tools/python/src/cnn_face_detector.cpp)."""
    net: Spec = ("input", "input_pyramid")
    for n in (16, 32, 32):
        net = _layer("relu", _layer("affine", _con(n, 5, 2, net)))
    for _ in range(3):
        net = _layer("relu", _layer("affine", _con(45, 5, 1, net)))
    return ("loss", "loss_mmod", _con(1, 9, 1, net))


@dataclass
class Node:
    kind: str  # "layer", "tag", "skip" or "input"
    details: dict[str, Any] = field(default_factory=dict)
    tag: int = 0


@dataclass
class Net:
    loss: dict[str, Any]
    nodes: list[Node]  # forward order: nodes[0] is the input layer

    @property
    def input(self) -> dict[str, Any]:
        return self.nodes[0].details


def parse(data: bytes, spec: Spec, name: str = "model") -> Net:
    """Read a whole dlib network file; every byte must be accounted for."""
    r = Reader(data, name)
    if r.integer() != 1:
        raise r.fail("not a dlib network file (loss layer version)")
    loss = _read_layer(r)
    if loss["type"] != spec[1]:
        raise r.fail(f"expected a {spec[1]} network, found {loss['type']}")
    chain: list[Spec] = []
    s = spec[2]
    while s[0] != "input":
        chain.append(s)
        s = s[-1]
    input_kind = s[1]
    versions = [r.integer() for _ in chain]  # outermost first
    for w, v in zip(chain, versions, strict=True):
        if (w[0] == "layer" and not 1 <= v <= 3) or (w[0] != "layer" and v != 1):
            raise r.fail(f"unexpected {w[0]} wrapper version {v}: not the network facegate expects")
    first = _read_layer(r)
    if first["type"] != input_kind:
        raise r.fail(f"expected input layer {input_kind}, found {first['type']}")
    nodes = [Node("input", first)]
    for i in range(len(chain) - 1, -1, -1):
        s, v = chain[i], versions[i]
        if s[0] != "layer":
            nodes.append(Node(s[0], tag=s[1]))
            continue
        d = _read_layer(r)
        if d["type"] != s[1]:
            raise r.fail(f"expected a {s[1]} layer, found {d['type']}")
        for key, want in s[2].items():
            if key != "tag" and key in d and d[key] != want:
                raise r.fail(f"{s[1]} layer has {key}={d[key]}, the network needs {want}")
        d["tag"] = s[2].get("tag", 0)
        for _ in range(3):
            r.boolean()
        for _ in range(2):
            r.tensor()  # gradient and cached output: empty in a saved inference net
        touches_input = i == len(chain) - 1
        if touches_input or v == 2:
            r.tensor()
        if touches_input and v >= 3:
            r.integer(signed=False)
        nodes.append(Node("layer", d))
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the network")
    return Net(loss, nodes)
