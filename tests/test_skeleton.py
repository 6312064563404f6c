"""The COCO-18 layout: internally consistent and as ../shared/README.md documents it."""
from __future__ import annotations

import re

from pipeline import skeleton


def test_layout_matches_the_shared_readme(shared_dir):
    text = (shared_dir / "README.md").read_text()
    order = re.search(r"Keypoint order \(COCO-18\): ([^.]*)\.", text).group(1)
    assert [name for _, name in re.findall(r"(\d+) (\w+)", order)] == list(skeleton.KEYPOINTS)
    limbs = re.search(r"Limbs \(part pairs\), in order:\n(.*)\n", text).group(1)
    assert [tuple(map(int, p)) for p in re.findall(r"\((\d+),(\d+)\)", limbs)] == list(skeleton.LIMBS)
    channels = re.search(r"first = x, second = y\):\n(.*)\n", text).group(1)
    assert [tuple(map(int, p)) for p in re.findall(r"\[(\d+),(\d+)\]", channels)] == list(skeleton.PAF_CHANNELS)


def test_counts_and_channels_are_consistent():
    assert (skeleton.NUM_KEYPOINTS, skeleton.NUM_HEATMAPS, skeleton.NUM_LIMBS, skeleton.NUM_PAFS) == (18, 19, 19, 38)
    assert skeleton.BACKGROUND_CHANNEL == skeleton.NUM_HEATMAPS - 1
    assert sorted(c for pair in skeleton.PAF_CHANNELS for c in pair) == list(range(skeleton.NUM_PAFS))
    # The last two limbs are the redundant ear-shoulder connections.
    names = [(skeleton.KEYPOINTS[a], skeleton.KEYPOINTS[b]) for a, b in skeleton.LIMBS[-2:]]
    assert names == [("r_shoulder", "r_ear"), ("l_shoulder", "l_ear")]


def test_coco17_mapping_pairs_the_same_body_parts():
    assert len(skeleton.COCO17_FROM_COCO18) == len(skeleton.COCO17_KEYPOINTS) == 17
    assert skeleton.KEYPOINTS.index("neck") not in skeleton.COCO17_FROM_COCO18
    short = {"left": "l", "right": "r"}
    for name17, k18 in zip(skeleton.COCO17_KEYPOINTS, skeleton.COCO17_FROM_COCO18):
        side, _, part = name17.partition("_")
        assert skeleton.KEYPOINTS[k18] == (f"{short[side]}_{part}" if part else name17)
