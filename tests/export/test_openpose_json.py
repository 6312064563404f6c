"""openpose-json export of a real job output: OpenPose's --write_json files, read back by pose-format's
OpenPose reader (an independent consumer) and compared with the poses table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline.export import export
from pipeline.export.openpose_json import body25_from_coco18, scale_keypoints
from pipeline.skeleton import KEYPOINTS

OPENPOSE_PERSON_KEYS = ["person_id", "pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                        "hand_right_keypoints_2d", "pose_keypoints_3d", "face_keypoints_3d",
                        "hand_left_keypoints_3d", "hand_right_keypoints_3d"]


@pytest.fixture(scope="module")
def tables(job_output):
    frames = pipeline.read_frames(job_output).sort_values(["source_uri", "frame_index"])
    poses = pipeline.read_poses(job_output).sort_values(["source_uri", "frame_index", "person_index"])
    return frames, poses


@pytest.fixture(scope="module")
def coco18_export(job_output, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("openpose") / "coco18"
    export(job_output, "openpose-json", str(dest))
    return dest


@pytest.fixture(scope="module")
def body25_export(job_output, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("openpose") / "body25"
    export(job_output, "openpose-json", str(dest), layout="body25")
    return dest


def expected_name(uri: str, frame: int, is_video: bool) -> str:
    """OpenPose's names: <stem>_keypoints.json for an image, <stem>_<frame:012d>_keypoints.json per video
    frame, here in a folder per video under the source's folder name (images/, video/)."""
    folder, name = uri.rsplit("/", 2)[-2:]
    stem = name.rsplit(".", 1)[0]
    return f"{folder}/{stem}/{stem}_{frame:012d}_keypoints.json" if is_video else f"{folder}/{stem}_keypoints.json"


def table_people(poses, uri: str, frame: int) -> tuple[np.ndarray, list[int]]:
    rows = poses[(poses.source_uri == uri) & (poses.frame_index == frame)]
    kp = pipeline.keypoints_array(rows).astype(np.float32)
    kp[~(kp[..., 2] > 0)] = 0.0
    tracks = [-1 if v is None or v != v else int(v) for v in rows["track_id"].astype(object)]
    return kp, tracks


def test_one_file_per_frame_in_openpose_layout(coco18_export, tables):
    frames, poses = tables
    written = sorted(str(p.relative_to(coco18_export)) for p in coco18_export.rglob("*_keypoints.json"))
    expected = sorted(expected_name(r.source_uri, r.frame_index, r.timestamp_s == r.timestamp_s)
                      for r in frames.itertuples())
    assert written == expected and len(expected) == 8
    for r in frames.itertuples():
        data = json.loads((coco18_export / expected_name(r.source_uri, r.frame_index,
                                                         r.timestamp_s == r.timestamp_s)).read_text())
        assert list(data) == ["version", "people"] and data["version"] == 1.3
        assert len(data["people"]) == r.num_people
        kp, tracks = table_people(poses, r.source_uri, r.frame_index)
        for person, k, track in zip(data["people"], kp, tracks):
            assert list(person) == OPENPOSE_PERSON_KEYS
            assert person["person_id"] == [track]
            assert all(person[key] == [] for key in OPENPOSE_PERSON_KEYS[2:])
            # float32 values written in their shortest form read back exactly
            np.testing.assert_array_equal(np.asarray(person["pose_keypoints_2d"], np.float32), k.reshape(-1))


def test_frame_with_nobody_has_empty_people(coco18_export, tables):
    frames, _ = tables
    (cat,) = [r for r in frames.itertuples() if r.source_uri.endswith("cat.jpg")]
    assert cat.num_people == 0
    assert json.loads((coco18_export / "images" / "cat_keypoints.json").read_text()) == {"version": 1.3, "people": []}


def test_pose_format_reads_the_video_folder_back(body25_export, tables):
    """pose-format's load_openpose_directory (BODY_25 points by name) gives the table's keypoints."""
    from pose_format.utils.openpose import BODY_POINTS, load_openpose_directory

    frames, poses = tables
    video = frames[frames.timestamp_s.notna()]
    uri, width, height = video.source_uri.iloc[0], int(video.width.iloc[0]), int(video.height.iloc[0])
    pose = load_openpose_directory(str(body25_export / "video" / "mmpose-demo-5frames"), fps=25,
                                   width=width, height=height)
    assert pose.body.data.shape[0] == len(video) and (pose.header.dimensions.width, pose.header.dimensions.height) == (width, height)
    found_mid_hip = 0
    for frame in video.frame_index:
        kp, _ = table_people(poses, uri, int(frame))
        data = np.asarray(pose.body.data[frame, :len(kp), :len(BODY_POINTS)].filled(0))
        conf = np.asarray(pose.body.confidence[frame, :len(kp), :len(BODY_POINTS)])
        assert np.all(np.asarray(pose.body.confidence[frame, len(kp):]) == 0)  # no extra people
        for name, ours in (("Nose", "nose"), ("Neck", "neck"), ("RWrist", "r_wrist"), ("LHip", "l_hip"),
                           ("RAnkle", "r_ankle"), ("LEar", "l_ear"), ("REye", "r_eye")):
            i, j = BODY_POINTS.index(name), KEYPOINTS.index(ours)
            np.testing.assert_array_equal(data[:, i], kp[:, j, :2])
            np.testing.assert_array_equal(conf[:, i], kp[:, j, 2])
        mid, rh, lh = BODY_POINTS.index("MidHip"), KEYPOINTS.index("r_hip"), KEYPOINTS.index("l_hip")
        both = (kp[:, rh, 2] > 0) & (kp[:, lh, 2] > 0)
        found_mid_hip += int(both.sum())
        np.testing.assert_allclose(data[both, mid], (kp[both, rh, :2] + kp[both, lh, :2]) / 2, rtol=1e-6)
        np.testing.assert_array_equal(conf[both, mid], np.minimum(kp[both, rh, 2], kp[both, lh, 2]))
        assert np.all(conf[~both, mid] == 0)
        for toe in ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel"):
            assert np.all(conf[:, BODY_POINTS.index(toe)] == 0)
    assert found_mid_hip > 10


def test_pose_format_reads_an_image_file(coco18_export, tables):
    from pose_format.utils.openpose import load_openpose

    frames, poses = tables
    (row,) = [r for r in frames.itertuples() if r.source_uri.endswith("COCO_val2014_000000000357.jpg")]
    data = json.loads((coco18_export / "images" / "COCO_val2014_000000000357_keypoints.json").read_text())
    pose = load_openpose({0: data}, width=row.width, height=row.height)
    kp, _ = table_people(poses, row.source_uri, 0)
    assert len(kp) == row.num_people >= 2
    np.testing.assert_array_equal(np.asarray(pose.body.data[0, :, :18].filled(0)), kp[..., :2])
    np.testing.assert_array_equal(np.asarray(pose.body.confidence[0, :, :18]), kp[..., 2])


@pytest.mark.parametrize("scale, lo, hi", [("unit", 0.0, 1.0), ("signed-unit", -1.0, 1.0)])
def test_keypoint_scale_matches_openpose(job_output, tables, tmp_path, scale, lo, hi):
    """OpenPose --keypoint_scale 3 / 4: x / (W - 1) (times 2, minus 1), applied to missing parts too."""
    frames, poses = tables
    dest = tmp_path / scale
    export(job_output, "openpose-json", str(dest), keypoint_scale=scale)
    (row,) = [r for r in frames.itertuples() if r.source_uri.endswith("p1.jpg")]
    kp, _ = table_people(poses, row.source_uri, 0)
    got = np.asarray(json.loads((dest / "images" / "p1_keypoints.json").read_text())["people"][0]
                     ["pose_keypoints_2d"], np.float32).reshape(18, 3)
    want_x = kp[0, :, 0].astype(np.float64) / (row.width - 1) * (hi - lo) + lo
    want_y = kp[0, :, 1].astype(np.float64) / (row.height - 1) * (hi - lo) + lo
    np.testing.assert_allclose(got[:, 0], want_x, atol=1e-6)
    np.testing.assert_allclose(got[:, 1], want_y, atol=1e-6)
    np.testing.assert_array_equal(got[:, 2], kp[0, :, 2])
    assert ((got[:, :2] >= lo) & (got[:, :2] <= hi)).all()


def test_body25_mid_hip_and_scaling_units():
    kp = np.full((2, 18, 3), np.nan, np.float32)
    kp[..., 2] = 0
    kp[0, KEYPOINTS.index("r_hip")] = (10, 20, 0.5)
    kp[0, KEYPOINTS.index("l_hip")] = (30, 40, 0.8)
    kp[1, KEYPOINTS.index("r_hip")] = (10, 20, 0.5)  # one hip only: no mid-hip
    out = body25_from_coco18(kp)
    assert out.shape == (2, 25, 3)
    np.testing.assert_array_equal(out[0, 8], (20, 30, 0.5))
    np.testing.assert_array_equal(out[1, 8], (0, 0, 0))
    np.testing.assert_array_equal(out[0, 0], (0, 0, 0))  # missing nose: 0, 0, 0
    # the last pixel centre of a 101-px-wide image is x = 100 -> 1.0 (unit) and 1.0 (signed-unit)
    corner = np.array([[[100, 50, 1], [0, 0, 1]]], np.float32)
    np.testing.assert_allclose(scale_keypoints(corner, 101, 51, "unit")[0, :, :2], [[1, 1], [0, 0]])
    np.testing.assert_allclose(scale_keypoints(corner, 101, 51, "signed-unit")[0, :, :2], [[1, 1], [-1, -1]])
    with pytest.raises(ValueError, match="keypoint_scale"):
        scale_keypoints(corner, 101, 51, "net")
