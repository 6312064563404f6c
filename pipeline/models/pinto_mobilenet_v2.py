"""PINTO0309's MobileNet-v2 (width 1.4) PAF network, weight-quantised TFLite, as a torch module.

Entry "pinto-mobilenet-v2-dm14". The flatbuffer is read with the pure-Python ``tflite`` accessors
and its INT8 weights are dequantised to float32 at load time (no TFLite runtime). The graph has a
fixed input of 432x368 (WxH; its one ResizeBilinear has a constant 54x46 output size); output
concat_stage7 = 19 heatmaps then 38 PAFs in the ``pipeline.skeleton.PAF_CHANNELS`` layout.
"""
from __future__ import annotations

from typing import Mapping

from pipeline.models.graph_module import PafGraphNetwork
from pipeline.models.loaders.tflite_flatbuffer import parse_tflite
from pipeline.models.registry import Preprocessing, WeightsEntry, WeightsFile, register

TFLITE_NAME = "mobilenet_v2_pose_dm14_368_432_weight_quant.tflite"


def build_pinto(files: Mapping[str, bytes]) -> PafGraphNetwork:
    """Torch module from the PINTO flatbuffer: float32 [N, 3, 368, 432] raw BGR 0-255 ->
    (heatmaps [N, 19, 46, 54], pafs [N, 38, 46, 54])."""
    return PafGraphNetwork(parse_tflite(files[TFLITE_NAME]))


PINTO_MOBILENET_V2_DM14 = register(WeightsEntry(
    name="pinto-mobilenet-v2-dm14",
    architecture="tfpose_mobilenet_v2_dm14",
    folder="pinto-mobilenet-v2-dm14",
    files=(WeightsFile(TFLITE_NAME, "44ca354020f47ae9976fefbc2febd6410000aa8a059ca750300b2cbbb6d2b7d7"),),
    builder=build_pinto,
    preprocessing=Preprocessing(color="BGR", mean=(0.0, 0.0, 0.0), scale=1.0, input_size=(432, 368),
                                target_height=368, pad_value=0.0, stride=8),
    license="MIT",
    source_url="https://github.com/PINTO0309/MobileNetV2-PoseEstimation",
    published_ap=None,
    ap_note="no COCO AP published upstream",
    batch_independent=True,
    metadata={"params_m": 2.21, "native_input_wh": (432, 368), "backbone": "MobileNet-v2 1.4",
              "weights": "INT8 (per-tensor, symmetric) dequantised to float32 at load time"},
))
