"""The network stage on real photos: the decode stage hands it uint8 canvases (1 byte per value),
and finding candidates next to the network (what CUDA actors do; CPU torch here) gives the same
people as the host path on the same shard. The commit stage: shards committed together."""
from __future__ import annotations

import shutil

import numpy as np

from pipeline import testing as standin
from pipeline.job.decode import decode_shard
from pipeline.job.listing import list_sources
from pipeline.job.rows import RowContext
from pipeline.job.shards import image_shards
from pipeline.job.sink import DeltaSink
from pipeline.job.stages import NetworkStage, assemble_rows, commit_rows, default_preparer
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


def test_shards_committed_together_give_exact_rows_in_one_commit_per_table(tmp_path):
    """Group commit (commit_rows, what the job's CommitActor runs): three shards' rows in one
    commit per table hold exactly each input's skeletons; committing them again changes nothing."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    truth = {f"img{i:02d}.png": standin.write_image(folder / f"img{i:02d}.png", i, size=(160, 120)) for i in range(6)}
    sources, _ = list_sources([str(folder)])
    config, ctx = ParseConfig(), RowContext("standin@0", "cfg")
    sink = DeltaSink(str(out))
    sink.open(ctx.model_id, ctx.config_id)
    stage = NetworkStage(standin.RenderedRunner, {}, config)
    batch = [assemble_rows(stage(decode_shard(shard)), ctx, config) for shard in image_shards(sources, 2, "m", "c")]
    assert len(batch) == 3
    before = {name: sink.table(name).version() for name in ("poses", "frames", "shard_log")}
    results = commit_rows(sink, batch)
    assert [r.status for r in results] == ["done"] * 3 and sum(r.frames for r in results) == 6
    assert {name: sink.table(name).version() - v for name, v in before.items()} == {"poses": 1, "frames": 1,
                                                                                     "shard_log": 1}
    standin.assert_exact_tables(out, truth)
    assert sink.done_shards() == {r.shard_id for r in batch}
    commit_rows(sink, batch)  # idempotent
    standin.assert_exact_tables(out, truth)
