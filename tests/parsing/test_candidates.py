"""find_candidates: peaks and PAF-scored candidate limbs; checks of the maps it is given."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.fields import PoseFields
from pipeline.parsing import find_candidates, parse, render_fields
from pipeline.skeleton import LIMBS
from pipeline.testing import (grid_people, person)


def _fields(hm, pf, size=(656, 368)):
    return PoseFields(heatmaps=hm, pafs=pf, scale=(8.0, 8.0), offset=(3.5, 3.5), image_size=size)


@pytest.mark.parametrize("name", ["heatmaps", "pafs"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_maps_are_a_clear_error(name, value):
    fields = render_fields(person(300, 180, 250.0)[None], (656, 368))
    arr = getattr(fields, name).copy()
    arr[3, 10, 20] = value
    broken = PoseFields(**{**fields.__dict__, name: arr})
    with pytest.raises(ValueError, match=rf"PoseFields\.{name} holds 1 NaN/inf"):
        parse(broken)



def test_wrong_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="needs a pipeline.fields.PoseFields"):
        parse(np.zeros((57, 46, 82), np.float32))
    with pytest.raises(ValueError, match="float array"):
        parse(_fields(np.zeros((19, 46, 82), np.int32), np.zeros((38, 46, 82), np.float32)))


def test_limb_candidates_are_much_smaller_than_the_maps():
    rng = np.random.default_rng(4)
    draws = np.stack([rng.uniform(0, 1, 20), rng.uniform(-3, 3, 20), rng.uniform(-1, 1, 20),
                      rng.uniform(-1, 1, 20)], axis=1)
    fields = render_fields(grid_people((656, 368), draws, min_height=30.0), (656, 368))
    cands = find_candidates(fields)
    maps = fields.heatmaps.nbytes + fields.pafs.nbytes
    assert cands.part_start[-1] == 20 * 18
    assert cands.nbytes() * 20 < maps, (cands.nbytes(), maps)


def test_peaks_and_candidates_are_consistent():
    sk = person(300.4, 170.2, 250.0)[None]
    fields = render_fields(sk, (656, 368))
    cands = find_candidates(fields)
    np.testing.assert_allclose(cands.peak_xy, sk[0, :, :2], atol=1e-3)
    np.testing.assert_allclose(fields.cells_to_pixels(cands.peak_cell), cands.peak_xy, atol=1e-3)
    for k, (a, b) in enumerate(LIMBS):  # exactly the true limb, with the mean projection ~1
        ca, cb, score = cands.limb(k)
        assert ca.tolist() == [a] and cb.tolist() == [b]
        assert 0.9 < score[0] <= 1.0

