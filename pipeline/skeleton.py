"""The COCO-18 body layout shared by every part of posepipe (no torch, no parsing).

Keypoint order, limbs (part pairs) and which PAF channels hold each limb's (x, y) vector
follow the OpenPose COCO-18 convention used by every network in the registry.
"""
from __future__ import annotations

KEYPOINTS: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear",
)
NUM_KEYPOINTS = len(KEYPOINTS)  # 18
NUM_HEATMAPS = NUM_KEYPOINTS + 1  # 18 parts + background (channel 18)
BACKGROUND_CHANNEL = 18

#: Limbs as (part a, part b) keypoint indices, in OpenPose order. The last two (ear-shoulder)
#: are the redundant connections the paper adds for robustness.
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
NUM_LIMBS = len(LIMBS)  # 19
NUM_PAFS = 2 * NUM_LIMBS  # 38

#: For limb k, the (x, y) channel indices within the 38 PAF channels.
PAF_CHANNELS: tuple[tuple[int, int], ...] = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)

#: COCO-17 (evaluation order) -> COCO-18 index. The neck (COCO-18 index 1) has no COCO-17 twin.
COCO17_FROM_COCO18: tuple[int, ...] = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
COCO17_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
