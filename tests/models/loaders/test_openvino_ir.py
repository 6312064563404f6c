"""The OpenVINO IR reader and the activation fake-quantiser, on the real OMZ IR and small inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import fetch_files, get
from pipeline.models.lightweight_openpose import BIN_NAME, XML_NAME, ActivationFakeQuantize, from_ir
from pipeline.models.loaders.openvino_ir import FakeQuantizeParams, IRFormatError, fake_quantize, read_ir


@pytest.fixture(scope="module")
def files(model_dir):
    return fetch_files(get("omz-lightweight"), model_dir)


def test_weights_are_dequantised_u8(files):
    g = read_ir(files[XML_NAME], files[BIN_NAME])
    conv = g.layer("conv1")
    fq = g.producer(conv, 1)
    assert fq.type == "FakeQuantize" and fq.attrs["levels"] == "255"
    raw = g.constant(g.producer(g.producer(fq, 0), 0))
    assert raw.dtype == np.uint8  # the stored codes
    w = g.constant(fq)
    p = g.fake_quantize_params(fq)
    # every dequantised weight is one of 255 evenly spaced values per output channel
    step = (p.output_high - p.output_low).reshape(-1) / 254
    codes = (w.reshape(32, -1) - p.output_low.reshape(32, 1)) / step[:, None]
    np.testing.assert_allclose(codes, raw.reshape(32, -1).astype(np.float32), atol=1e-3)


def test_malformed_files_are_named(files):
    with pytest.raises(IRFormatError, match="not a valid IR .xml"):
        read_ir(b"<net", files[BIN_NAME], source="broken.xml")
    with pytest.raises(IRFormatError, match="expected <net version"):
        read_ir(b'<net version="7"><layers/><edges/></net>', b"", source="old.xml")
    g = read_ir(files[XML_NAME], files[BIN_NAME][:1000], source="short.bin")
    with pytest.raises(IRFormatError, match="do not belong together"):
        from_ir(g)


def test_fake_quantize_matches_openvino_formula():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (2, 3, 4, 5)).astype(np.float32)
    low = np.array([-1.0, 0.0, -0.3], np.float32).reshape(1, 3, 1, 1)
    high = np.array([1.5, 2.0, 0.3], np.float32).reshape(1, 3, 1, 1)
    ref = fake_quantize(x, FakeQuantizeParams(low, high, low, high, 256))  # opset1 definition
    q = ActivationFakeQuantize()
    q.set_range(low, high, 256, out_low=low, out_high=high)
    np.testing.assert_allclose(q(torch.from_numpy(x)).numpy(), ref, atol=1e-6)
    # default: integer zero point -> the same grid shifted by -FQ(0), so 0 maps to exactly 0
    q.set_range(low, high, 256)
    out = q(torch.from_numpy(x)).numpy()
    zero = fake_quantize(np.zeros_like(low), FakeQuantizeParams(low, high, low, high, 256))
    np.testing.assert_allclose(out, ref - zero, atol=1e-6)
    assert np.all(q(torch.zeros(1, 3, 1, 1)).numpy() == 0)
