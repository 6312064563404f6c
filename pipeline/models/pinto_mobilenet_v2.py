"""PINTO0309's MobileNet-v2 (width 1.4) PAF network, weight-quantised TFLite, as a torch module.

Entry "pinto-mobilenet-v2-dm14". The flatbuffer is read with the pure-Python ``tflite`` accessors
and its INT8 weights are dequantised to float32 at load time (no TFLite runtime). The graph has a
fixed input of 432x368 (WxH; its one ResizeBilinear has a constant 54x46 output size); output
concat_stage7 = 19 heatmaps then 38 PAFs in the ``pipeline.skeleton.PAF_CHANNELS`` layout.
"""
from __future__ import annotations

from typing import Mapping

from pipeline.models.catalog import PINTO_TFLITE_NAME
from pipeline.models.graph_module import PafGraphNetwork
from pipeline.models.loaders.tflite_flatbuffer import parse_tflite


def build_pinto(files: Mapping[str, bytes]) -> PafGraphNetwork:
    """Torch module from the PINTO flatbuffer: float32 [N, 3, 368, 432] raw BGR 0-255 ->
    (heatmaps [N, 19, 46, 54], pafs [N, 38, 46, 54])."""
    return PafGraphNetwork(parse_tflite(files[PINTO_TFLITE_NAME]))

