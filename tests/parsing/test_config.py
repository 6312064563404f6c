"""ParseConfig: OpenPose's defaults, the JSON round trip, clear errors for bad values."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.parsing import ParseConfig


def test_config_defaults_are_openposes():
    cfg = ParseConfig()
    assert (cfg.peak_threshold, cfg.paf_threshold, cfg.paf_samples, cfg.min_support) == (0.1, 0.05, 10, 0.8)
    assert (cfg.distance_prior, cfg.min_parts, cfg.min_mean_score, cfg.matching) == (0.5, 4, 0.4, "greedy")


def test_config_round_trips_through_json():
    cfg = ParseConfig(matching="hungarian", upsample=4, smooth_sigma=1.5, max_people=7)
    assert ParseConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # numpy numbers (from a parameter sweep) are accepted and stored as plain Python numbers
    swept = ParseConfig(peak_threshold=np.float32(0.25), upsample=np.int64(2))
    assert json.loads(json.dumps(swept.to_dict()))["upsample"] == 2 and swept.peak_threshold == 0.25


@pytest.mark.parametrize("bad, words", [
    ({"thre1": 0.1}, "unknown ParseConfig keys ['thre1']"),
    ({"matching": "auction"}, "matching"),
    ({"subpixel": "spline"}, "subpixel"),
    ({"upsample": 0}, "upsample"),
    ({"upsample": 2.5}, "integer"),
    ({"peak_threshold": float("nan")}, "finite"),
    ({"peak_threshold": -0.1}, "peak_threshold"),
    ({"min_support": 1.0}, "min_support"),
    ({"min_parts": 1}, "min_parts"),
    ({"max_people": 0}, "max_people"),
    ({"smooth_sigma": -1}, "smooth_sigma"),
    ({"redundant_limbs": "yes"}, "redundant_limbs"),
])
def test_config_rejects_bad_values(bad, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ParseConfig.from_dict(bad)

