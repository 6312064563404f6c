"""The paper's CMU VGG-19 network and its two public weight formats.

The real weights (non-commercial, 200 MB) are not available here, so the loaders are tested on
files generated below in the exact formats with random values: a pytorch-openpose style
``body_pose_model.pth`` state dict and a Caffe ``.caffemodel`` written with a hand-made protobuf
wire-format encoder (independent of posepipe's reader) plus a deploy ``.prototxt`` in CMU's style.
"""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import torch

import pipeline.models as models
from pipeline.models.cmu_vgg19 import CmuVgg19PafNet, load_body_pose_pth, load_caffe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ---- the published layout, written out independently of pipeline/models/cmu_vgg19.py -------------
# (block, layer name, in, out, kernel), as in pytorch-openpose's bodypose_model / CMU's prototxt.
VGG = [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
       ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
       ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3_CPM", 512, 256), ("conv4_4_CPM", 256, 128)]
POOL_AFTER = {"conv1_2": "pool1_stage1", "conv2_2": "pool2_stage1", "conv3_4": "pool3_stage1"}


def layout():
    layers = [("model0", n, i, o, 3) for n, i, o in VGG]
    for L, out in ((1, 38), (2, 19)):
        layers += [(f"model1_{L}", f"conv5_{k}_CPM_L{L}", i, o, ks) for k, (i, o, ks) in
                   enumerate([(128, 128, 3), (128, 128, 3), (128, 128, 3), (128, 512, 1), (512, out, 1)], 1)]
    for s in range(2, 7):
        for L, out in ((1, 38), (2, 19)):
            layers += [(f"model{s}_{L}", f"Mconv{k}_stage{s}_L{L}", i, o, ks) for k, (i, o, ks) in
                       enumerate([(185, 128, 7)] + [(128, 128, 7)] * 4 + [(128, 128, 1), (128, out, 1)], 1)]
    return layers


@pytest.fixture(scope="module")
def random_weights():
    """{layer name: (weight [O, I, k, k], bias [O])} float32, small random values; the last heatmap
    conv is set to weight 0 / bias 0.5 so the output layout can be told apart."""
    g = torch.Generator().manual_seed(0)
    w = {}
    for _, name, i, o, k in layout():
        w[name] = ((torch.randn(o, i, k, k, generator=g) * (2.0 / (i * k * k)) ** 0.5),
                   torch.randn(o, generator=g) * 0.01)
    w["Mconv7_stage6_L2"] = (torch.zeros(19, 128, 1, 1), torch.full((19,), 0.5))
    return w


def test_architecture_size_and_output_layout():
    net = CmuVgg19PafNet()
    assert sum(p.numel() for p in net.parameters()) == 52_311_446  # CMU COCO model
    assert [k for k in net.state_dict()][:2] == ["model0.conv1_1.weight", "model0.conv1_1.bias"]
    assert sorted(net.state_dict()) == sorted(f"{b}.{n}.{p}" for b, n, *_ in layout() for p in ("weight", "bias"))
    with torch.no_grad():
        hm, paf = net(torch.zeros(2, 3, 64, 80))
    assert hm.shape == (2, 19, 8, 10) and paf.shape == (2, 38, 8, 10)


def test_loads_body_pose_model_pth(random_weights):
    state = {}
    for name, (w, b) in random_weights.items():  # pytorch-openpose files have no "modelX." prefix
        state[f"{name}.weight"], state[f"{name}.bias"] = w, b
    buf = io.BytesIO()
    torch.save(state, buf)
    net = load_body_pose_pth(buf.getvalue()).eval()
    loaded = net.state_dict()
    for block, name, *_ in layout():
        assert torch.equal(loaded[f"{block}.{name}.weight"], random_weights[name][0])
        assert torch.equal(loaded[f"{block}.{name}.bias"], random_weights[name][1])
    with torch.no_grad():
        hm, paf = net(torch.rand(1, 3, 48, 64) - 0.5)
    assert torch.equal(hm, torch.full_like(hm, 0.5))  # heatmaps come from the L2 branch
    assert paf.shape == (1, 38, 6, 8) and paf.std() > 0

    del state["Mconv3_stage4_L1.bias"]
    buf = io.BytesIO()
    torch.save(state, buf)
    with pytest.raises(ValueError, match="Mconv3_stage4_L1.bias"):
        load_body_pose_pth(buf.getvalue())


# ---- Caffe: protobuf wire format by hand ---------------------------------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:  # length-delimited (wire type 2)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def int_field(number: int, value: int) -> bytes:  # varint (wire type 0)
    return varint(number << 3) + varint(value)


def blob(arr: np.ndarray, legacy_4d: bool = False) -> bytes:
    data = field(5, arr.astype("<f4").tobytes())  # packed repeated float data = 5
    if legacy_4d:  # old-style num/channels/height/width = 1..4
        dims = [1] * (4 - arr.ndim) + list(arr.shape)
        return b"".join(int_field(i + 1, d) for i, d in enumerate(dims)) + data
    return field(7, field(1, b"".join(varint(d) for d in arr.shape))) + data  # BlobShape packed dims


def layer(name: str, type_: str, bottom: list[str], top: str, blobs: list[bytes] = ()) -> bytes:
    msg = field(1, name.encode()) + field(2, type_.encode())
    msg += b"".join(field(3, b.encode()) for b in bottom) + field(4, top.encode())
    msg += field(6, struct.pack("<Bf", 0x0D, 1.0))  # ParamSpec {lr_mult: 1} -- unknown to the reader
    msg += int_field(10, 1)  # phase: TEST -- unknown to the reader
    return field(100, msg + b"".join(field(7, b) for b in blobs))


def caffe_files(weights) -> tuple[bytes, str]:
    """(caffemodel bytes, deploy prototxt text) in CMU's pose_deploy_linevec style."""
    net = field(1, b"PAF-COCO")
    proto = ['input: "image"', "input_dim: 1", "input_dim: 3", "input_dim: 368", "input_dim: 368"]
    prev = {"model0": "image"}
    for block, name, i, o, k in layout():
        stage = block[5] if block != "model0" else None
        if stage and f"{block}_in" not in prev:
            prev[f"{block}_in"] = "conv4_4_CPM" if stage == "1" else f"concat_stage{stage}"
            if stage != "1" and block.endswith("_1"):
                tops = [f"{'conv5_5_CPM' if stage == '2' else f'Mconv7_stage{int(stage) - 1}'}_L{L}" for L in (1, 2)]
                net += layer(f"concat_stage{stage}", "Concat", tops + ["conv4_4_CPM"], f"concat_stage{stage}")
                proto.append(f'layer {{ name: "concat_stage{stage}" type: "Concat" '
                             + " ".join(f'bottom: "{t}"' for t in tops + ["conv4_4_CPM"])
                             + f' top: "concat_stage{stage}" concat_param {{ axis: 1 }} }}')
        bottom = prev.get(block, prev.get(f"{block}_in"))
        w, b = (t.numpy() for t in weights[name])
        net += layer(name, "Convolution", [bottom], name, [blob(w), blob(b, legacy_4d=name == "conv1_1")])
        proto.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
                     f'param {{ lr_mult: 1.0 decay_mult: 1 }} param {{ lr_mult: 2.0 decay_mult: 0 }} '
                     f'convolution_param {{ num_output: {o} pad: {k // 2} kernel_size: {k} '
                     f'weight_filler {{ type: "gaussian" std: 0.01 }} bias_filler {{ type: "constant" }} }} }}')
        prev[block] = name
        if name in POOL_AFTER:
            net += layer(POOL_AFTER[name], "Pooling", [name], POOL_AFTER[name])
            proto.append(f'layer {{ name: "{POOL_AFTER[name]}" type: "Pooling" bottom: "{name}" '
                         f'top: "{POOL_AFTER[name]}" pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}')
            prev[block] = POOL_AFTER[name]
    return net, "\n".join(proto)


def test_loads_caffemodel_and_prototxt(random_weights):
    caffemodel, prototxt = caffe_files(random_weights)
    net = load_caffe(caffemodel, prototxt)
    loaded = net.state_dict()
    for block, name, *_ in layout():
        assert torch.equal(loaded[f"{block}.{name}.weight"], random_weights[name][0])
        assert torch.equal(loaded[f"{block}.{name}.bias"], random_weights[name][1])

    bad = prototxt.replace('name: "Mconv2_stage3_L2" type: "Convolution" bottom: "Mconv1_stage3_L2" '
                           'top: "Mconv2_stage3_L2" param { lr_mult: 1.0 decay_mult: 1 } '
                           'param { lr_mult: 2.0 decay_mult: 0 } convolution_param { num_output: 128 pad: 3 kernel_size: 7',
                           'name: "Mconv2_stage3_L2" type: "Convolution" bottom: "Mconv1_stage3_L2" '
                           'top: "Mconv2_stage3_L2" param { lr_mult: 1.0 decay_mult: 1 } '
                           'param { lr_mult: 2.0 decay_mult: 0 } convolution_param { num_output: 128 pad: 2 kernel_size: 5')
    assert bad != prototxt
    with pytest.raises(ValueError, match="Mconv2_stage3_L2"):
        load_caffe(caffemodel, bad)
    with pytest.raises(ValueError, match="Caffe"):
        load_caffe(b"\xff\xff\xff garbage")


def test_registry_entry_and_missing_weights_error(model_dir):
    entry = models.get("cmu-vgg19-coco")
    p = entry.preprocessing
    assert (p.color, p.mean, p.scale, p.target_height, p.pad_value) == ("BGR", (128.0,) * 3, 1 / 256, 368, 128.0)
    assert entry.published_ap == 58.4 and "non-commercial" in entry.license
    assert not (model_dir / entry.folder).exists()
    with pytest.raises(models.WeightsError, match="body_pose_model.pth"):
        models.load_model("cmu-vgg19-coco", model_dir=model_dir)
