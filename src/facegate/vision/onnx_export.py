"""Rebuild dlib's networks as ONNX graphs, layer for layer, from the parsed dlib files.

The graphs reproduce dlib's arithmetic: cross-correlation convolutions with dlib's padding,
per-channel affine layers, pools without padding, and dlib's residual addition, which adds
tensors of different shapes by padding the smaller one with zeros at the end. The ResNet
graph also applies dlib's input normalisation ((pixel - mean) / 256); the MMOD graph takes the
already normalised image pyramid (built in numpy, see detect_onnx.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facegate.vision.dlib_format import Net

OPSET = 17


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str | None = None, **attrs: Any) -> str:
        out = self.name(prefix or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - k) // stride


def _layers(b: _Builder, net: Net, x: str, shape: list[int] | None) -> tuple[str, list[int] | None]:
    """Emit every layer after the input; `shape` (C, H, W) is tracked when the input is static."""
    tags: dict[int, tuple[str, list[int] | None]] = {}
    for node in net.nodes[1:]:
        if node.kind == "tag":
            tags[node.tag] = (x, shape)
            continue
        if node.kind == "skip":
            x, shape = tags[node.tag]
            continue
        d = node.details
        t = d["type"]
        if t == "con":
            w = b.const("w", d["filters"])
            inputs = [x, w] + ([b.const("b", d["biases"])] if d["biases"] is not None else [])
            py, px = d["padding_y"], d["padding_x"]
            x = b.op(
                "Conv",
                inputs,
                kernel_shape=[d["nr"], d["nc"]],
                strides=[d["stride_y"], d["stride_x"]],
                pads=[py, px, py, px],
            )
            if d["use_relu"]:
                x = b.op("Relu", [x])
            if shape is not None:
                shape = [
                    d["num_filters"],
                    _conv_out(shape[1], d["nr"], d["stride_y"], py),
                    _conv_out(shape[2], d["nc"], d["stride_x"], px),
                ]
        elif t == "affine":
            if d["disabled"]:
                continue
            if d["mode"] != "conv":
                raise NotImplementedError("per-element (fc mode) affine layers")
            c = d["gamma"].size
            x = b.op("Mul", [x, b.const("gamma", d["gamma"].reshape(1, c, 1, 1))])
            x = b.op("Add", [x, b.const("beta", d["beta"].reshape(1, c, 1, 1))])
        elif t == "relu":
            if not d["disabled"]:
                x = b.op("Relu", [x])
        elif t in ("max_pool", "avg_pool"):
            if d["nr"] == 0 and d["nc"] == 0:
                x = b.op("GlobalAveragePool" if t == "avg_pool" else "GlobalMaxPool", [x])
                shape = [shape[0], 1, 1] if shape is not None else None
                continue
            if d["padding_y"] or d["padding_x"]:
                # dlib clips pooling windows at the border (not the same as ONNX's padding).
                raise NotImplementedError("padded pooling layers")
            x = b.op(
                "MaxPool" if t == "max_pool" else "AveragePool",
                [x],
                kernel_shape=[d["nr"], d["nc"]],
                strides=[d["stride_y"], d["stride_x"]],
            )
            if shape is not None:
                shape = [
                    shape[0],
                    _conv_out(shape[1], d["nr"], d["stride_y"], 0),
                    _conv_out(shape[2], d["nc"], d["stride_x"], 0),
                ]
        elif t == "add_prev":
            other, oshape = tags[d["tag"]]
            if shape is None or oshape is None:
                raise NotImplementedError("residual additions need static shapes")
            full = [max(a, c) for a, c in zip(shape, oshape, strict=True)]
            x = b.op("Add", [_pad_to(b, x, shape, full), _pad_to(b, other, oshape, full)])
            shape = full
        elif t == "fc":
            x = b.op("Flatten", [x], axis=1)
            x = b.op("MatMul", [x, b.const("fc", d["weights"])])
            if d["biases"] is not None:
                x = b.op("Add", [x, b.const("fc_b", d["biases"])])
            shape = None
        else:
            raise NotImplementedError(t)
    return x, shape


def _pad_to(b: _Builder, x: str, shape: list[int], full: list[int]) -> str:
    """dlib adds tensors of different sizes as if the smaller had zeros at the end."""
    if shape == full:
        return x
    ends = [0] + [f - s for s, f in zip(shape, full, strict=True)]
    pads = np.array([0, 0, 0, 0, *ends], dtype=np.int64)
    return b.op("Pad", [x, b.const("pads", pads)], mode="constant")


def _model(b: _Builder, inp: onnx.ValueInfoProto, out: onnx.ValueInfoProto, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(b.nodes, name, [inp], [out], b.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="facegate",
        producer_version="1",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def resnet_to_onnx(net: Net) -> onnx.ModelProto:
    """Input `chips`: (N, 150, 150, 3) float32 RGB pixel values 0-255; output `embeddings` (N, 128)."""
    b = _Builder()
    nr, nc = net.input["nr"], net.input["nc"]
    mean = np.array(net.input["mean"], np.float32).reshape(1, 3, 1, 1)
    x = b.op("Transpose", ["chips"], perm=[0, 3, 1, 2])
    x = b.op("Sub", [x, b.const("mean", mean)])
    x = b.op("Mul", [x, b.const("scale", np.array(1 / 256, np.float32))])  # exact: a power of two
    x, _ = _layers(b, net, x, [3, nr, nc])
    b.nodes[-1].output[0] = "embeddings"
    inp = helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["n", nr, nc, 3])
    out = helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["n", 128])
    return _model(b, inp, out, "dlib_face_resnet_v1")


def mmod_to_onnx(net: Net) -> onnx.ModelProto:
    """Input `pyramid`: (1, 3, H, W) normalised tiled pyramid; output `scores` (1, 1, H', W')."""
    b = _Builder()
    _layers(b, net, "pyramid", None)
    b.nodes[-1].output[0] = "scores"
    inp = helper.make_tensor_value_info("pyramid", TensorProto.FLOAT, [1, 3, "h", "w"])
    out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, "oh", "ow"])
    return _model(b, inp, out, "dlib_mmod_face_detector")
