"""Fixtures for the video tests: real sample videos, their reference decode, synthetic writers."""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

WALKING = "one-by-one-person-detection.mp4"
FIVE = "mmpose-demo-5frames.mp4"


@pytest.fixture(scope="session")
def video_dir(media_dir: Path) -> Path:
    return media_dir / "video"


def digest(image: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16).hexdigest()


@pytest.fixture(scope="session")
def reference_decode(video_dir):
    """name -> (stream.frames, [(timestamp_s, image digest)]) from one plain sequential PyAV
    decode (no seeking, no threads), in output (presentation) order."""
    cache = {}

    def get(name: str):
        if name not in cache:
            with av.open(str(video_dir / name)) as container:
                stream = container.streams.video[0]
                start = stream.start_time or 0
                rows = [(float((f.pts - start) * stream.time_base), digest(f.to_ndarray(format="bgr24")))
                        for f in container.decode(stream)]
                cache[name] = (stream.frames, rows)
        return cache[name]

    return get


def write_video(path: Path, images, pts=None, time_base=Fraction(1, 1000), rate=10,
                rotation_ccw: int | None = None, tags: dict | None = None, codec="libx264") -> Path:
    """Encode BGR uint8 images to `path` with PyAV; `pts` in `time_base` ticks (default 1/rate)."""
    images = list(images)
    h, w = images[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = time_base
        stream.options = {"crf": "10"} if codec == "libx264" else {}
        if rotation_ccw is not None:
            stream.set_display_rotation(rotation_ccw)
        for key, value in (tags or {}).items():
            stream.metadata[key] = value
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = pts[i] if pts is not None else int(round(i / rate / time_base))
            frame.time_base = time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
