"""The tracking tests' synthetic walkers; they live in pipeline.testing (import them from there)."""
from pipeline.testing import rows_from, same_partition, walker
from pipeline.testing import walking_person as skeleton

__all__ = ["rows_from", "same_partition", "skeleton", "walker"]
