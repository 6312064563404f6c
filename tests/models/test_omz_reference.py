"""The PyTorch port of OMZ human-pose-estimation-0001 reproduces Intel's OpenVINO runtime.

Reference: tests/data/reference/omz_reference.npz, made once by make_omz_reference.py with
OpenVINO 2026.4 (CPU plugin, f32 inference precision) on two real photos: the IR's native
1x3x256x456 input and a reshaped 1x3x184x320 one. The INT8 model is discontinuous (rounding to u8
codes), so float noise flips a few codes and the maps cannot agree bit for bit. Layer by layer,
fed OpenVINO's own f32 inputs, each layer matches exactly apart from rare single-code flips
(<= 0.01 % of values; checked while porting with OpenVINO's intermediate outputs);
end to end, measured here: max |error| 0.047 (native) / 0.073 (reshaped), mean 0.00036 / 0.00072
over all 57 channels, the same size as the port's own change under 1e-3 pixel input noise
(max 0.075 / 0.063, mean 0.00039 / 0.00074). Without the activation quantisation the error is
4x larger (mean 0.0016, max 0.14 / 0.16), so the bounds below would fail. Across 1/2/4 torch
threads and channels_last on/off (different convolution algorithms) the figures stayed within
max 0.0415-0.0752, mean 0.00036-0.00072.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models import fetch_files, get, load_model
from pipeline.models.lightweight_openpose import BIN_NAME, XML_NAME, from_ir
from pipeline.models.loaders.openvino_ir import read_ir

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in tests/models/conftest.py

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "omz_reference.npz"
MAX_ABS_BOUND = 0.12     # measured 0.047 / 0.073
MEAN_ABS_BOUND = 0.001   # measured 0.00036 / 0.00072


@pytest.fixture(scope="module")
def reference():
    return np.load(REFERENCE)


@pytest.fixture(scope="module")
def graph(model_dir):
    files = fetch_files(get("omz-lightweight"), model_dir)
    return read_ir(files[XML_NAME], files[BIN_NAME], source=XML_NAME)


def _run(net, pixels: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    with torch.inference_mode():
        heat, pafs = net(x)
    return torch.cat([heat, pafs], 1)[0].numpy()


def _ref(reference, case: str) -> np.ndarray:
    return np.concatenate([reference[f"{case}_heatmaps"], reference[f"{case}_pafs"]]).astype(np.float32)


@pytest.mark.parametrize("case", ["native", "reshaped"])
def test_matches_openvino_runtime(reference, model_dir, case):
    net = load_model("omz-lightweight", model_dir)
    out = _run(net, reference[f"{case}_input"])
    ref = _ref(reference, case)
    assert out.shape == ref.shape
    err = np.abs(out - ref)
    assert err.max() < MAX_ABS_BOUND, f"max abs error {err.max():.4f} vs OpenVINO"
    assert err.mean() < MEAN_ABS_BOUND, f"mean abs error {err.mean():.5f} vs OpenVINO"
    # every part's strongest response sits in the same cell as OpenVINO's (native case: 18/18 parts;
    # the reshaped ski photo has two near-equal peaks in one channel, so allow one miss there)
    same = sum(np.unravel_index(out[c].argmax(), out[c].shape) == np.unravel_index(ref[c].argmax(), ref[c].shape)
               for c in range(18))
    assert same >= (18 if case == "native" else 17)


def test_activation_quantisation_is_needed(reference, graph):
    """The float network without the INT8 activation rounding is measurably further from OpenVINO."""
    ref = _ref(reference, "native")
    err_q = np.abs(_run(from_ir(graph), reference["native_input"]) - ref).mean()
    err_f = np.abs(_run(from_ir(graph, activation_quant=False), reference["native_input"]) - ref).mean()
    assert err_f > 2.5 * err_q, (err_q, err_f)


def test_architecture_matches_ir(graph):
    net = from_ir(graph)
    assert sum(p.numel() for p in net.parameters()) == 4_099_058  # OMZ model card: 4.1 M parameters
    assert len(graph.of_type("Convolution", "GroupConvolution")) == 58
    # the IR's input normalisation (x/255 - 0.502, i.e. (x - 128) / 255) is inside the module
    assert float(net.input_scale) == pytest.approx(1 / 255, rel=1e-3)
    assert net.input_shift.flatten().tolist() == pytest.approx([-128 / 255] * 3, abs=1e-3)
