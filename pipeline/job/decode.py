"""The decode stage (a CPU task): read a shard's bytes, decode images / a video frame range and
preprocess them into network inputs. Every failure tied to one input becomes an ErrorRecord."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from pipeline.job.records import DecodedShard, ErrorRecord, FrameMeta, Shard
from pipeline.storage import describe_error, filesystem


class CorruptImageError(ValueError):
    """An image file is empty, truncated or not decodable."""


class ImageLimitError(ValueError):
    """An image is over a size limit (pixels or aspect ratio); the message names the setting."""


@dataclass(frozen=True)
class ImageLimits:
    """Per-image limits checked from the file header before decoding, and the smallest size the
    network needs (pixels): an image at least twice as large in both is decoded at 1/2, 1/4 or 1/8
    size where the codec can (JPEG's reduced decoding), instead of full size then resized.

    max_pixels: width x height limit (job setting ``max_pixels``); max_aspect: longer / shorter side
    (``max_aspect``); needed_width / needed_height: 0 = no constraint on that side; None = never reduce.
    """

    max_pixels: int = 40_000_000
    max_aspect: float = 10.0
    needed_width: int | None = None
    needed_height: int | None = None


_REDUCED = {2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from the image header (nothing decoded), or None if unreadable."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # posepipe applies its own limits (ImageLimits) from this size
    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception:  # noqa: BLE001 - undecodable headers are reported by the decoder
        return None


def reduction_factor(size: tuple[int, int], limits: ImageLimits, is_jpeg: bool) -> int:
    """1, 2, 4 or 8: the largest JPEG reduction keeping the image at least the size the network needs."""
    if not is_jpeg or limits.needed_height is None:
        return 1
    w, h = size
    for f in (8, 4, 2):
        if h // f >= limits.needed_height and w // f >= (limits.needed_width or 0):
            return f
    return 1


def check_limits(uri: str, size: tuple[int, int], limits: ImageLimits) -> None:
    """Raise ImageLimitError naming ``uri``, the limit and the setting that lifts it."""
    w, h = size
    if w * h > limits.max_pixels:
        raise ImageLimitError(f"{uri}: {w}x{h} = {w * h / 1e6:.1f} megapixels is over the limit of "
                              f"{limits.max_pixels / 1e6:.1f} (possibly a decompression bomb); raise the job setting "
                              "max_pixels to label it")
    if min(w, h) == 0 or max(w, h) / min(w, h) > limits.max_aspect:
        raise ImageLimitError(f"{uri}: {w}x{h} has an aspect ratio over {limits.max_aspect:g}; raise the job setting "
                              "max_aspect to label it")


# ----------------------------------------------------------------------------------------- decode
def decode_image(data: bytes, uri: str, factor: int = 1) -> np.ndarray:
    """uint8 BGR [H, W, 3] pixels of the image file bytes ``data`` (EXIF orientation applied),
    decoded at 1/``factor`` size (JPEG only; see :func:`reduction_factor`).

    Raises CorruptImageError naming ``uri`` for empty, undecodable or truncated (JPEG without its
    end-of-image marker) files.
    """
    import cv2

    if not data:
        raise CorruptImageError(f"{uri}: the file is empty (0 bytes); re-copy it from its origin or remove it")
    flag = getattr(cv2, _REDUCED[factor]) if factor > 1 else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if image is None or image.size == 0:
        raise CorruptImageError(f"{uri}: not a decodable image (corrupt, or not the format its name says); "
                                "re-copy it from its origin or remove it")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data.rstrip(b"\x00\r\n ")[-4096:]:
        raise CorruptImageError(f"{uri}: truncated JPEG (no end-of-image marker, {len(data)} bytes); "
                                "re-copy it from its origin or remove it")
    return image


def decode_bounded(data: bytes, uri: str, limits: ImageLimits) -> tuple[np.ndarray, int, tuple[int, int]]:
    """(pixels, reduction factor, original (width, height)) of an image file within ``limits``;
    raises ImageLimitError before decoding an image over a limit, CorruptImageError as decode_image."""
    size = header_size(data)
    if size is not None:
        check_limits(uri, size, limits)
    factor = reduction_factor(size, limits, data[:2] == b"\xff\xd8") if size else 1
    image = decode_image(data, uri, factor)
    if size is None or factor == 1:
        check_limits(uri, (image.shape[1], image.shape[0]), limits)
        size = (image.shape[1], image.shape[0])
    elif (image.shape[1] >= image.shape[0]) != (size[0] >= size[1]):  # EXIF orientation swapped the sides
        size = (size[1], size[0])
    return image, factor, size


def _decode_images(shard: Shard, storage_options: Mapping[str, Any] | None, limits: ImageLimits,
                   keep: Callable[[np.ndarray], Any]) -> DecodedShard:
    """Decode the shard's images; ``keep(pixels)`` is what is held of each (pixels, or its network input)."""
    from pipeline.job.containers import read_member

    frames, images, errors = [], [], []
    row_groups: dict = {}  # Parquet row groups read for this shard's container members
    for src in shard.sources:
        try:
            if src.member:
                data = read_member(src, storage_options, row_groups)
            else:
                fs, path = filesystem(src.open_path, storage_options)
                data = fs.cat_file(path)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(src.uri, "read", exc, describe_error(src.uri, exc),
                                                     shard_id=shard.shard_id))
            continue
        try:
            image, factor, (w, h) = decode_bounded(data, src.uri, limits)
            kept = keep(image)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(src.uri, "decode", exc, str(exc), shard_id=shard.shard_id))
            continue
        frames.append(FrameMeta(src.uri, src.source_id, 0, None, int(w), int(h), pixel_scale=factor, extra=src.extra))
        images.append(kept)
    return DecodedShard(shard, frames, images, errors)


def _decode_video(shard: Shard, storage_options: Mapping[str, Any] | None, limits: ImageLimits,
                  keep: Callable[[np.ndarray], Any]) -> DecodedShard:
    """Decode the shard's frame range; ``keep(pixels)`` is what is held of each frame."""
    from pipeline import video as pv

    src, fr = shard.sources[0], shard.frames
    frames, images, errors = [], [], []
    try:
        fs, path = filesystem(src.open_path, storage_options)
        with fs.open(path, "rb") as f:
            for frame in pv.iter_frames(f, fr, shard.video_info):
                image = np.ascontiguousarray(frame.image)
                h, w = image.shape[:2]
                if not frames:
                    check_limits(src.uri, (w, h), limits)
                ts = None if frame.timestamp_s is None else float(frame.timestamp_s)
                kept = keep(image)
                frames.append(FrameMeta(src.uri, src.source_id, int(frame.index), ts, int(w), int(h),
                                        extra=src.extra))
                images.append(kept)
    except Exception as exc:  # noqa: BLE001
        msg = (describe_error(src.uri, exc) if isinstance(exc, (FileNotFoundError, PermissionError)) else
               f"{src.uri}: frames {fr.start}..{fr.stop - 1} could not be decoded after frame "
               f"{frames[-1].frame_index if frames else fr.start - 1} ({type(exc).__name__}: {exc}); "
               "the file may be truncated or corrupt")
        first_missing = frames[-1].frame_index + 1 if frames else fr.start
        errors.append(ErrorRecord.from_exception(src.uri, "decode", exc, msg, shard_id=shard.shard_id,
                                                 frame_index=first_missing))
    return DecodedShard(shard, frames, images, errors)


def decode_shard(shard: Shard, storage_options: Mapping[str, Any] | None = None,
                 prepare: Callable[[list[np.ndarray]], list] | None = None,
                 limits: ImageLimits = ImageLimits()) -> DecodedShard:
    """Read and decode every frame of ``shard``; unreadable inputs become errors, not exceptions.

    limits: per-image size limits and the size the network needs (see ImageLimits).
    prepare: optional images -> network input passes ``[pass][image]`` (the weights entry's
    preprocessing); when given, each frame is prepared as soon as it is decoded and its pixels are
    dropped, so a decode task holds at most one decoded frame plus network-size inputs: its memory
    is bounded in bytes (max_pixels x 3 + frames x network input), whatever the sources' sizes.
    """
    t0 = time.perf_counter()
    decode = _decode_video if shard.kind == "video" else _decode_images
    keep = (lambda image: image) if prepare is None else (lambda image: prepare([image]))
    out = decode(shard, storage_options, limits, keep)
    if prepare is not None:
        per_frame, out.images = out.images, []
        out.passes = [[p[k][0] for p in per_frame] for k in range(len(per_frame[0]))] if per_frame else None
    out.seconds = time.perf_counter() - t0
    return out
