"""Video archives: probe, keyframe-aligned shards, frame-accurate decoding, tracking, rendering.

Decoding uses PyAV (FFmpeg) on CPU. See docs/video.md.
"""
from pipeline.video.decode import Frame, iter_frames, rotate_image
from pipeline.video.errors import VideoDecodeError
from pipeline.video.probe import VideoInfo, probe
from pipeline.video.shards import FrameRange, plan_shards, select_frames
from pipeline.video.tracker import TrackConfig, track_video

__all__ = [
    "Frame", "FrameRange", "TrackConfig", "VideoDecodeError", "VideoInfo", "iter_frames", "plan_shards",
    "probe", "rotate_image", "select_frames", "track_video",
]
