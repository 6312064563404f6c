"""The job-level error: the job cannot start at all (per-input and per-shard failures are rows of
the errors table instead)."""


class JobError(RuntimeError):
    """The job cannot start (no usable input, unusable output, the network cannot be loaded)."""

    @classmethod
    def network_not_loaded(cls, model: str, cause: BaseException) -> "JobError":
        """The error of a job whose network ``model`` could not be built (``cause``: why)."""
        return cls(f"the network {model!r} could not be loaded: {cause}")
