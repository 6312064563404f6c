"""The batch job: spec, listing, sharding, execution (Ray, or in-process for small local jobs),
Delta output and readers. The names below are imported on first use (PEP 562): importing one
submodule costs only what that submodule imports."""
import importlib

_WHERE = {
    "JobSpec": "spec", "SpecError": "spec", "build_spec": "spec", "load_spec": "spec", "run_job": "execute",
    "read_poses": "read", "read_frames": "read", "read_errors": "read", "read_tracks": "read",
    "read_table": "read", "keypoints_array": "read",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'pipeline.job' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pipeline.job.{_WHERE[name]}"), name)
