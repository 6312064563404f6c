"""Opening a video source with PyAV: a local path, an fsspec URI or an open binary file object."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO, Union

import av

from pipeline.video.errors import VideoDecodeError

#: What the video functions accept: a local path, an fsspec URI ("s3://b/k.mp4") or an open
#: binary file object (e.g. from fsspec.open(...).open()); file objects must be seekable.
VideoSource = Union[str, os.PathLike, IO[bytes]]


def source_name(src: VideoSource) -> str:
    """A human-readable name of the source for error messages (path, URI or file object's path)."""
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    for attr in ("full_name", "path", "name"):
        value = getattr(src, attr, None)
        if isinstance(value, str) and value:
            return value
    return repr(src)


@contextlib.contextmanager
def open_container(src: VideoSource) -> Iterator[av.container.InputContainer]:
    """Open `src` for reading; PyAV/OS errors become VideoDecodeError naming the input."""
    name = source_name(src)
    with contextlib.ExitStack() as stack:
        try:
            if isinstance(src, (str, os.PathLike)):
                path = os.fspath(src)
                if "://" in path and not path.startswith("file://"):
                    import fsspec

                    fileobj = stack.enter_context(fsspec.open(path, "rb"))
                    container = av.open(fileobj, "r")
                else:
                    local = path[len("file://"):] if path.startswith("file://") else path
                    if os.path.isfile(local) and os.path.getsize(local) == 0:
                        raise VideoDecodeError(
                            f"{name}: the file is empty (0 bytes); re-copy or re-upload the video")
                    container = av.open(local, "r")
            else:
                src.seek(0)
                container = av.open(src, "r")
        except VideoDecodeError:
            raise
        except FileNotFoundError as exc:
            raise VideoDecodeError(f"{name}: no such file ({exc}); check the path or URI") from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError(
                f"{name}: not a readable media file ({exc}); check that it is a video in a "
                "container FFmpeg reads (mp4, mkv, mov, avi, webm) and re-encode it if so") from exc
        stack.callback(container.close)
        yield container
