"""OpenVINO IR (an .xml graph and its .bin weights) rebuilt as an ONNX graph for ONNX Runtime.

Only the operations of the face models facegate ships are read (Intel's
face-reidentification-retail-0095: convolutions, grouped convolutions, PReLU, average pooling,
sigmoid gates, elementwise sums and products): any other operation is refused by name rather
than guessed. Constants are stored as float16 in the .bin and become float32 initialisers; the
OpenVINO runtime itself is not needed. The build is deterministic and pinned like the dlib ports.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from facegate.errors import ModelIntegrityError
from facegate.vision.onnx_fold import dynamic_batch, rewrite_prelu

_DTYPES = {"f16": np.float16, "f32": np.float32, "i64": np.int64, "i32": np.int32}
_ELEMENTWISE = {"Add": "Add", "Multiply": "Mul", "Sigmoid": "Sigmoid"}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.replace(" ", "").split(",") if x]


def ir_to_onnx(
    xml_text: bytes, weights: bytes, input_name: str = "data", *, blocked: bool = True
) -> onnx.ModelProto:
    """The IR graph as an ONNX model with one input (`input_name`, NCHW float) and one output
    (`blocked`: see `onnx_fold.rewrite_prelu`)."""
    root = ET.fromstring(xml_text)
    layers = {int(layer.get("id", "-1")): layer for layer in root.iter("layer")}
    feeds: dict[tuple[int, int], tuple[int, int]] = {}  # (to layer, to port) -> (from layer, from port)
    for e in root.iter("edge"):
        feeds[(int(e.get("to-layer", "-1")), int(e.get("to-port", "-1")))] = (
            int(e.get("from-layer", "-1")),
            int(e.get("from-port", "-1")),
        )
    inputs_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (to, _port), src in sorted(feeds.items()):  # ports in order: inputs in order
        inputs_of[to].append(src)
    consts: dict[int, np.ndarray] = {}
    nodes: list[onnx.NodeProto] = []
    initialisers: dict[str, np.ndarray] = {}
    graph_in: list[onnx.ValueInfoProto] = []
    graph_out: list[onnx.ValueInfoProto] = []

    def name(layer_id: int) -> str:
        return input_name if layers[layer_id].get("type") == "Parameter" else f"t{layer_id}"

    def operand(src: tuple[int, int], shape: tuple[int, ...] | None = None) -> str:
        lid = src[0]
        if lid in consts:
            value = consts[lid].astype(np.float32)
            if shape is not None:
                value = value.reshape(shape)
            key = f"c{lid}" if shape is None else f"c{lid}_{'x'.join(map(str, shape))}"
            initialisers[key] = value
            return key
        return name(lid)

    for lid in sorted(layers):  # OpenVINO numbers layers in a topological order
        layer = layers[lid]
        kind = layer.get("type", "")
        data = layer.find("data")
        attrs = dict(data.attrib) if data is not None else {}
        srcs = inputs_of.get(lid, [])
        out = name(lid)
        if kind == "Parameter":
            dims = _ints(attrs["shape"])
            graph_in.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, dims))
        elif kind == "Const":
            dtype = _DTYPES.get(attrs.get("element_type", ""))
            if dtype is None:
                raise ModelIntegrityError(f"IR constant of type {attrs.get('element_type')} is not supported")
            offset, size = int(attrs["offset"]), int(attrs["size"])
            if offset + size > len(weights):
                raise ModelIntegrityError("IR weights file is shorter than its graph says: truncated")
            shape = _ints(attrs.get("shape", "")) or [1]
            consts[lid] = np.frombuffer(weights[offset : offset + size], dtype).reshape(shape)
        elif kind == "Convert" and srcs[0][0] in consts:
            consts[lid] = consts[srcs[0][0]].astype(np.float32)
        elif kind in _ELEMENTWISE:
            nodes.append(helper.make_node(_ELEMENTWISE[kind], [operand(s) for s in srcs], [out]))
        elif kind in ("Convolution", "GroupConvolution"):
            w = consts[srcs[1][0]].astype(np.float32)
            group = 1
            if kind == "GroupConvolution":  # [groups, out/groups, in/groups, kh, kw] -> ONNX's grouped layout
                group = w.shape[0]
                w = w.reshape(w.shape[0] * w.shape[1], *w.shape[2:])
            initialisers[f"w{lid}"] = w
            if attrs.get("auto_pad", "explicit") != "explicit":
                raise ModelIntegrityError(f"IR convolution {layer.get('name')}: auto_pad is not supported")
            nodes.append(
                helper.make_node(
                    "Conv",
                    [operand(srcs[0]), f"w{lid}"],
                    [out],
                    strides=_ints(attrs["strides"]),
                    dilations=_ints(attrs["dilations"]),
                    pads=_ints(attrs["pads_begin"]) + _ints(attrs["pads_end"]),
                    group=group,
                )
            )
        elif kind == "PReLU":
            slope = consts[srcs[1][0]].astype(np.float32).reshape(-1)
            per_channel: tuple[int, ...] = (slope.size, 1, 1) if slope.size > 1 else (1,)
            nodes.append(helper.make_node("PRelu", [operand(srcs[0]), operand(srcs[1], per_channel)], [out]))
        elif kind == "AvgPool":
            nodes.append(
                helper.make_node(
                    "AveragePool",
                    [operand(srcs[0])],
                    [out],
                    kernel_shape=_ints(attrs["kernel"]),
                    strides=_ints(attrs["strides"]),
                    pads=_ints(attrs["pads_begin"]) + _ints(attrs["pads_end"]),
                    count_include_pad=0 if attrs.get("exclude-pad", "true") == "true" else 1,
                    ceil_mode=1 if attrs.get("rounding_type", "floor") == "ceil" else 0,
                )
            )
        elif kind == "Result":
            result_port = layer.find("input/port")
            dims = [int(d.text or 0) for d in result_port.iter("dim")] if result_port is not None else []
            graph_out.append(helper.make_tensor_value_info(operand(srcs[0]), TensorProto.FLOAT, dims))
        else:
            raise ModelIntegrityError(f"IR operation {kind} ({layer.get('name')}) is not supported")
    if len(graph_in) != 1 or len(graph_out) != 1:
        raise ModelIntegrityError("an IR face model needs exactly one input and one output")
    graph = helper.make_graph(
        nodes,
        "ir",
        graph_in,
        graph_out,
        [numpy_helper.from_array(v, k) for k, v in sorted(initialisers.items())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="facegate")
    model.ir_version = 8
    rewrite_prelu(model, blocked=blocked)
    dynamic_batch(model)
    onnx.checker.check_model(model)
    return model
