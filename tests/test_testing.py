"""pipeline.testing: the shared test data is what the tests assume it is."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.parsing import ParseConfig, parse, render_fields
from pipeline.skeleton import KEYPOINTS
from pipeline.testing import (TEMPLATE, assert_recovered, check_people, cpu_ms, grid_people, image_id_of, people_for,
                              person, walker, walking_person, write_image)


def test_grid_people_do_not_overlap():
    # Guards the test data: different people's same parts are at least the margin apart.
    sk = grid_people((656, 368), np.tile([1.0, 0.3, 1.0, -1.0], (9, 1)), margin=32.0)
    d = np.linalg.norm(sk[:, None, :, :2] - sk[None, :, :, :2], axis=-1)
    off_diagonal = d[~np.eye(9, dtype=bool)]
    assert off_diagonal.min() >= 32.0

def test_template_is_a_plausible_person():
    # Guards the test data itself: distinct parts, head above hips above ankles.
    assert len(np.unique(TEMPLATE.round(6), axis=0)) == 18
    assert TEMPLATE[0, 1] < TEMPLATE[8, 1] < TEMPLATE[10, 1]



def test_walking_person_is_the_template_anchored_at_the_neck():
    still = walking_person((100.0, 50.0), 200.0, phase=0.0)
    np.testing.assert_allclose(still[:, :2], (TEMPLATE - TEMPLATE[1]) * 200.0 + (100.0, 50.0))
    assert (still[:, 2] == 0.8).all()
    swung = walking_person((100.0, 50.0), 200.0, phase=np.pi / 2)
    moved = np.flatnonzero(np.abs(swung[:, 0] - still[:, 0]) > 1e-9)
    assert [KEYPOINTS[k] for k in moved] == ["r_wrist", "l_wrist", "r_ankle", "l_ankle"]
    path = walker((0, 0), (10, 2), range(3))
    np.testing.assert_allclose(path[2][1, :2], (20, 4))  # the neck moves at the walker's velocity


def test_synthetic_images_carry_their_id_and_truth(tmp_path):
    import cv2

    truth = write_image(tmp_path / "x.png", 300, size=(160, 120))
    assert image_id_of(cv2.imread(str(tmp_path / "x.png"))) == 300
    np.testing.assert_array_equal(truth, people_for(300, (160, 120)))
    assert len(truth) == 0 and len(people_for(7, (320, 240))) == 3


def test_assert_recovered_fails_on_a_wrong_person():
    sk = np.stack([person(80, 100, 120.0), person(240, 100, 120.0)])
    found = parse(render_fields(sk, (320, 200)), ParseConfig())
    assert assert_recovered(found, list(sk), 0.25) <= 0.25
    check_people(found.keypoints, sk, "two people")
    moved = sk.copy()
    moved[0, 4, 0] += 3.0
    with pytest.raises(AssertionError, match="not recovered within 1.0px"):
        assert_recovered(found, list(moved), 1.0)
    with pytest.raises(AssertionError, match="one: found 2 people, expected 1"):
        check_people(found.keypoints, sk[:1], "one")


def test_cpu_ms_counts_this_process_cpu_time_after_a_warm_up():
    import time

    calls = []
    assert cpu_ms(lambda: (calls.append(1), time.sleep(0.02)), repeats=3) < 10  # sleeping is no CPU time
    assert len(calls) == 4

    def burn():
        end = time.process_time() + 0.03
        while time.process_time() < end:
            pass

    assert 25 <= cpu_ms(burn, repeats=3) < 200
