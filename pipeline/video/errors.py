"""The one error type every video function raises for bad input."""
from __future__ import annotations


class VideoDecodeError(ValueError):
    """A video could not be opened, probed or decoded.

    The message names the input and says what to do next (re-encode, re-upload, skip); the job
    records it in the `errors` table with stage "decode" and goes on with other inputs.
    """
