"""THE ACCURACY GATE: the default network + parser on real COCO val2017 images, scored by COCOeval.

Default pipeline: omz-lightweight, single scale, no flip, ParseConfig() (greedy matching).
Measured on coco-val2017-mini (4 images, 12 scorable people): AP 0.620 (AP50 0.832), see
docs/accuracy.md; the gate allows 0.05 below that.
"""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.evaluation import evaluate
from pipeline.evaluation.poses_table import write_poses_parquet
from pipeline.evaluation.predict import predict_coco
from pipeline.parsing import ParseConfig

MEASURED_AP = 0.620
GATE_AP = MEASURED_AP - 0.05


@pytest.fixture(scope="module")
def default_predictions(ann_path, model_dir):
    greedy, hungarian = predict_coco("omz-lightweight", ann_path,
                                     [ParseConfig(matching="greedy"), ParseConfig(matching="hungarian")],
                                     model_dir=model_dir)
    return greedy, hungarian


def test_default_model_meets_the_coco_ap_gate(default_predictions, ann_path):
    greedy, _ = default_predictions
    res = evaluate(greedy, ann_path)
    print("\n" + res.table())
    assert res.ap >= GATE_AP, f"COCO AP {res.ap:.3f} fell below the gate {GATE_AP:.3f} (measured {MEASURED_AP})"
    # every annotated image yields people, and the single-person image is found
    assert all(r.num_dt > 0 for r in res.per_image)
    assert max(r.ap for r in res.per_image) > 0.9


def test_hungarian_matching_meets_the_gate_too(default_predictions, ann_path):
    _, hungarian = default_predictions
    assert evaluate(hungarian, ann_path).ap >= GATE_AP


def test_predictions_are_a_poses_table(default_predictions, ann_path, tmp_path):
    greedy, _ = default_predictions
    assert greedy["model_id"].str.startswith("omz-lightweight@").all()
    assert (greedy["num_keypoints"] >= ParseConfig().min_parts).all()
    out = tmp_path / "pred.parquet"
    write_poses_parquet(greedy, str(out))  # schema-checked on write
    assert evaluate(pd.read_parquet(out), ann_path).stats == evaluate(greedy, ann_path).stats
