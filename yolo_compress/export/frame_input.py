"""Give an exported graph the camera's bytes as input: uint8 [B,H,W,3] BGR `frames` instead of float `images`.

On the robot, turning a resized BGR frame into float RGB planes in numpy costs as much as the resize
itself (a strided, channel-reversing copy and a multiply over 300k values). Inside the graph the work
mostly disappears: BGR->RGB and the 1/255 scale are folded into the first conv's weights (exact, since
the conv is linear and pads with zeros), and what is left, a uint8->float Cast and an NHWC->NCHW
Transpose, runs in ONNX Runtime's vectorized kernels (and on the GPU, uploads a quarter of the bytes).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from yolo_compress.runtime.contract import FRAMES_INPUT, IMAGES_INPUT


def take_frames(proto: onnx.ModelProto) -> onnx.ModelProto:
    """`proto` (input `images`, read only by one Conv with constant weights) rewritten in place to read
    `frames`; returns it."""
    graph = proto.graph
    weight = _first_conv_weight(graph)
    folded = numpy_helper.to_array(weight)[:, ::-1] * np.float32(1 / 255)  # RGB weights -> BGR 0..255 input
    weight.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(folded, dtype=np.float32), weight.name))
    images = next(i for i in graph.input if i.name == IMAGES_INPUT)
    batch, _, height, width = images.type.tensor_type.shape.dim
    frames = helper.make_tensor_value_info(FRAMES_INPUT, TensorProto.UINT8,
                                           [batch.dim_param or batch.dim_value, height.dim_value, width.dim_value, 3])
    graph.input.remove(images)
    graph.input.insert(0, frames)
    graph.node.insert(0, helper.make_node("Transpose", ["frames_float"], [IMAGES_INPUT], perm=[0, 3, 1, 2],
                                          name="frames/Transpose"))
    graph.node.insert(0, helper.make_node("Cast", [FRAMES_INPUT], ["frames_float"], to=TensorProto.FLOAT,
                                          name="frames/Cast"))
    return proto


def frames_to_images(frames: np.ndarray) -> np.ndarray:
    """The float `images` batch (RGB planes, 0..1) that a `frames` graph computes from uint8 BGR `frames`:
    what the torch model is fed to check such a graph."""
    return np.ascontiguousarray(frames[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)


def _first_conv_weight(graph: onnx.GraphProto) -> onnx.TensorProto:
    """The weight of the only consumer of `images`, which must be a Conv reading 3 channels; the conv keeps
    reading `images`, from then on the Transpose's output."""
    consumers = [node for node in graph.node if IMAGES_INPUT in node.input]
    initializers = {t.name: t for t in graph.initializer}
    if len(consumers) != 1 or consumers[0].op_type != "Conv" or consumers[0].input[1] not in initializers:
        kinds = [node.op_type for node in consumers]
        raise ValueError(f"'{IMAGES_INPUT}' must feed exactly one Conv with constant weights, feeds {kinds}")
    weight = initializers[consumers[0].input[1]]
    if len(weight.dims) != 4 or weight.dims[1] != 3:
        raise ValueError(f"the first conv's weight has shape {list(weight.dims)}, expected [O,3,kH,kW]")
    return weight
