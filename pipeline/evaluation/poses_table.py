"""Poses DataFrames in the poses.v1 schema: built from keypoint arrays, written as one Parquet file."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline import storage, tables
from pipeline.skeleton import NUM_KEYPOINTS


def poses_frame(source_uris: Sequence[str], keypoints: np.ndarray, scores: np.ndarray, *,
                model_id: str, config_id: str, shard_id: str) -> pd.DataFrame:
    """A poses.v1 DataFrame of N people in still images (frame 0).

    source_uris: N image URIs; keypoints: float [N, 18, 3] (x, y, score in pixels; missing = NaN,
    NaN, 0); scores: [N] person scores. Rows are ordered by URI and descending score, with
    person_index counting from 0 per image; bbox spans the found keypoints; source_id is a sha256
    prefix of the URI (nothing is read).
    """
    kps = np.asarray(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    scores = np.asarray(scores, np.float32)
    if not len(source_uris) == len(kps) == len(scores):
        raise ValueError(f"poses_frame: {len(source_uris)} URIs, {len(kps)} keypoint sets and {len(scores)} "
                         "scores must agree")
    order = sorted(range(len(kps)), key=lambda i: (source_uris[i], -scores[i]))
    person_index: dict[str, int] = {}
    rows = []
    for i in order:
        uri, k = source_uris[i], kps[i]
        xy = k[k[:, 2] > 0, :2]
        lo, hi = (xy.min(axis=0), xy.max(axis=0)) if len(xy) else (np.zeros(2), np.zeros(2))
        person_index[uri] = person_index.get(uri, -1) + 1
        rows.append({
            "source_uri": uri, "source_id": hashlib.sha256(uri.encode()).hexdigest()[:16], "frame_index": 0,
            "timestamp_s": None, "person_index": person_index[uri], "track_id": None, "score": scores[i],
            "bbox": np.asarray([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32),
            "keypoints": k.reshape(-1), "num_keypoints": int(len(xy)),
            "model_id": model_id, "config_id": config_id, "shard_id": shard_id,
        })
    df = pd.DataFrame(rows, columns=[f.name for f in tables.schema("poses")])
    return df.astype({"frame_index": "int64", "timestamp_s": "float64", "person_index": "int32",
                      "track_id": "Int64", "score": "float32", "num_keypoints": "int32"})


def poses_table(poses: pd.DataFrame) -> pa.Table:
    """The pyarrow Table (full poses.v1 schema, source_id included) of a poses DataFrame."""
    columns = {}
    for f in tables.schema("poses"):
        if f.name not in poses.columns:
            raise ValueError(f"poses DataFrame lacks column {f.name!r} of the poses.v1 schema")
        col = poses[f.name]
        if pa.types.is_fixed_size_list(f.type):
            columns[f.name] = (np.stack([np.asarray(v, np.float32) for v in col]) if len(col)
                               else np.zeros((0, f.type.list_size), np.float32))
        else:
            columns[f.name] = [None if v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v
                               for v in col.tolist()]
    return tables.from_columns("poses", columns)


def write_poses_parquet(poses: pd.DataFrame, uri: str) -> None:
    """Write ``poses`` to ``uri`` (local path or fsspec URI ending in .parquet) as one Parquet file."""
    if not uri.endswith(".parquet"):
        raise ValueError(f"output {uri} must name a .parquet file")
    fs, path = storage.filesystem(storage.absolute_uri(uri))
    storage.write_table_atomic(fs, path, poses_table(poses))
