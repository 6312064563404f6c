"""Tracking quality against known identities: IDF1 and ID switches (motmetrics, the standard
MOTChallenge implementation), per pose row.

motmetrics is a test/benchmark dependency (the ``dev`` extra), imported when a score is computed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def identity_scores(frame_index, truth_id, track_id) -> dict[str, float]:
    """IDF1, IDP, IDR, ID switches, MOTA, false positives and misses of track ids over pose rows.

    frame_index [N] int; truth_id [N] int: the person each row really is (negative: not a person,
    e.g. a false detection); track_id [N]: the tracker's id (NaN / None / pd.NA: no track). Every
    row is one detection, so a truth person and a track are paired in a frame only on the same row
    (distance 0); a tracked false detection is a false positive, an untracked person a miss.
    Returns {"idf1", "idp", "idr", "id_switches", "mota", "false_positives", "misses"}.
    """
    try:
        import motmetrics
    except ImportError as exc:  # pragma: no cover - motmetrics ships with posepipe[dev]
        raise ImportError("identity_scores needs motmetrics: pip install 'posepipe[dev]' (or motmetrics)") from exc
    frames = np.asarray(frame_index, np.int64)
    truth = np.asarray(truth_id, np.int64)
    tracks = pd.to_numeric(pd.Series(track_id, dtype=object), errors="coerce").to_numpy(np.float64)
    acc = motmetrics.MOTAccumulator(auto_id=False)
    for f in np.unique(frames):
        rows = np.flatnonzero(frames == f)
        gt = rows[truth[rows] >= 0]
        hyp = rows[np.isfinite(tracks[rows])]
        dist = np.where(gt[:, None] == hyp[None, :], 0.0, np.nan)
        acc.update(truth[gt].tolist(), tracks[hyp].astype(np.int64).tolist(), dist, frameid=int(f))
    names = {"idf1": "idf1", "idp": "idp", "idr": "idr", "id_switches": "num_switches", "mota": "mota",
             "false_positives": "num_false_positives", "misses": "num_misses"}
    summary = motmetrics.metrics.create().compute(acc, metrics=list(names.values()), name="scene")
    return {key: float(summary[col].iloc[0]) for key, col in names.items()}
