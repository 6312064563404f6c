"""posepipe's default network on local Ray over real photos and a real video (small subset)."""
from __future__ import annotations

import os

import numpy as np

import pipeline
from pipeline.job import build_spec, run_job


def test_real_model_on_sample_media(job_ray, media_dir, tmp_path):
    images = [media_dir / "images" / n for n in ("p1.jpg", "valid_person1.jpg", "cat.jpg")]
    video = media_dir / "video" / "mmpose-demo-5frames.mp4"
    out = tmp_path / "out"
    spec = build_spec({"input": [str(p) for p in images] + [str(video)], "output": str(out),
                       "images_per_shard": 2, "frames_per_shard": 3, "batch_size": 2, "progress": False})
    summary = run_job(spec)
    assert summary.status == "complete", pipeline.read_errors(out)
    frames = pipeline.read_frames(out)
    per = {os.path.basename(u): g for u, g in frames.groupby("source_uri")}
    assert set(per) == {"p1.jpg", "valid_person1.jpg", "cat.jpg", "mmpose-demo-5frames.mp4"}
    assert per["cat.jpg"].num_people.item() == 0, "cat.jpg has no person"
    assert per["p1.jpg"].num_people.item() >= 1 and per["valid_person1.jpg"].num_people.item() >= 1
    vid = per["mmpose-demo-5frames.mp4"].sort_values("frame_index")
    assert list(vid.frame_index) == [0, 1, 2, 3, 4] and (vid.width == 960).all() and (vid.height == 540).all()
    assert np.all(np.diff(vid.timestamp_s.to_numpy()) > 0)

    poses = pipeline.read_poses(out)
    assert len(poses) == frames.num_people.sum() == summary.people
    kp = pipeline.keypoints_array(poses)
    sizes = frames.set_index(["source_uri", "frame_index"])[["width", "height"]]
    for k, (uri, fi) in zip(kp, zip(poses.source_uri, poses.frame_index)):
        w, h = sizes.loc[(uri, fi)]
        found = k[:, 2] > 0
        assert found.sum() >= 4 and np.isnan(k[~found, :2]).all()
        assert (k[found, 0] >= -1).all() and (k[found, 0] <= w).all() and (k[found, 1] <= h).all()
    # Video people in confirmed tracks carry track ids and the tracks table summarises them.
    vp = poses[poses.source_uri.str.endswith(".mp4")]
    tracked = vp[vp.track_id.notna()]
    assert len(tracked) >= len(vp) // 2 and poses[~poses.source_uri.str.endswith(".mp4")].track_id.isna().all()
    tracks = pipeline.read_tracks(out)
    assert set(tracks.track_id) == set(tracked.track_id.astype(int))
    assert tracks.length.sum() == len(tracked)
