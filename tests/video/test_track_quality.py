"""identity_scores (motmetrics IDF1 / ID switches) on hand-counted cases."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.video.track_quality import identity_scores


def test_perfect_tracks_score_one():
    s = identity_scores([0, 0, 1, 1, 2], [5, 6, 5, 6, 5], [0, 1, 0, 1, 0])
    assert s["idf1"] == 1.0 and s["id_switches"] == 0 and s["mota"] == 1.0


def test_an_identity_switch_halfway_is_counted_once():
    # one person over 4 frames; the track id changes after frame 1: IDTP = 2 of 4 -> IDF1 = 2*2 / (4 + 4)
    s = identity_scores([0, 1, 2, 3], [7, 7, 7, 7], [0, 0, 1, 1])
    assert s["idf1"] == pytest.approx(0.5) and s["id_switches"] == 1


def test_untracked_people_are_misses_and_tracked_clutter_is_false_positive():
    # frames 0-2: person 3 tracked as 0 except frame 2 (no track); clutter (-1) tracked as 9 in frame 1
    frames = [0, 1, 1, 2]
    truth = [3, 3, -1, 3]
    track = pd.array([0, 0, 9, pd.NA], dtype="Int64")
    s = identity_scores(frames, truth, track)
    assert (s["misses"], s["false_positives"]) == (1, 1)
    # IDTP = 2; truth rows 3, predicted rows 3 -> IDF1 = 4 / 6
    assert s["idf1"] == pytest.approx(4 / 6) and s["idp"] == pytest.approx(2 / 3) and s["idr"] == pytest.approx(2 / 3)
    assert identity_scores(frames, truth, np.array([0.0, 0.0, 9.0, np.nan]))["idf1"] == pytest.approx(4 / 6)
