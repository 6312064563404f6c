"""Video sources: an open file object and an fsspec URI decode like the local file."""
from __future__ import annotations


import fsspec
import pytest

from pipeline.video import FrameRange, VideoDecodeError, iter_frames, probe

from .conftest import FIVE, digest


def test_file_object_source_gives_same_frames(video_dir, reference_decode):
    with fsspec.open(str(video_dir / FIVE), "rb") as fobj:
        info = probe(fobj)
        got = [(f.index, f.timestamp_s, digest(f.image)) for f in iter_frames(fobj, FrameRange(2, 5), info)]
    rows = reference_decode(FIVE)[1]
    assert info.num_frames == 5 and got == [(i, *rows[i]) for i in (2, 3, 4)]


def test_fsspec_uri_source(video_dir, reference_decode):
    fs = fsspec.filesystem("memory")
    fs.pipe("/videos/five.mp4", (video_dir / FIVE).read_bytes())
    try:
        info = probe("memory://videos/five.mp4")
        got = [(f.timestamp_s, digest(f.image)) for f in iter_frames("memory://videos/five.mp4",
                                                                       FrameRange(1, 5, 3), info)]
        assert info.num_frames == 5 and got == [reference_decode(FIVE)[1][i] for i in (1, 4)]
        with pytest.raises(VideoDecodeError, match="memory://videos/nothing.mp4"):
            probe("memory://videos/nothing.mp4")
    finally:
        fs.rm("/videos", recursive=True)

