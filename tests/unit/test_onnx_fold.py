"""PRelu rewritten for ONNX Runtime's blocked layout: the same numbers, no layout conversions."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from facegate.vision.onnx_fold import rewrite_prelu


def _net(shared_slope: bool) -> onnx.ModelProto:
    """conv -> PRelu -> conv -> PRelu -> flatten -> gemm -> PRelu (2-D): a face model's shape."""
    rng = np.random.default_rng(3)
    c = 16
    slope = (
        np.array([0.25], np.float32)
        if shared_slope
        else rng.uniform(-0.2, 1.5, c).astype(np.float32).reshape(c, 1, 1)
    )
    inits = [
        numpy_helper.from_array(rng.standard_normal((c, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((c, c, 3, 3)).astype(np.float32) / 8, "w2"),
        numpy_helper.from_array(slope, "s1"),
        numpy_helper.from_array(slope.copy(), "s2"),
        numpy_helper.from_array(rng.standard_normal((8, c * 8 * 8)).astype(np.float32) / 30, "fc"),
        numpy_helper.from_array(np.array([0.1], np.float32), "s3"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["a", "s1"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["c", "s2"], ["d"]),
        helper.make_node("Flatten", ["d"], ["e"]),
        helper.make_node("Gemm", ["e", "fc"], ["f"], transB=1),
        helper.make_node("PRelu", ["f", "s3"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, x: np.ndarray, optimised: Path | None = None) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if optimised is not None:
        opts.optimized_model_filepath = str(optimised)
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out: np.ndarray = sess.run(None, {"x": x})[0]
    return out


def _conversions(model: onnx.ModelProto, x: np.ndarray, path: Path) -> int:
    _run(model, x, path)
    ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    return ops["ReorderInput"] + ops["ReorderOutput"]


def test_rewritten_prelu_gives_the_same_outputs() -> None:
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32) * 3
    for shared in (False, True):
        native = _net(shared)
        want = _run(native, x)
        for blocked in (True, False):
            model = _net(shared)
            rewrite_prelu(model, blocked=blocked)
            ops = collections.Counter(n.op_type for n in model.graph.node)
            assert ops["PRelu"] == 0
            # Blocked: the two 4-D PRelus become two depthwise convolutions each; the 2-D one
            # after the Gemm keeps the elementwise form (one Relu and one Sub).
            assert ops["Conv"] == (2 + 4 if blocked else 2)
            assert ops["Sub"] == (1 if blocked else 3)
            np.testing.assert_allclose(_run(model, x), want, rtol=1e-5, atol=1e-5)
            onnx.checker.check_model(model)


def test_blocked_prelu_leaves_no_layout_conversion_inside(tmp_path: Path) -> None:
    x = np.ones((1, 3, 8, 8), np.float32)
    elementwise, blocked = _net(False), _net(False)
    rewrite_prelu(elementwise, blocked=False)
    rewrite_prelu(blocked)
    before = _conversions(elementwise, x, tmp_path / "elementwise.onnx")
    after = _conversions(blocked, x, tmp_path / "blocked.onnx")
    if before == 0:  # a CPU without the blocked kernels (no AVX2): nothing to convert either way
        assert after == 0
        return
    # One conversion into the blocked layout at the input and one out of it before Flatten.
    assert after <= 2 < before
