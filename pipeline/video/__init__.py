"""Video archives: probe, keyframe-aligned shards, frame-accurate decoding, tracking, rendering.

Decoding uses PyAV (FFmpeg) on CPU. See docs/video.md. The names below are imported on first use
(PEP 562), so importing one submodule (e.g. ``pipeline.video.shards`` for its FrameRange) does not
import the tracker's pandas and scipy.
"""
import importlib

# Imported here, not on first use: the function ``probe`` has its submodule's name, and importing the
# submodule (as pipeline.video.shards does) would otherwise leave the module in that attribute.
from pipeline.video.probe import VideoInfo, probe  # noqa: F401 (re-exported: __all__)

_WHERE = {
    "Frame": "decode", "iter_frames": "decode", "rotate_image": "decode", "VideoDecodeError": "errors",
    "FrameRange": "shards", "plan_shards": "shards", "select_frames": "shards", "TrackConfig": "tracker",
    "track_video": "tracker",
}
__all__ = sorted([*_WHERE, "VideoInfo", "probe"])


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'pipeline.video' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.video.{_WHERE[name]}"), name)
