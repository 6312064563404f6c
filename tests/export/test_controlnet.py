"""controlnet export of a real job output compared pixel for pixel with controlnet_aux's own
``open_pose.util.draw_bodypose`` (called on the same people, normalised as its detector does)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline
from pipeline.export import export
from pipeline.export.controlnet import canvas_size, pose_image


def reference_image(draw_bodypose, keypoint_cls, kp: np.ndarray, width: int, height: int,
                    canvas_wh: tuple[int, int]) -> np.ndarray:
    """controlnet_aux's drawing: a black canvas, draw_bodypose once per person, keypoints as
    Keypoint(x / width, y / height) (its detector's normalisation), None where missing."""
    canvas = np.zeros((canvas_wh[1], canvas_wh[0], 3), np.uint8)
    for person in kp:
        parts = [keypoint_cls(float(x) / float(width), float(y) / float(height)) if s > 0 else None
                 for x, y, s in person]
        canvas = draw_bodypose(canvas, parts)
    return canvas


def controlnet_aux_size(width: int, height: int, resolution: int) -> tuple[int, int]:
    """controlnet_aux's resize_image rule, written out: short side -> resolution, sides to multiples of 64."""
    k = resolution / min(width, height)
    return int(np.round(width * k / 64.0)) * 64, int(np.round(height * k / 64.0)) * 64


def png_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} missing or unreadable"
    return image[..., ::-1]


@pytest.mark.parametrize("resolution", [None, 512])
def test_pose_images_equal_controlnet_aux(job_output, tmp_path, draw_bodypose, resolution):
    draw, keypoint_cls = draw_bodypose
    dest = tmp_path / "cn"
    export(job_output, "controlnet", str(dest), **({} if resolution is None else {"resolution": resolution}))
    frames = pipeline.read_frames(job_output)
    poses = pipeline.read_poses(job_output).sort_values(["source_uri", "frame_index", "person_index"])
    partial_people = drawn = 0
    for r in frames.itertuples():
        folder, name = r.source_uri.rsplit("/", 2)[-2:]
        stem = name.rsplit(".", 1)[0]
        video = r.timestamp_s == r.timestamp_s
        path = dest / folder / (f"{stem}/{stem}_{r.frame_index:012d}.png" if video else f"{stem}.png")
        got = png_rgb(path)
        size = (r.width, r.height) if resolution is None else controlnet_aux_size(r.width, r.height, resolution)
        assert (got.shape[1], got.shape[0]) == size
        rows = poses[(poses.source_uri == r.source_uri) & (poses.frame_index == r.frame_index)]
        kp = pipeline.keypoints_array(rows)
        want = reference_image(draw, keypoint_cls, kp, r.width, r.height, size)
        assert np.array_equal(got, want), f"{path}: {(got != want).any(axis=2).sum()} pixels differ"
        drawn += len(kp)
        partial_people += int(((kp[..., 2] > 0).sum(axis=1) < 18).sum())
    assert drawn >= 40 and partial_people >= 5  # many people, several with missing parts


def test_canvas_size_rule():
    assert canvas_size(960, 540, None) == (960, 540)
    assert canvas_size(960, 540, 512) == (896, 512)
    assert canvas_size(640, 427, 512) == controlnet_aux_size(640, 427, 512) == (768, 512)


def test_synthetic_people_in_person_order(draw_bodypose):
    """Two overlapping people: the later one is drawn over the earlier one, as controlnet_aux does;
    off-canvas and missing parts are handled the same way."""
    draw, keypoint_cls = draw_bodypose
    rng = np.random.default_rng(3)
    kp = np.concatenate([rng.uniform(-20, 220, (2, 18, 2)), rng.uniform(0, 1, (2, 18, 1))], axis=2).astype(np.float32)
    kp[0, [3, 9], 2] = 0
    kp[1, 5] = (np.nan, np.nan, 0)
    for res in (None, 320):
        size = canvas_size(200, 150, res)
        want = reference_image(draw, keypoint_cls, kp, 200, 150, size)
        assert np.array_equal(pose_image(kp, 200, 150, res), want)
        assert np.array_equal(pose_image(kp[::-1], 200, 150, res), reference_image(
            draw, keypoint_cls, kp[::-1], 200, 150, size))
