"""track_video on synthetic skeleton sequences with known identities (compared as partitions)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.video.tracking import TrackConfig, assign_across, similarity_matrix, track_video

from .synthetic import rows_from, same_partition, skeleton, walker

CONFIGS = [TrackConfig(), TrackConfig(matcher="greedy"), TrackConfig(similarity="distance"),
           TrackConfig(similarity="distance", matcher="greedy")]


def _crossing(frames=range(60)):
    return {
        0: walker((100, 200), (10, 0), frames),            # left -> right
        1: walker((700, 230), (-10, 0), frames),           # right -> left, crosses at frame ~30
        2: walker((400, 120), (0, 3), frames, height=150),  # walks down through the crossing
    }


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.similarity}-{c.matcher}")
def test_crossing_paths_keep_identities(config):
    df = rows_from(_crossing(), seed=1)
    ids, tracks = track_video(df, config)
    assert same_partition(df["truth_id"], ids)
    assert len(tracks) == 3 and tracks["length"].tolist() == [60, 60, 60]


def test_motion_prediction_is_what_keeps_crossers_apart():
    # two same-size people crossing on the same line: without motion, identities swap
    people = {0: walker((100, 200), (12, 0), range(50)), 1: walker((700, 200), (-12, 0), range(50))}
    df = rows_from(people, seed=2)
    assert same_partition(df["truth_id"], track_video(df, TrackConfig())[0])
    assert not same_partition(df["truth_id"],
                              track_video(df, TrackConfig(predict_motion=False))[0])


def test_short_gap_keeps_track_long_gap_starts_new_one():
    frames_a = [f for f in range(50) if not 10 <= f < 14]  # missing 4 frames (max_gap 5)
    frames_b = [f for f in range(50) if not 20 <= f < 30]  # missing 10 frames
    df = rows_from({0: walker((100, 300), (5, 0), frames_a), 1: walker((600, 100), (-4, 2), frames_b)})
    ids, tracks = track_video(df, TrackConfig(max_gap=5))
    truth = df["truth_id"] * 10 + ((df["truth_id"] == 1) & (df["frame_index"] >= 30))
    assert same_partition(truth, ids)
    assert len(tracks) == 3
    # with a longer tolerance the 10-frame gap is bridged too
    assert same_partition(df["truth_id"], track_video(df, TrackConfig(max_gap=12))[0])


def test_people_entering_and_leaving():
    people = {0: walker((50, 200), (8, 0), range(0, 80)),
              1: walker((600, 150), (-6, 1), range(20, 45)),   # enters at 20, leaves after 44
              2: walker((300, 350), (3, -2), range(50, 80))}   # enters at 50
    df = rows_from(people, seed=3)
    ids, tracks = track_video(df)
    assert same_partition(df["truth_id"], ids)
    t = tracks.set_index("track_id")
    first = ids[df["frame_index"] == 20].loc[lambda s: df.loc[s.index, "truth_id"] == 1].iloc[0]
    assert (t.loc[first, "first_frame"], t.loc[first, "last_frame"], t.loc[first, "length"]) == (20, 44, 25)
    assert t.loc[first, "first_timestamp_s"] == pytest.approx(2.0)
    assert t.loc[first, "last_timestamp_s"] == pytest.approx(4.4)
    assert tracks["track_id"].tolist() == [0, 1, 2]  # ids in order of first appearance


def test_every_kth_frame_sampling_counts_gaps_in_steps():
    frames = [f for f in range(0, 200, 5) if f not in (50, 55)]  # sampled every 5, 2 samples lost
    df = rows_from({0: walker((100, 200), (2, 0), frames), 1: walker((700, 200), (-2, 0.5), frames)})
    assert same_partition(df["truth_id"], track_video(df, TrackConfig(max_gap=3))[0])


def test_result_is_independent_of_row_order_and_index():
    df = rows_from(_crossing(), seed=4)
    ids, tracks = track_video(df)
    shuffled = df.sample(frac=1.0, random_state=0)
    ids2, tracks2 = track_video(shuffled)
    pd.testing.assert_series_equal(ids2.reindex(df.index), ids)
    pd.testing.assert_frame_equal(tracks, tracks2)
    relabelled = shuffled.set_axis([f"r{i}" for i in range(len(df))])
    ids3, _ = track_video(relabelled)
    assert ids3.tolist() == ids2.tolist()


def test_empty_and_single_pose_inputs():
    empty = pd.DataFrame(
        columns=["frame_index", "timestamp_s", "person_index", "score", "keypoints"])
    ids, tracks = track_video(empty)
    assert len(ids) == 0 and len(tracks) == 0 and "mean_score" in tracks
    one = rows_from({0: {7: skeleton((10, 10), 100)}})
    ids, tracks = track_video(one)
    assert ids.tolist() == [0] and tracks.iloc[0][["first_frame", "last_frame", "length"]].tolist() == [7, 7, 1]


def test_similarity_and_assignment_building_blocks():
    a = np.stack([skeleton((100, 100), 150), skeleton((400, 100), 150)])
    b = a[::-1].copy()
    b[0, 3:, :2] = np.nan
    b[0, 3:, 2] = 0
    for kind in ("oks", "distance"):
        sim = similarity_matrix(a, b, kind)
        assert sim.shape == (2, 2) and sim[0, 1] == pytest.approx(1.0) and sim[1, 0] == pytest.approx(1.0)
        assert sim[0, 0] < 0.05
    assert assign_across(a, b) == [(0, 1), (1, 0)]
    assert assign_across(a, b[:1]) == [(1, 0)]
    assert assign_across(a[:0], b) == []
    with pytest.raises(ValueError):
        TrackConfig(matcher="magic")
