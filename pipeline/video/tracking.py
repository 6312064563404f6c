"""Old name of pipeline.video.tracker, kept while pipeline/job/spec.py still imports TrackConfig from
here; import from pipeline.video (TrackConfig, track_video) instead."""
from pipeline.video.tracker import TrackConfig, track_video

__all__ = ["TrackConfig", "track_video"]
