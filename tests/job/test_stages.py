"""The network stage on real photos: the decode stage hands it uint8 canvases (1 byte per value),
and finding candidates next to the network (what CUDA actors do; CPU torch here) gives the same
people as the host path on the same shard."""
from __future__ import annotations

import shutil

import numpy as np

from pipeline.job.decode import decode_shard
from pipeline.job.listing import list_sources
from pipeline.job.shards import image_shards
from pipeline.job.stages import NetworkStage, default_preparer
from pipeline.parsing import ParseConfig, assemble

PHOTOS = ("p1.jpg", "ski.jpg", "apink3.jpg", "COCO_val2014_000000000357.jpg")


def test_decoded_shard_carries_uint8_canvases_and_device_candidates_match(media_dir, model_dir, tmp_path):
    for name in PHOTOS:
        shutil.copy(media_dir / "images" / name, tmp_path / name)
    sources, errors = list_sources([str(tmp_path)])
    assert not errors and len(sources) == len(PHOTOS)
    (shard,) = image_shards(sources, 8, "omz", "cfg")
    decoded = decode_shard(shard, prepare=default_preparer("omz-lightweight", (1.0,), False))
    assert not decoded.errors and decoded.images == []
    for p in decoded.passes[0]:  # the hand-off: resized uint8 canvases, a quarter of float32's bytes
        wp, hp = p.placement.input_size
        assert p.pixels.dtype == np.uint8 and p.pixels.shape == (hp, wp, 3) and hp == 368
    config = ParseConfig()
    kwargs = {"model_name": "omz-lightweight", "model_dir": model_dir, "backend": "torch", "num_threads": 1}
    on_device = NetworkStage(None, {**kwargs, "candidates_on_device": True}, config)(decoded)
    on_host = NetworkStage(None, {**kwargs, "candidates_on_device": False}, config)(decoded)
    assert [f.source_uri for f in on_device.frames] == [f.source_uri for f in on_host.frames]
    people = 0
    for fm, d, h, p in zip(on_device.frames, on_device.candidates, on_host.candidates, decoded.passes[0]):
        a, b = assemble(d, config), assemble(h, config)
        assert len(a) == len(b), fm.source_uri
        cell_px = 8 * p.placement.image_size[1] / p.placement.resized_size[1]
        np.testing.assert_allclose(a.keypoints[..., :2], b.keypoints[..., :2], atol=0.01 * cell_px)
        people += len(a)
    assert people >= 8 and not on_device.errors and not on_host.errors
