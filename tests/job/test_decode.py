"""The decode stage on hostile inputs, through the real default network path (pipeline.job.decode
-> the omz-lightweight preprocessing -> the network): every bad input is an errors row naming the
input and what to do, every good one is labelled, and large photos are decoded at reduced size."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import pipeline
from pipeline.job import build_spec, run_job
from pipeline.job.decode import (ImageLimitError, ImageLimits, check_limits, decode_bounded, header_size,
                                 reduction_factor)


def _png_bomb(path: Path, w: int, h: int) -> None:
    """A valid PNG of w x h black pixels that compresses to a few hundred kB (a decompression bomb)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    raw = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * w  # filter byte + grey pixels
    body = b"".join(raw.compress(row) for _ in range(h)) + raw.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for _ in range(10):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def _zero_frame_video(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 64, 48
        out.start_encoding()  # the header only: a recording that never got a frame


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, media_dir):
    """Good photos and hostile files made from ../shared media; returns (folder, good names)."""
    d = tmp_path_factory.mktemp("hostile")
    photo = (media_dir / "images" / "p1.jpg").read_bytes()
    (d / "good photo.jpg").write_bytes(photo)
    (d / "zero-byte.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(photo[: len(photo) // 3])
    (d / "photo-named.png").write_bytes(photo)  # wrong extension: still an image, labelled
    (d / "text-named.jpg").write_text("this is not an image")
    _png_bomb(d / "bomb.png", 12000, 12000)  # 144 megapixels in a small file
    cv2.imwrite(str(d / "sliver.png"), np.full((8, 2000, 3), 128, np.uint8))  # aspect 250
    big = cv2.resize(cv2.imread(str(media_dir / "images" / "p1.jpg")), None, fx=4, fy=4)
    cv2.imwrite(str(d / "large.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    _audio_only(d / "audio-only.mp4")
    _zero_frame_video(d / "no-frames.mp4")
    return d, {"good photo.jpg", "photo-named.png", "large.jpg"}


def test_limits_are_checked_from_the_header(corpus):
    d, _ = corpus
    data = (d / "bomb.png").read_bytes()
    assert len(data) < 2_000_000 and header_size(data) == (12000, 12000)
    with pytest.raises(ImageLimitError, match="max_pixels"):
        decode_bounded(data, "bomb.png", ImageLimits())
    with pytest.raises(ImageLimitError, match="max_aspect"):
        check_limits("sliver.png", (2000, 8), ImageLimits())
    assert reduction_factor((3000, 2000), ImageLimits(needed_width=0, needed_height=368), True) == 4
    assert reduction_factor((3000, 2000), ImageLimits(needed_width=0, needed_height=368), False) == 1
    assert reduction_factor((3000, 2000), ImageLimits(), True) == 1  # no network size known: never reduce


def test_reduced_decoding_keeps_keypoints_in_original_pixels(corpus):
    """A 4x photo decoded at 1/4 (JPEG reduced decoding) gives the same people, at 4x coordinates."""
    d, _ = corpus
    image, factor, size = decode_bounded((d / "large.jpg").read_bytes(), "large.jpg",
                                         ImageLimits(needed_width=0, needed_height=368))
    full = cv2.imread(str(d / "large.jpg"))
    assert factor >= 2 and size == (full.shape[1], full.shape[0])
    assert abs(image.shape[0] * factor - full.shape[0]) < factor and image.nbytes * factor ** 2 <= full.nbytes * 1.1


def test_hostile_corpus_with_the_real_network(job_ray, corpus, tmp_path, media_dir):
    d, good = corpus
    out = tmp_path / "out"
    summary = run_job(build_spec({"input": [str(d)], "output": str(out), "progress": False, "batch_size": 2}))
    frames = pipeline.read_frames(out)
    assert set(frames.source_uri.map(os.path.basename)) == good, frames.source_uri.tolist()
    errors = pipeline.read_errors(out).set_index(pipeline.read_errors(out).input.map(os.path.basename))
    bad = {"zero-byte.jpg": "empty", "truncated.jpg": "truncated", "text-named.jpg": "not a decodable image",
           "bomb.png": "max_pixels", "sliver.png": "max_aspect", "audio-only.mp4": "", "no-frames.mp4": ""}
    assert set(errors.index) == set(bad), errors.message.tolist()
    for name, needle in bad.items():
        message = errors.loc[name, "message"]
        assert name in message and needle in message, message
        assert not errors.loc[name, "retryable"]  # content failures are final
    assert summary.status == "complete_with_errors" and summary.pending == 0
    # The 4x photo (decoded at reduced size) gives the people of the original photo, in its pixels.
    poses = pipeline.read_poses(out)
    kp_big = pipeline.keypoints_array(poses[poses.source_uri.str.endswith("large.jpg")])
    kp_one = pipeline.keypoints_array(poses[poses.source_uri.str.endswith("good photo.jpg")])
    assert len(kp_big) == len(kp_one) >= 1
    big_w = frames[frames.source_uri.str.endswith("large.jpg")].width.item()
    one_w = frames[frames.source_uri.str.endswith("good photo.jpg")].width.item()
    assert big_w == 4 * one_w
    found = (kp_big[0, :, 2] > 0) & (kp_one[0, :, 2] > 0)
    err = np.abs(kp_big[0, found, :2] / 4 - kp_one[0, found, :2]).max()
    assert err < 4.0, f"keypoints of the 4x photo differ by {err:.2f} px (original scale)"


def test_decode_workers_never_import_torch(media_dir):
    """Listing, decoding and the default network's preprocessing (what a decode task runs) stay torch-free."""
    import subprocess
    import sys

    code = f"""
import sys
from pipeline.job.decode import ImageLimits, decode_shard
from pipeline.job.listing import list_sources
from pipeline.job.shards import image_shards
from pipeline.job.stages import default_preparer
sources, _ = list_sources([{str(media_dir / 'images' / 'p1.jpg')!r}])
out = decode_shard(image_shards(sources, 4, "m", "c")[0], None, default_preparer("omz-lightweight", (1.0,), False),
                   ImageLimits(needed_width=0, needed_height=368))
assert out.passes and not out.errors, out.errors
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr
