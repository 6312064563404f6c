"""The ``hf-dataset`` export: a ControlNet training set as Parquet that ``datasets.load_dataset`` opens.

One row per selected frame, in ``data/train-<k>-of-<n>.parquet`` (Hugging Face's file naming, so
``datasets.load_dataset(DEST)`` finds a ``train`` split; sources go to file k by a hash of their
source_id, so a source's rows always land in the same file; a file with no selected frame is
not written, as ``datasets`` refuses Parquet files without rows):

| column | type | what |
|---|---|---|
| image | struct<bytes, path> | the frame: an image's original file bytes (re-encoded as PNG when EXIF rotates it or with ``resolution``), a video frame as PNG |
| conditioning_image | struct<bytes, path> | the controlnet pose image (pipeline.export.controlnet), same size as ``image`` |
| text | string | ``text`` template filled with {num_people}, {name} (file name) and {frame_index} |
| source_uri, source_id, frame_index, timestamp_s, width, height, num_people | | as in the frames table (width/height: original frame) |
| keypoints | list<list<float32>[54]> | per person (person_index order) the poses row's COCO-18 keypoints, original pixels, NaN = missing |
| scores, track_ids, bboxes | list<float32>, list<int64> (-1: none), list<list<float32>[4]> | per person |

The two image columns carry the ``datasets`` Image feature in the Parquet schema metadata, so they
load as PIL images. Selection: a frame is kept when at least ``min_people`` of its people have at
least ``min_visible`` of their 18 keypoints found (defaults 0 and 0.0: every frame).
"""
from __future__ import annotations

import hashlib
import json
import math
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export.controlnet import canvas_size, check_resolution, encode_png, pose_image
from pipeline.export.sources import FramePeople, SourceRows
from pipeline.skeleton import NUM_KEYPOINTS

#: Frames per Parquet file aimed at when ``num_files`` is not given.
FRAMES_PER_FILE = 1000
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema([
    ("image", _IMAGE), ("conditioning_image", _IMAGE), ("text", pa.string()),
    ("source_uri", pa.string()), ("source_id", pa.string()), ("frame_index", pa.int64()),
    ("timestamp_s", pa.float64()), ("width", pa.int32()), ("height", pa.int32()), ("num_people", pa.int32()),
    ("keypoints", pa.list_(pa.list_(pa.float32(), 3 * NUM_KEYPOINTS))), ("scores", pa.list_(pa.float32())),
    ("track_ids", pa.list_(pa.int64())), ("bboxes", pa.list_(pa.list_(pa.float32(), 4))),
], metadata={"huggingface": json.dumps({"info": {"features": {
    "image": {"_type": "Image"}, "conditioning_image": {"_type": "Image"}}}})})


def selected(frame: FramePeople, min_people: int, min_visible: float) -> bool:
    """True when at least ``min_people`` people of ``frame`` have >= ``min_visible`` (a fraction in
    [0, 1]) of their 18 keypoints found (score > 0)."""
    visible = (frame.keypoints[..., 2] > 0).sum(axis=1) / NUM_KEYPOINTS if len(frame.keypoints) else np.zeros(0)
    return int((visible >= min_visible).sum()) >= min_people


def file_index(source_id: str, num_files: int) -> int:
    """The Parquet file (0 .. num_files - 1) a source's rows go to: a sha256 of its id, modulo."""
    return int(hashlib.sha256(source_id.encode()).hexdigest()[:12], 16) % num_files


@dataclass(frozen=True)
class HFDataset:
    """The hf-dataset format (see the module docstring).

    resolution: None (frames at their own size) or the short side in pixels, both images resized
    as controlnet_aux does (pipeline.export.controlnet.canvas_size); text: caption template;
    min_people, min_visible: the selection rule; num_files: Parquet files (default: one per
    1000 frames of the job output).
    """

    resolution: int | None = None
    text: str = ""
    min_people: int = 0
    min_visible: float = 0.0
    num_files: int | None = None

    name = "hf-dataset"
    per_source = False

    def __post_init__(self) -> None:
        check_resolution(self.name, self.resolution)
        if not isinstance(self.min_people, int) or self.min_people < 0:
            raise ValueError(f"hf-dataset: min_people {self.min_people!r} must be an integer >= 0")
        if not 0.0 <= float(self.min_visible) <= 1.0:
            raise ValueError(f"hf-dataset: min_visible {self.min_visible!r} must be a fraction in [0, 1]")
        if self.num_files is not None and (not isinstance(self.num_files, int) or self.num_files < 1):
            raise ValueError(f"hf-dataset: num_files {self.num_files!r} must be an integer >= 1")
        try:
            self.text.format(num_people=0, name="", frame_index=0)
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"hf-dataset: text template {self.text!r} is invalid ({e}); it may use "
                             "{num_people}, {name} and {frame_index}") from None

    def parts(self, frame_counts: Mapping[str, int]) -> dict[str, list[str]]:
        """{part id "train-k-of-n": its source ids} for sources with ``frame_counts`` frames each."""
        n = self.num_files or max(1, math.ceil(sum(frame_counts.values()) / FRAMES_PER_FILE))
        out: dict[str, list[str]] = {}
        for sid in sorted(frame_counts):
            out.setdefault(f"train-{file_index(sid, n):05d}-of-{n:05d}", []).append(sid)
        return dict(sorted(out.items()))

    def files(self, sources: list[SourceRows], part_id: str,
              storage_options: Mapping[str, Any] | None = None) -> Iterator[tuple[str, bytes]]:
        """The Parquet file (relative path, bytes) of part ``part_id``, reading each selected frame's
        pixels; none when no frame of the part is selected."""
        import io

        rows: dict[str, list] = {f.name: [] for f in SCHEMA}
        for source in sources:
            for frame, image in self._frames_with_images(source, storage_options):
                for key, value in self._row(source, frame, image).items():
                    rows[key].append(value)
        if not rows["image"]:
            return  # no file: datasets refuses a Parquet file without rows
        buf = io.BytesIO()
        pq.write_table(pa.table(rows, schema=SCHEMA), buf, compression="zstd")
        yield f"data/{part_id}.parquet", buf.getvalue()

    def _row(self, source: SourceRows, frame: FramePeople, image: dict) -> dict[str, Any]:
        pose = pose_image(frame.keypoints, frame.width, frame.height, self.resolution)
        stem = posixpath.splitext(image["path"])[0]
        name = posixpath.basename(source.source_uri)
        return {
            "image": image,
            "conditioning_image": {"bytes": encode_png(pose), "path": f"{stem}_pose.png"},
            "text": self.text.format(num_people=len(frame.keypoints), name=name, frame_index=frame.frame_index),
            "source_uri": source.source_uri, "source_id": source.source_id, "frame_index": frame.frame_index,
            "timestamp_s": frame.timestamp_s, "width": frame.width, "height": frame.height,
            "num_people": len(frame.keypoints),
            "keypoints": [k.reshape(-1) for k in frame.keypoints], "scores": frame.scores.tolist(),
            "track_ids": frame.track_ids.tolist(), "bboxes": list(frame.bboxes),
        }

    def _frames_with_images(self, source: SourceRows, storage_options) -> Iterator[tuple[FramePeople, dict]]:
        """(frame, image struct) of the selected frames of ``source``."""
        frames = [f for f in source.iter_frames() if selected(f, self.min_people, self.min_visible)]
        if not frames:
            return
        if source.is_video:
            yield from self._video_frames(source, frames, storage_options)
            return
        data = _read_bytes(source.source_uri, storage_options)
        (frame,) = frames
        oriented = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if oriented is None:
            raise ValueError(f"{source.source_uri}: cannot decode the image any more; was it replaced since "
                             "it was labelled? Re-run the job, then the export")
        _check_size(source, frame, oriented)
        name = posixpath.basename(source.source_uri)
        if self.resolution is None:
            raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            if raw.shape == oriented.shape and np.array_equal(raw, oriented):
                yield frame, {"bytes": data, "path": source.stem + posixpath.splitext(name)[1]}
                return
        yield frame, {"bytes": self._encoded(oriented), "path": source.stem + ".png"}

    def _video_frames(self, source: SourceRows, frames: list[FramePeople], storage_options):
        from pipeline.video import FrameRange, iter_frames

        wanted = {f.frame_index: f for f in frames}
        indices = tuple(sorted(wanted))
        src = _video_source(source.source_uri, storage_options)
        for decoded in iter_frames(src, FrameRange(indices[0], indices[-1] + 1, indices=indices)):
            frame = wanted[decoded.index]
            _check_size(source, frame, decoded.image)
            yield frame, {"bytes": self._encoded(decoded.image), "path": source.frame_file(decoded.index, ".png")}

    def _encoded(self, bgr: np.ndarray) -> bytes:
        """PNG bytes of a BGR frame, resized as controlnet_aux's resize_image does when ``resolution`` is set."""
        h, w = bgr.shape[:2]
        if self.resolution is not None:
            cw, ch = canvas_size(w, h, self.resolution)
            k = float(self.resolution) / min(h, w)
            bgr = cv2.resize(bgr, (cw, ch), interpolation=cv2.INTER_LANCZOS4 if k > 1 else cv2.INTER_AREA)
        return encode_png(bgr[..., ::-1])


def _check_size(source: SourceRows, frame: FramePeople, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    if (w, h) != (frame.width, frame.height):
        raise ValueError(f"{source.source_uri} frame {frame.frame_index} is {w}x{h} now but was labelled at "
                         f"{frame.width}x{frame.height}; re-run the job on it, then the export")


def _read_bytes(uri: str, storage_options) -> bytes:
    from pipeline import storage

    fs, path = storage.filesystem(uri, storage_options)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{uri}: the labelled image is gone; the hf-dataset export reads the pixels "
                                "from the sources, so they must still be where the job read them") from None


def _video_source(uri: str, storage_options):
    """What pipeline.video.iter_frames opens: the path, or an open fsspec file when options are needed."""
    if not storage_options or "://" not in uri:
        return uri
    import fsspec

    return fsspec.open(uri, "rb", **dict(storage_options)).open()
