"""posepipe render: poses drawn onto a PyAV-written video and onto images, read back and checked."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import tables
from pipeline.cli import main
from pipeline.testing import walking_person
from pipeline.video.drawing import DRAWN_LIMBS, track_colour

from .conftest import write_video

W, H, N = 320, 240, 8


def _people(frame):
    """Two tracks: id 0 walking right, id 1 walking left (neck positions in pixels)."""
    return {0: walking_person((60 + 10 * frame, 60), 150), 1: walking_person((260 - 10 * frame, 70), 140)}


def _write_poses(path, source_uri, frames):
    rows = [(f, tid, kp) for f in frames for tid, kp in _people(f).items()]
    n = len(rows)
    kps = np.stack([kp for _, _, kp in rows]).astype(np.float32).reshape(n, 54)
    cols = {
        "source_uri": [source_uri] * n, "source_id": ["abc"] * n,
        "frame_index": [f for f, _, _ in rows], "timestamp_s": [f / 10 for f, _, _ in rows],
        "person_index": [i % 2 for i in range(n)], "track_id": [t for _, t, _ in rows],
        "score": [0.9] * n, "bbox": np.zeros((n, 4), np.float32), "keypoints": kps,
        "num_keypoints": [18] * n, "model_id": ["m"] * n, "config_id": ["c"] * n,
        "shard_id": ["s"] * n,
    }
    pq.write_table(tables.from_columns("poses", cols), path)


def _limb_colour_checks(image, frame):
    """Every drawn limb's midpoint is nearer its own track colour than the other's."""
    people = _people(frame)
    for tid, kp in people.items():
        other = next(t for t in people if t != tid)
        for a, b in DRAWN_LIMBS[:12]:  # body limbs (long enough to sample mid-line)
            mid = np.round((kp[a, :2] + kp[b, :2]) / 2).astype(int)
            pix = image[mid[1], mid[0]].astype(float)
            own = np.abs(pix - track_colour(tid)).sum()
            assert own < np.abs(pix - track_colour(other)).sum() and own < 200, (tid, a, b, pix)


def test_render_video_to_mp4_draws_tracks_and_keeps_timestamps(tmp_path):
    video = write_video(tmp_path / "black.mp4", [np.zeros((H, W, 3), np.uint8)] * N)
    table = tmp_path / "poses.parquet"
    _write_poses(table, str(video), frames=range(0, N, 2))  # every 2nd frame has poses
    out = tmp_path / "out" / "rendered.mp4"
    assert main(["render", "--poses", str(table), "--video", str(video), "--output", str(out)]) == 0
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        decoded = [(float(f.pts * s.time_base), f.to_ndarray(format="bgr24")) for f in c.decode(s)]
    assert [round(t, 6) for t, _ in decoded] == [i / 10 for i in range(N)]
    for i, (_, image) in enumerate(decoded):
        if i % 2 == 0:
            _limb_colour_checks(image, i)
            assert image[H - 5:, :40].max() < 30  # far from everyone: still black
        else:
            assert image.max() < 30  # no poses on this frame: untouched


def test_render_video_to_frame_images_and_source_uri_mismatch(tmp_path, capsys):
    video = write_video(tmp_path / "black.mp4", [np.zeros((H, W, 3), np.uint8)] * N)
    table = tmp_path / "poses.parquet"
    _write_poses(table, "file://" + str(video), frames=range(N))
    out = tmp_path / "frames"
    assert main(["render", "--poses", str(table), "--video", str(video), "--output", str(out),
                 "--start", "2", "--stop", "5"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["frame_000002.jpg", "frame_000003.jpg", "frame_000004.jpg"]
    _limb_colour_checks(cv2.imread(str(out / "frame_000003.jpg")), 3)
    assert main(["render", "--poses", str(table), "--video", str(video), "--output", str(out),
                 "--source-uri", "s3://elsewhere/x.mp4"]) == 2
    assert "no rows" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    _write_poses(table, str(tmp_path / "junk.mp4"), frames=[0])
    assert main(["render", "--poses", str(table), "--video", str(tmp_path / "junk.mp4"),
                 "--output", str(tmp_path / "x.mp4")]) == 2
    assert "junk.mp4: not a readable media file" in capsys.readouterr().err


def test_render_images_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((H, W, 3), np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.full((H, W, 3), 255, np.uint8))
    table = tmp_path / "poses.parquet"
    _write_poses(table, str(folder / "a.png"), frames=[0])
    out = tmp_path / "out"
    assert main(["render", "--poses", str(table), "--images", str(folder), "--output", str(out)]) == 0
    _limb_colour_checks(cv2.imread(str(out / "a.png")), 0)
    assert (cv2.imread(str(out / "b.png")) == 255).all()  # no poses for b: unchanged


def test_render_reads_a_job_output_folder(tmp_path):
    # A job output holds each table as a Delta Lake table (<output>/poses/_delta_log/...); the
    # deltalake package writes one here as any Delta writer would.
    from deltalake import write_deltalake

    video = write_video(tmp_path / "black.mp4", [np.zeros((H, W, 3), np.uint8)] * 3)
    _write_poses(tmp_path / "full.parquet", str(video), frames=range(3))
    table = pq.read_table(tmp_path / "full.parquet")
    delta_types = pa.schema([f.with_type(pa.list_(f.type.value_type)) if pa.types.is_fixed_size_list(f.type) else f
                             for f in table.schema])
    write_deltalake(str(tmp_path / "job" / "poses"), table.cast(delta_types))
    out = tmp_path / "frames"
    assert main(["render", "--poses", str(tmp_path / "job"), "--video", str(video),
                 "--output", str(out)]) == 0
    _limb_colour_checks(cv2.imread(str(out / "frame_000001.jpg")), 1)
