"""hf-dataset export of a real job output, opened with ``datasets.load_dataset`` as users do."""
from __future__ import annotations

import io

import numpy as np
import pytest

import pipeline
from pipeline.export import export
from pipeline.export.controlnet import pose_image
from pipeline.export.hf_dataset import HFDataset


def load(dest):
    import datasets

    return datasets.load_dataset("parquet", data_files=f"{dest}/data/*.parquet", split="train")


@pytest.fixture(scope="module")
def dataset(job_output, tmp_path_factory):
    dest = tmp_path_factory.mktemp("hf") / "all"
    export(job_output, "hf-dataset", str(dest), text="{num_people} people in {name}")
    return dest, load(dest)


def test_every_frame_with_images_text_and_poses(dataset, job_output, media_dir):
    from PIL import Image

    dest, ds = dataset
    frames = pipeline.read_frames(job_output)
    poses = pipeline.read_poses(job_output).sort_values(["source_uri", "frame_index", "person_index"])
    assert len(ds) == len(frames) == 8
    assert isinstance(ds.features["image"], type(ds.features["conditioning_image"]))
    for row in ds:
        image, cond = row["image"], row["conditioning_image"]
        assert isinstance(image, Image.Image) and isinstance(cond, Image.Image)
        assert image.size == cond.size == (row["width"], row["height"])
        people = poses[(poses.source_uri == row["source_uri"]) & (poses.frame_index == row["frame_index"])]
        kp = pipeline.keypoints_array(people)
        assert row["num_people"] == len(kp)
        assert row["text"] == f"{len(kp)} people in {row['source_uri'].rsplit('/', 1)[-1]}"
        np.testing.assert_array_equal(np.asarray(row["keypoints"], np.float32).reshape(-1, 18, 3), kp)
        np.testing.assert_array_equal(np.asarray(row["scores"], np.float32), people["score"].to_numpy(np.float32))
        assert np.array_equal(np.asarray(cond.convert("RGB")), pose_image(kp, row["width"], row["height"]))
    # a photo keeps its original file bytes; a video frame is the decoded frame, losslessly
    raw = ds.cast_column("image", __import__("datasets").Image(decode=False))
    by_uri = {(r["source_uri"], r["frame_index"]): r["image"] for r in raw}
    p1 = str(media_dir / "images" / "p1.jpg")
    assert by_uri[(p1, 0)]["bytes"] == (media_dir / "images" / "p1.jpg").read_bytes()
    from pipeline.video import FrameRange, iter_frames

    video = str(media_dir / "video" / "mmpose-demo-5frames.mp4")
    (frame3,) = iter_frames(video, FrameRange(3, 4))
    decoded = np.asarray(Image.open(io.BytesIO(by_uri[(video, 3)]["bytes"])).convert("RGB"))
    assert np.array_equal(decoded, frame3.image[..., ::-1])


def test_folder_loads_as_a_train_split(dataset):
    import datasets

    dest, ds = dataset
    splits = datasets.load_dataset(str(dest))
    assert list(splits) == ["train"] and len(splits["train"]) == len(ds)


def test_selection_rule(job_output, tmp_path):
    frames = pipeline.read_frames(job_output)
    poses = pipeline.read_poses(job_output)
    visible = (pipeline.keypoints_array(poses)[..., 2] > 0).sum(axis=1) / 18
    poses = poses.assign(ok=visible >= 0.6)
    good = poses.groupby(["source_uri", "frame_index"]).ok.sum()
    want = sorted(k for k, n in good.items() if n >= 3)
    assert 0 < len(want) < len(frames)
    dest = tmp_path / "sel"
    export(job_output, "hf-dataset", str(dest), min_people=3, min_visible=0.6, resolution=256, num_files=2)
    ds = load(dest)
    assert sorted(zip(ds["source_uri"], ds["frame_index"])) == want
    for row in ds:
        assert min(row["image"].size) == 256 and row["image"].size == row["conditioning_image"].size
    assert len(list((dest / "data").glob("train-*-of-00002.parquet"))) >= 1


@pytest.mark.parametrize("options, message", [
    ({"min_visible": 1.5}, "min_visible"), ({"min_people": -1}, "min_people"),
    ({"text": "{caption}"}, "text template"), ({"resolution": 10}, "resolution"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        HFDataset(**options)
