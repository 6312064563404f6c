"""One source's rows of a job output (frames + poses), read through the public readers, and the
file names its exports get.
"""
from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Columns of the frames / poses tables an export reads.
FRAME_COLUMNS = ("source_id", "source_uri", "frame_index", "timestamp_s", "width", "height", "num_people")
POSE_COLUMNS = ("source_id", "frame_index", "person_index", "track_id", "score", "bbox", "keypoints")


@dataclass(frozen=True)
class FramePeople:
    """The people of one frame, in person_index order.

    frame_index: 0-based frame index (0 for an image); width, height: frame size in pixels;
    keypoints: float32 [P, 18, 3] COCO-18 x, y (pixels, NaN = missing), score (0 = missing);
    scores: float32 [P] person scores; track_ids: [P] track id or -1 (images, tracking off);
    bboxes: float32 [P, 4] x, y, w, h pixels.
    """

    frame_index: int
    timestamp_s: float | None
    width: int
    height: int
    keypoints: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    bboxes: np.ndarray


@dataclass(frozen=True)
class SourceRows:
    """Every processed frame of one source (frames rows) and its people (poses rows).

    stem: the source's export name relative to the export folder, without extension
    (see :func:`export_stems`), e.g. "images/p1" or "video/walk".
    """

    source_id: str
    source_uri: str
    stem: str
    frames: pd.DataFrame
    poses: pd.DataFrame

    @property
    def is_video(self) -> bool:
        """True for a video (frames carry timestamps), False for a still image."""
        return bool(self.frames["timestamp_s"].notna().any())

    def iter_frames(self) -> Iterator[FramePeople]:
        """The source's frames in frame order, each with its people (frames with nobody included)."""
        from pipeline import keypoints_array

        by_frame = {int(f): g for f, g in self.poses.groupby("frame_index", sort=False)}
        for row in self.frames.itertuples(index=False):
            g = by_frame.get(int(row.frame_index))
            if g is None:
                g = self.poses.iloc[:0]
            track = g["track_id"].astype("Float64").fillna(-1).to_numpy(np.int64) if len(g) else np.zeros(0, np.int64)
            bboxes = np.stack(g["bbox"].to_numpy()).astype(np.float32) if len(g) else np.zeros((0, 4), np.float32)
            yield FramePeople(int(row.frame_index), None if pd.isna(row.timestamp_s) else float(row.timestamp_s),
                              int(row.width), int(row.height), keypoints_array(g),
                              g["score"].to_numpy(np.float32), track, bboxes)

    def digest(self) -> dict[str, Any]:
        """What the export of this source was made from: row counts and a sha256 of every value read.

        A changed job output (re-labelled source, other model, more frames) changes the digest, so a
        re-run of the export redoes that source; it does not depend on how the tables are stored.
        """
        h = hashlib.sha256(self.source_uri.encode())
        f = self.frames
        for col in ("frame_index", "width", "height", "num_people"):
            h.update(f[col].to_numpy(np.int64).tobytes())
        h.update(f["timestamp_s"].to_numpy(np.float64, na_value=np.nan).tobytes())
        p = self.poses
        for col in ("frame_index", "person_index"):
            h.update(p[col].to_numpy(np.int64).tobytes())
        h.update(p["track_id"].astype("Float64").fillna(-1).to_numpy(np.int64).tobytes())
        h.update(p["score"].to_numpy(np.float32).tobytes())
        for col in ("bbox", "keypoints"):
            if len(p):
                h.update(np.stack(p[col].to_numpy()).astype(np.float32).tobytes())
        return {"frames": int(len(f)), "poses": int(len(p)), "sha256": h.hexdigest()}

    def frame_file(self, frame_index: int, suffix: str) -> str:
        """The export path of one frame, relative to the export folder, in OpenPose's naming:
        ``<stem><suffix>`` for an image, ``<stem>/<name>_<frame:012d><suffix>`` for a video."""
        if not self.is_video:
            return f"{self.stem}{suffix}"
        return posixpath.join(self.stem, f"{posixpath.basename(self.stem)}_{frame_index:012d}{suffix}")


def read_sources(output: str, source_ids: Sequence[str], stems: Mapping[str, str],
                 storage_options: Mapping[str, Any] | None = None) -> list[SourceRows]:
    """The rows of ``source_ids`` in the job output ``output``, read with pipeline.read_frames /
    read_poses (filters pushed down to the source_id partitions), in the order given."""
    from pipeline import read_frames, read_poses

    ids = list(source_ids)
    filters = [("source_id", "in", ids)]
    frames = read_frames(output, filters=filters, columns=list(FRAME_COLUMNS), storage_options=storage_options)
    poses = read_poses(output, filters=filters, columns=list(POSE_COLUMNS), storage_options=storage_options)
    frames_of = {k: g.sort_values("frame_index", kind="stable") for k, g in frames.groupby("source_id", sort=False)}
    poses_of = {k: g.sort_values(["frame_index", "person_index"], kind="stable")
                for k, g in poses.groupby("source_id", sort=False)}
    out = []
    for sid in ids:
        f = frames_of.get(sid, frames.iloc[:0])
        uri = str(f["source_uri"].iloc[0]) if len(f) else ""
        out.append(SourceRows(sid, uri, stems[sid], f.reset_index(drop=True),
                              poses_of.get(sid, poses.iloc[:0]).reset_index(drop=True)))
    return out


def export_stems(source_uris: Mapping[str, str]) -> dict[str, str]:
    """{source_id: export stem}: each source's path relative to the deepest folder holding all
    sources, without its extension ("/data/a/x.jpg", "/data/b/y.mp4" -> "a/x", "b/y"; one folder of
    photos -> bare stems, as OpenPose names them). URI schemes are dropped ("s3://b/k" -> "b/k").

    Raises ValueError naming both sources when two would get the same name (e.g. x.jpg and x.png
    in one folder).
    """
    paths = {sid: _path_of(uri) for sid, uri in source_uris.items()}
    folders = [posixpath.dirname(p) for p in paths.values()]
    common = posixpath.commonpath(folders) if folders and all(f.startswith("/") for f in folders) \
        else _common_prefix_folder(folders)
    stems: dict[str, str] = {}
    taken: dict[str, str] = {}
    for sid, path in sorted(paths.items(), key=lambda kv: kv[1]):
        rel = posixpath.relpath(path, common) if common else path.lstrip("/")
        stem = posixpath.splitext(rel)[0]
        if stem in taken:
            raise ValueError(f"sources {source_uris[taken[stem]]} and {source_uris[sid]} would both be exported "
                             f"as {stem!r}; export them to separate folders (filter the poses by source_uri)")
        taken[stem] = sid
        stems[sid] = stem
    return stems


def _path_of(uri: str) -> str:
    if "://" in uri:
        scheme, rest = uri.split("://", 1)
        return "/" + rest if scheme == "file" else rest
    return uri


def _common_prefix_folder(folders: list[str]) -> str:
    parts = [f.strip("/").split("/") for f in folders]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common)
