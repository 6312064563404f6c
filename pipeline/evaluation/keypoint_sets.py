"""Keypoint layouts of pose datasets (COCO-17, CrowdPose-14, PoseTrack-17) and how the network's COCO-18
predictions map onto them for OKS evaluation.

Only the joints both sides have are scored ("scored joints"); the others are left out of the OKS of
ground truth and detections alike, so a missing joint type costs nothing:

| layout | file keypoints | scored | not scored (no COCO-18 twin) | OKS sigmas |
|---|---|---|---|---|
| coco-17 | 17 | all 17 | - | COCO's (pycocotools) |
| crowdpose-14 | shoulders, elbows, wrists, hips, knees, ankles, head, neck | the 12 limb joints + neck (OpenPose's neck) | head (top of the head) | CrowdPose's (crowdposetools: .079 .072 .062 .107 .087 .089, head and neck .079) |
| posetrack-17 | COCO order with head_bottom, head_top in place of the eyes | nose, ears, the 12 limb joints | head_bottom, head_top (no network part at the chin or crown) | COCO's for the same-named joints |

PoseTrack leaves the ears unlabelled, so in practice nose + 12 limb joints are scored there.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.skeleton import COCO17_KEYPOINTS, KEYPOINTS

#: COCO-18 index of each COCO-17-named joint, and of the neck.
_COCO18_OF = {**{name: KEYPOINTS.index(ours) for name, ours in zip(COCO17_KEYPOINTS, (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist",
    "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle"))}, "neck": KEYPOINTS.index("neck")}
#: COCO's OKS sigmas (pycocotools COCOeval.Params, keypoints), by COCO-17 name.
COCO_SIGMAS = dict(zip(COCO17_KEYPOINTS, np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0))
_LIMB_JOINTS = COCO17_KEYPOINTS[5:]


@dataclass(frozen=True)
class KeypointSet:
    """A dataset's keypoint layout.

    keypoints: joint names in the annotation file's order; coco18: the COCO-18 index of each, or
    None where the network has no such part (not scored); sigmas: OKS sigma of each joint.
    """

    name: str
    keypoints: tuple[str, ...]
    coco18: tuple[int | None, ...]
    sigmas: tuple[float, ...]

    @property
    def scored(self) -> np.ndarray:
        """int [K'] indices (into ``keypoints``) of the joints that are scored."""
        return np.array([i for i, c in enumerate(self.coco18) if c is not None], np.int64)

    @property
    def scored_sigmas(self) -> np.ndarray:
        """float64 [K'] OKS sigmas of the scored joints (COCOeval params.kpt_oks_sigmas)."""
        return np.asarray(self.sigmas, np.float64)[self.scored]

    def from_coco18(self, keypoints: np.ndarray) -> np.ndarray:
        """float64 [P, K', 3] scored joints (x, y, score; missing: 0, 0, 0) of float [P, 18, 3] COCO-18
        keypoints (NaN or score <= 0 = missing)."""
        idx = np.array([self.coco18[i] for i in self.scored], np.int64)
        kp = np.asarray(keypoints, np.float64)[:, idx, :]
        kp[~np.isfinite(kp[..., :2]).all(axis=-1) | ~(kp[..., 2] > 0)] = 0.0
        return kp

    def restrict(self, keypoints: Sequence[float]) -> list[float]:
        """The scored joints' 3 K' values of one annotation or result in this layout (3 K values)."""
        kp = np.asarray(keypoints, np.float64).reshape(len(self.keypoints), 3)[self.scored]
        return [float(v) for v in kp.reshape(-1)]


def _set(name: str, keypoints: Sequence[str], maps: Mapping[str, str | None], sigmas: Mapping[str, float]):
    return KeypointSet(name, tuple(keypoints), tuple(None if maps[k] is None else _COCO18_OF[maps[k]]
                                                     for k in keypoints), tuple(float(sigmas[k]) for k in keypoints))


COCO17 = _set("coco-17", COCO17_KEYPOINTS, {k: k for k in COCO17_KEYPOINTS}, COCO_SIGMAS)
CROWDPOSE14 = _set(
    "crowdpose-14", (*_LIMB_JOINTS, "head", "neck"), {**{k: k for k in _LIMB_JOINTS}, "head": None, "neck": "neck"},
    {**{k: COCO_SIGMAS[k] for k in _LIMB_JOINTS}, "head": 0.079, "neck": 0.079})
POSETRACK17 = _set(
    "posetrack-17", ("nose", "head_bottom", "head_top", *COCO17_KEYPOINTS[3:]),
    {"nose": "nose", "head_bottom": None, "head_top": None, **{k: k for k in COCO17_KEYPOINTS[3:]}},
    {**COCO_SIGMAS, "head_bottom": COCO_SIGMAS["left_eye"], "head_top": COCO_SIGMAS["right_eye"]})
KEYPOINT_SETS = (COCO17, CROWDPOSE14, POSETRACK17)


def keypoint_set_of(annotations: Mapping) -> KeypointSet:
    """The layout of a loaded COCO-style annotation file: by its person category's keypoint names,
    else (no names) by the number of values per annotation (51: COCO-17, 42: CrowdPose-14; COCO-17
    when there are no annotations).

    Raises ValueError naming the layout found and the supported ones.
    """
    names = None
    for cat in annotations.get("categories") or []:
        if cat.get("keypoints"):
            names = tuple(str(n).lower() for n in cat["keypoints"])
            break
    if names is not None:
        for kset in KEYPOINT_SETS:
            if names == kset.keypoints:
                return kset
        raise ValueError(f"annotations use an unsupported keypoint layout ({len(names)} keypoints: "
                         f"{', '.join(names)}); posepipe eval supports "
                         f"{', '.join(f'{k.name} ({len(k.keypoints)})' for k in KEYPOINT_SETS)}")
    sizes = {len(a.get("keypoints", [])) for a in annotations.get("annotations", [])}
    if not sizes:
        return COCO17  # no people to score: the layout does not matter
    by_size = {3 * len(k.keypoints): k for k in (COCO17, CROWDPOSE14)}
    if len(sizes) == 1 and (size := sizes.pop()) in by_size:
        return by_size[size]
    raise ValueError(f"annotations name no keypoints in categories[] and have {sorted(sizes)} values per person; "
                     "add the person category's 'keypoints' names (COCO-17, CrowdPose-14 or PoseTrack-17)")
