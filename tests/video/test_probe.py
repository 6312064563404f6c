"""probe: frame counts, timestamps and metadata of the real sample videos like PyAV's own decode; bad input."""
from __future__ import annotations


import av
import numpy as np
import pytest

from pipeline.video import VideoDecodeError, probe

from .conftest import FIVE, WALKING


@pytest.mark.parametrize("name", [WALKING, FIVE])
def test_probe_counts_frames_and_timestamps_like_pyav(video_dir, reference_decode, name):
    info = probe(video_dir / name)
    declared, rows = reference_decode(name)
    assert info.num_frames == declared == len(rows)
    np.testing.assert_allclose(info.timestamps_s(), [t for t, _ in rows], rtol=0, atol=1e-9)
    assert info.keyframes[0] == 0 and list(info.keyframes) == sorted(set(info.keyframes))
    with av.open(str(video_dir / name)) as container:
        stream = container.streams.video[0]
        assert (info.width, info.height) == (stream.width, stream.height)
        assert info.fps == pytest.approx(float(stream.average_rate))
        assert info.codec == "h264" and info.rotation == 0


def test_walking_video_metadata(video_dir):
    info = probe(video_dir / WALKING)
    assert (info.num_frames, info.width, info.height) == (1394, 768, 432)
    assert info.fps == pytest.approx(10.0) and info.duration_s == pytest.approx(139.4)
    assert len(info.keyframes) > 10  # a GOP structure to seek within



# ---- bad input -------------------------------------------------------------------------------

def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _zero_frames(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height = 64, 32
        container.start_encoding()
    return path


def _truncated(path, video_dir):
    data = (video_dir / WALKING).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _undecodable(path, video_dir):
    data = bytearray((video_dir / FIVE).read_bytes())
    at = data.find(b"mdat") + 4
    data[at: at + 200_000] = bytes(200_000)  # container intact, every H.264 payload zeroed
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind,needle", [
    ("audio", "no video stream"), ("zero", "video stream"), ("empty", "empty"),
    ("junk", "not a readable media file"), ("truncated", "truncated"),
    ("undecodable", "cannot be decoded"), ("missing", "no such file"),
])
def test_bad_inputs_raise_video_decode_error(tmp_path, video_dir, kind, needle):
    path = tmp_path / f"{kind}.mp4"
    if kind == "audio":
        _audio_only(path)
    elif kind == "zero":
        _zero_frames(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "junk":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "truncated":
        _truncated(path, video_dir)
    elif kind == "undecodable":
        _undecodable(path, video_dir)
    with pytest.raises(VideoDecodeError) as err:
        probe(path)
    message = str(err.value)
    assert str(path) in message and needle in message
    assert isinstance(err.value, ValueError)

