"""posepipe: multi-person 2D pose labelling of image collections and video archives with Part Affinity Fields.

``pipeline.read_poses(uri)``, ``read_frames``, ``read_errors``, ``read_tracks`` and ``keypoints_array``
read a job's output (see pipeline.job.read); they are imported on first use so that importing a
small module such as pipeline.skeleton stays cheap.
"""
__version__ = "0.1.0"

__all__ = ["read_poses", "read_frames", "read_errors", "read_tracks", "keypoints_array"]


def __getattr__(name: str):
    if name in __all__:
        from pipeline.job import read

        return getattr(read, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
