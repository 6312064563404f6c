"""The batch job: spec, listing, sharding, Ray execution, Parquet output and readers."""
from pipeline.job.read import (keypoints_array, read_errors, read_frames, read_poses, read_table,
                               read_tracks)
from pipeline.job.spec import JobSpec, SpecError, build_spec, load_spec

__all__ = ["JobSpec", "SpecError", "build_spec", "load_spec", "run_job", "read_poses", "read_frames",
           "read_errors", "read_tracks", "read_table", "keypoints_array"]


def run_job(spec, **kwargs):
    """Run ``spec`` on Ray; see :func:`pipeline.job.execute.run_job` (imported lazily: it imports Ray)."""
    from pipeline.job.execute import run_job as _run

    return _run(spec, **kwargs)
