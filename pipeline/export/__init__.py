"""Exports of a job output in the formats downstream tools read: OpenPose JSON, ControlNet pose
images, a Hugging Face dataset, COCO results (see docs/export.md).

``pipeline.export.export(output, format, dest, **options)`` runs one on Ray (pipeline.export.runner);
it is imported on first use so that importing the format modules stays cheap.
"""
__all__ = ["export", "ExportSummary", "FORMATS"]


def __getattr__(name: str):
    if name in __all__:
        from pipeline.export import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'pipeline.export' has no attribute {name!r}")
