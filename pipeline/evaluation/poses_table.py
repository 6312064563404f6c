"""Poses DataFrames in the poses.v1 schema: built from keypoint arrays, written as one Parquet
file, and read back from such a file or from a job output."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import storage, tables
from pipeline.job.listing import list_sources, source_id
from pipeline.poses import Poses
from pipeline.skeleton import NUM_KEYPOINTS


def read_poses_file(uri_or_path: str, source_uris: Sequence[str] | None = None) -> pd.DataFrame:
    """The poses table at ``uri_or_path``: one .parquet file (read with pyarrow), else a job
    output folder (read by :func:`pipeline.read_poses`).

    source_uris: keep only the rows of these sources (pushed down to the files); None keeps all.
    Raises FileNotFoundError naming the input when there is no such file or no poses table.
    """
    filters = None if source_uris is None else pc.field("source_uri").isin(pa.array(list(source_uris), pa.string()))
    fs, path = storage.filesystem(storage.absolute_uri(uri_or_path))
    if uri_or_path.endswith(".parquet"):
        if not fs.exists(path):
            raise FileNotFoundError(f"poses file {uri_or_path} not found; pass a posepipe job output "
                                    "folder or a .parquet file")
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as f:
            return pq.read_table(f, filters=filters).to_pandas()
    if not fs.exists(storage.join(path, "poses")):
        raise FileNotFoundError(f"no poses table under {uri_or_path}; pass a posepipe job output "
                                "folder or a .parquet file")
    from pipeline import read_poses

    return read_poses(uri_or_path, filters=filters)


def job_source_ids(source_uris: Sequence[str]) -> list[str]:
    """The ``source_id`` a job gives each of these URIs (:func:`pipeline.job.listing.source_id`
    over the URI, size in bytes and ETag/mtime as the job's listing sees the file now), so rows
    made here join with a job's rows on the same files. A URI that cannot be listed (no such
    file, not a media file) gets ``source_id(uri, 0, "")``, which no listed file has."""
    ids: dict[str, str] = {}
    for uri in dict.fromkeys(source_uris):
        listed, _ = list_sources([storage.absolute_uri(uri)])
        ids[uri] = listed[0].source_id if len(listed) == 1 else source_id(uri, 0, "")
    return [ids[uri] for uri in source_uris]


def poses_frame(source_uris: Sequence[str], keypoints: np.ndarray, scores: np.ndarray, *,
                model_id: str, config_id: str, shard_id: str) -> pd.DataFrame:
    """A poses.v1 DataFrame of N people in still images (frame 0).

    source_uris: N image URIs; keypoints: float [N, 18, 3] (x, y, score in pixels; missing = NaN,
    NaN, 0); scores: [N] person scores. Rows are ordered by URI and descending score, with
    person_index counting from 0 per image; bbox is :meth:`pipeline.poses.Poses.bboxes` (the
    box around the found keypoints, as the job writes it); source_id is :func:`job_source_ids`'s
    (each image is listed, not read).
    """
    kps = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    scores = np.asarray(scores, np.float32)
    if not len(source_uris) == len(kps) == len(scores):
        raise ValueError(f"poses_frame: {len(source_uris)} URIs, {len(kps)} keypoint sets and {len(scores)} "
                         "scores must agree")
    order = sorted(range(len(kps)), key=lambda i: (source_uris[i], -scores[i]))
    bboxes = Poses(kps, scores).bboxes()
    ids = job_source_ids(source_uris)
    person_index: dict[str, int] = {}
    rows = []
    for i in order:
        uri, k = source_uris[i], kps[i]
        person_index[uri] = person_index.get(uri, -1) + 1
        rows.append({
            "source_uri": uri, "source_id": ids[i], "frame_index": 0,
            "timestamp_s": None, "person_index": person_index[uri], "track_id": None, "score": scores[i],
            "bbox": bboxes[i], "keypoints": k.reshape(-1), "num_keypoints": int((k[:, 2] > 0).sum()),
            "model_id": model_id, "config_id": config_id, "shard_id": shard_id,
        })
    df = pd.DataFrame(rows, columns=[f.name for f in tables.schema("poses")])
    return df.astype({"frame_index": "int64", "timestamp_s": "float64", "person_index": "int32",
                      "track_id": "Int64", "score": "float32", "num_keypoints": "int32"})


def poses_table(poses: pd.DataFrame) -> pa.Table:
    """The pyarrow Table (full poses.v1 schema, source_id included) of a poses DataFrame.

    Nullable columns may be absent (all null) and hold None/NaN/NA for null; others must be there.
    """
    columns = {}
    for f in tables.schema("poses"):
        if f.name not in poses.columns:
            if f.nullable:
                continue
            raise ValueError(f"poses DataFrame lacks column {f.name!r} of the poses.v1 schema")
        values = [None if _is_null(v) else v for v in poses[f.name].tolist()]
        has_null = any(v is None for v in values)
        if pa.types.is_fixed_size_list(f.type) and not has_null:
            columns[f.name] = (np.stack([np.asarray(v, np.float32) for v in values]) if values
                               else np.zeros((0, f.type.list_size), np.float32))
        elif pa.types.is_fixed_size_list(f.type):
            columns[f.name] = [None if v is None else np.asarray(v, np.float32).tolist() for v in values]
        else:
            columns[f.name] = values
    return tables.from_columns("poses", columns)


def _is_null(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def write_poses_parquet(poses: pd.DataFrame, uri: str) -> None:
    """Write ``poses`` to ``uri`` (local path or fsspec URI ending in .parquet) as one Parquet file."""
    if not uri.endswith(".parquet"):
        raise ValueError(f"output {uri} must name a .parquet file")
    fs, path = storage.filesystem(storage.absolute_uri(uri))
    storage.write_table_atomic(fs, path, poses_table(poses))
