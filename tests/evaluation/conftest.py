"""Fixtures for the evaluation tests: the real COCO val2017 mini ground truth from ../shared."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import keypoints_array
from pipeline.evaluation import import_coco


@pytest.fixture(scope="session")
def coco_mini(shared_dir: Path) -> Path:
    """Folder holding person_keypoints.json and the 4 COCO val2017 images."""
    return shared_dir / "eval" / "coco-val2017-mini"


@pytest.fixture(scope="session")
def ann_path(coco_mini: Path) -> Path:
    return coco_mini / "person_keypoints.json"


@pytest.fixture(scope="session")
def ann(ann_path: Path) -> dict:
    return json.loads(ann_path.read_text())


@pytest.fixture
def noisy_poses(ann_path):
    """make(seed) -> the ground truth as a model-like poses DataFrame: jittered keypoints, varied
    scores, some keypoints dropped."""

    def make(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        df = import_coco(ann_path)
        kps = keypoints_array(df)
        found = kps[..., 2] > 0
        kps[..., :2] += rng.normal(0, 3, kps[..., :2].shape).astype(np.float32)
        kps[..., 2] = np.where(found, rng.uniform(0.05, 1, found.shape), 0).astype(np.float32)
        drop = found & (rng.uniform(size=found.shape) < 0.2)
        kps[drop] = (np.nan, np.nan, 0)
        df["keypoints"] = list(kps.reshape(len(df), -1))
        df["score"] = rng.uniform(0.1, 1, len(df)).astype(np.float32)
        df["num_keypoints"] = (kps[..., 2] > 0).sum(axis=1).astype(np.int32)
        return df

    return make
