"""The job-level error: the job cannot start at all (per-input and per-shard failures are rows of
the errors table instead)."""


class JobError(RuntimeError):
    """The job cannot start (no usable input, unusable output, the network cannot be loaded)."""
