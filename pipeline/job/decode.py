"""The decode stage (a CPU task): read a shard's bytes, decode images / a video frame range and
preprocess them into network inputs. Every failure tied to one input becomes an ErrorRecord."""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np

from pipeline.job.records import DecodedShard, ErrorRecord, FrameMeta, Shard
from pipeline.storage import describe_error, filesystem


class CorruptImageError(ValueError):
    """An image file is empty, truncated or not decodable."""


# ----------------------------------------------------------------------------------------- decode
def decode_image(data: bytes, uri: str) -> np.ndarray:
    """uint8 BGR [H, W, 3] pixels of the image file bytes ``data`` (EXIF orientation applied).

    Raises CorruptImageError naming ``uri`` for empty, undecodable or truncated (JPEG without its
    end-of-image marker) files.
    """
    import cv2

    if not data:
        raise CorruptImageError(f"{uri}: the file is empty (0 bytes); re-copy it from its origin or remove it")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise CorruptImageError(f"{uri}: not a decodable image (corrupt, or not the format its name says); "
                                "re-copy it from its origin or remove it")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data.rstrip(b"\x00\r\n ")[-4096:]:
        raise CorruptImageError(f"{uri}: truncated JPEG (no end-of-image marker, {len(data)} bytes); "
                                "re-copy it from its origin or remove it")
    return image


def _decode_images(shard: Shard, storage_options: Mapping[str, Any] | None) -> DecodedShard:
    frames, images, errors = [], [], []
    for src in shard.sources:
        try:
            fs, path = filesystem(src.uri, storage_options)
            data = fs.cat_file(path)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(src.uri, "read", exc, describe_error(src.uri, exc),
                                                     shard_id=shard.shard_id))
            continue
        try:
            image = decode_image(data, src.uri)
        except Exception as exc:  # noqa: BLE001
            errors.append(ErrorRecord.from_exception(src.uri, "decode", exc, str(exc), shard_id=shard.shard_id))
            continue
        h, w = image.shape[:2]
        frames.append(FrameMeta(src.uri, src.source_id, 0, None, int(w), int(h)))
        images.append(image)
    return DecodedShard(shard, frames, images, errors)


def _decode_video(shard: Shard, storage_options: Mapping[str, Any] | None) -> DecodedShard:
    from pipeline import video as pv

    src, fr = shard.sources[0], shard.frames
    frames, images, errors = [], [], []
    try:
        fs, path = filesystem(src.uri, storage_options)
        with fs.open(path, "rb") as f:
            for frame in pv.iter_frames(f, fr, shard.video_info):
                image = np.ascontiguousarray(frame.image)
                h, w = image.shape[:2]
                ts = None if frame.timestamp_s is None else float(frame.timestamp_s)
                frames.append(FrameMeta(src.uri, src.source_id, int(frame.index), ts, int(w), int(h)))
                images.append(image)
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
                 prepare: Callable[[list[np.ndarray]], list] | None = None) -> DecodedShard:
    """Read and decode every frame of ``shard``; unreadable inputs become errors, not exceptions.

    prepare: optional images -> network input passes (the runner's preprocessing, e.g.
    functools.partial(prepare_passes, prep=..., scales=..., flip=...)); when given, the shard carries
    the passes instead of the raw pixels.
    """
    t0 = time.perf_counter()
    decode = _decode_video if shard.kind == "video" else _decode_images
    out = decode(shard, storage_options)
    if prepare is not None and out.images:
        out.passes, out.images = prepare(out.images), []
    out.seconds = time.perf_counter() - t0
    return out
