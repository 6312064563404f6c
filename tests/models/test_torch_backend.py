"""The torch backend: precision and memory-format paths, device checks, threads that take effect."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import get
from pipeline.models.inference import PoseNetRunner
from pipeline.models.torch_backend import TorchNetwork

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # fixture in tests/models/conftest.py


@pytest.fixture(scope="module")
def runner_at_photo_scale(model_dir, photo):
    """The torch backend, fp32, resizing nothing for ``photo`` (target height = its height)."""
    return PoseNetRunner("omz-lightweight", model_dir=model_dir, target_height=photo.shape[0], backend="torch")


@pytest.mark.parametrize("options", [{"channels_last": True}, {"precision": "bf16"}])
def test_channels_last_and_bf16_paths_agree_with_fp32(model_dir, photo, runner_at_photo_scale, options):
    """The memory-format and autocast code paths (used on CUDA) run on CPU too and stay at the INT8
    rounding-noise level of fp32 (measured on this photo: channels_last max 0.023, mean 0.0002;
    bf16 max 0.12, mean 0.0005)."""
    ref = runner_at_photo_scale([photo])[0]
    out = PoseNetRunner("omz-lightweight", model_dir=model_dir, target_height=photo.shape[0], backend="torch",
                        **options)([photo])[0]
    for a, b in ((out.heatmaps, ref.heatmaps), (out.pafs, ref.pafs)):
        assert np.abs(a - b).max() < 0.2 and np.abs(a - b).mean() < 0.003


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        PoseNetRunner("omz-lightweight", device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="fp16.*CUDA"):
        TorchNetwork(get("omz-lightweight"), device="cpu", precision="fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_gpu_is_refused():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        PoseNetRunner("omz-lightweight", device="cuda")


def test_num_threads_sets_torch_threads(model_dir):
    before = torch.get_num_threads()
    try:
        runner = PoseNetRunner("omz-lightweight", model_dir=model_dir, backend="torch", num_threads=2)
        assert torch.get_num_threads() == 2 and runner.backend == "torch"
    finally:
        torch.set_num_threads(before)


def test_uint8_canvases_are_normalised_on_the_device_as_numpy_does(model_dir, media_dir):
    """The uint8 hand-off: canvases through TorchNetwork give exactly the maps of the numpy
    preprocessing's float32 inputs (device_maps keeps them on the device, as the GPU path does)."""
    import cv2

    from pipeline.models.preprocessing import normalize, preprocess

    entry = get("omz-lightweight")
    img = cv2.imread(str(media_dir / "images" / "p1.jpg"))
    canvases = np.stack([p.pixels for p in preprocess([img, img[:, ::-1].copy()], entry.preprocessing)])
    assert canvases.dtype == np.uint8 and canvases.shape[3] == 3
    net = TorchNetwork(entry, model_dir=model_dir)
    heat, paf = net.device_maps(canvases)
    assert isinstance(heat, torch.Tensor) and heat.device.type == "cpu" and heat.shape[1] == 19
    ref = net(normalize(canvases, entry.preprocessing))
    np.testing.assert_array_equal(heat.numpy(), ref[0])
    np.testing.assert_array_equal(paf.numpy(), ref[1])
    with pytest.raises(ValueError, match="uint8 \\[N, H, W, 3\\] canvases or float32"):
        net(canvases.astype(np.float64))
