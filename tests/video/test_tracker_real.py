"""Track stability on the real walking-people video: real network (omz-lightweight), real parser."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.video import FrameRange, iter_frames, probe
from pipeline.video import track_video

from .conftest import WALKING

FRAMES = FrameRange(670, 700)  # 30 consecutive frames (3 s): a person turns, walks out of view (~frame 693)


@pytest.mark.slow
def test_track_ids_stay_stable_on_walking_video(video_dir):
    from pipeline.models.inference import PoseNetRunner
    from pipeline.parsing import parse

    src = video_dir / WALKING
    frames = list(iter_frames(src, FRAMES, probe(src)))
    fields = PoseNetRunner("omz-lightweight", batch_size=4)([f.image for f in frames])
    rows = []
    for frame, f in zip(frames, fields):
        poses = parse(f)
        for p in range(len(poses)):
            rows.append({"frame_index": frame.index, "timestamp_s": frame.timestamp_s, "person_index": p,
                         "score": float(poses.scores[p]), "keypoints": poses.keypoints[p].ravel(),
                         "num_keypoints": int((poses.keypoints[p, :, 2] > 0).sum())})
    df = pd.DataFrame(rows)
    tracked, tracks = track_video(df)
    confident = df[(df["num_keypoints"] >= 8) & (df["score"] > 0.3)].assign(track=tracked["track_id"])
    assert confident["frame_index"].nunique() >= 20  # found in (nearly) every frame until they leave
    main_id = confident.sort_values("score", ascending=False).drop_duplicates("frame_index") \
        .sort_values("frame_index")["track"].to_numpy(dtype=float, na_value=np.nan)
    switches = int((np.diff(main_id) != 0).sum())
    assert switches <= 1, f"track id of the walking person switched {switches} times: {main_id}"
    top = tracks.sort_values("length", ascending=False).iloc[0]
    assert top["length"] >= 20 and top["first_frame"] <= 672 and top["last_frame"] >= 688
    # the person really moves (over 100 px, up to ~30 px per frame), so stability is not trivial
    neck = np.stack(confident[confident["track"] == top["track_id"]]["keypoints"].to_numpy())[:, 3:5]
    neck = neck[np.isfinite(neck).all(1)]
    assert np.abs(neck[-1] - neck[0]).max() > 100
    # every-2nd-frame sampling of the same poses keeps one identity too
    half = df[df["frame_index"] % 2 == 0]
    ids2 = track_video(half)[0]["track_id"]
    assert ids2[half.index.isin(confident.index)].nunique() <= 2
