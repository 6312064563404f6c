"""Conversion between the ``poses`` table (COCO-18 rows) and COCO keypoint JSON (COCO-17).

Coordinates need no shift: the poses table puts pixel centres at integer coordinates, and COCO
keypoints are 0-indexed pixel coordinates measured the same way (pixel (0, 0) is at x = y = 0).

* :func:`export_coco`  poses DataFrame -> COCO keypoint *results* list (what COCOeval scores).
* :func:`import_coco`  COCO ground truth (``person_keypoints_*.json``) or another tool's results
  -> poses DataFrame in the poses.v1 schema, so outputs of different tools compare in pandas.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Union

import numpy as np
import pandas as pd

from pipeline.evaluation.poses_table import poses_frame, write_poses_parquet
from pipeline.job.read import keypoints_array
from pipeline.skeleton import COCO17_FROM_COCO18, KEYPOINTS, NUM_KEYPOINTS

PERSON_CATEGORY_ID = 1
_COCO17 = np.asarray(COCO17_FROM_COCO18)
_NECK = KEYPOINTS.index("neck")
_R_SHOULDER, _L_SHOULDER = KEYPOINTS.index("r_shoulder"), KEYPOINTS.index("l_shoulder")

#: Image-id lookup key: a source URI, a file base name, or (source_uri, frame_index) for video frames.
ImageKey = Union[str, tuple[str, int]]
CocoJson = Union[str, os.PathLike, Mapping[str, Any], list]


def load_coco_json(source: CocoJson) -> Any:
    """The parsed JSON of ``source`` (a local path or fsspec URI, or an already-loaded object)."""
    if isinstance(source, (Mapping, list)):
        return source
    import fsspec

    try:
        with fsspec.open(os.fspath(source), "rt") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"COCO JSON file {source!s} not found; check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{source!s} is not valid JSON ({e}); expected a COCO annotation or results file") from None


def image_ids_from_annotations(annotations: CocoJson) -> dict[str, int]:
    """``{images[].file_name: images[].id}`` of a COCO annotation file (path or loaded dict)."""
    data = load_coco_json(annotations)
    if not isinstance(data, Mapping) or "images" not in data:
        raise ValueError(f"{_name(annotations)} has no 'images' list; pass a COCO annotation file "
                         "such as person_keypoints_val2017.json")
    return {str(img["file_name"]): int(img["id"]) for img in data["images"]}


def coco17_from_coco18(keypoints: np.ndarray) -> np.ndarray:
    """float64 [P, 51] COCO results keypoints from float [P, 18, 3] poses keypoints.

    Found keypoints keep (x, y, score); missing ones (NaN x/y or score <= 0) become 0, 0, 0.
    COCOeval reads only x and y of a detection; the third value carries the keypoint score as
    OpenPose and AlphaPose results files do.
    """
    kp = np.asarray(keypoints, dtype=np.float64)[:, _COCO17, :]
    missing = ~np.isfinite(kp[..., :2]).all(axis=-1) | ~(kp[..., 2] > 0)
    kp[missing] = 0.0
    return kp.reshape(len(kp), -1)


def coco18_from_coco17(keypoints: np.ndarray, present: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float32 [P, 18, 3] poses keypoints from COCO-17 data.

    keypoints: [P, 17, 2] x, y in pixels; present: bool [P, 17]; scores: [P, 17] per-keypoint score.
    Missing keypoints get x = y = NaN and score 0. The neck (absent from COCO-17) is the midpoint of
    the shoulders with the lower shoulder score when both shoulders are present, else missing.
    """
    n = len(keypoints)
    out = np.full((n, NUM_KEYPOINTS, 3), np.nan, np.float32)
    out[..., 2] = 0.0
    xys = np.where(present[..., None], keypoints, np.nan)
    out[:, _COCO17, :2] = xys
    out[:, _COCO17, 2] = np.where(present, scores, 0.0)
    both = present[:, COCO17_FROM_COCO18.index(_R_SHOULDER)] & present[:, COCO17_FROM_COCO18.index(_L_SHOULDER)]
    r, l = out[:, _R_SHOULDER], out[:, _L_SHOULDER]
    out[both, _NECK, :2] = (r[both, :2] + l[both, :2]) / 2
    out[both, _NECK, 2] = np.minimum(r[both, 2], l[both, 2])
    return out


def export_coco(poses: pd.DataFrame, image_ids: Mapping[ImageKey, int] | None = None) -> list[dict]:
    """COCO keypoint results (one dict per person) for the rows of a poses DataFrame.

    Each result is ``{"image_id", "category_id": 1, "keypoints": 51 floats (COCO-17 x, y, score),
    "score": the row's person score}``. People with no keypoint found are left out (they carry
    nothing to score and would only count as false positives).

    image_ids maps a row to its COCO image id, looked up by ``(source_uri, frame_index)``, then,
    for frame 0, by ``source_uri`` and by the URI's base name (``images[].file_name`` of an
    annotation file: see :func:`image_ids_from_annotations`). With ``image_ids=None`` the id is the
    numeric file stem, as in COCO's own file names (``000000000785.jpg`` -> 785).
    """
    results: list[dict] = []
    if len(poses) == 0:
        return results
    kps = coco17_from_coco18(keypoints_array(poses))
    ids = [_image_id(uri, int(frame), image_ids)
           for uri, frame in zip(poses["source_uri"], poses["frame_index"])]
    found = (kps[:, 2::3] > 0).any(axis=1)
    for image_id, kp, score, keep in zip(ids, kps, poses["score"], found):
        if keep:
            results.append({"image_id": image_id, "category_id": PERSON_CATEGORY_ID,
                            "keypoints": [float(v) for v in kp], "score": float(score)})
    return results


def _image_id(uri: str, frame: int, image_ids: Mapping[ImageKey, int] | None) -> int:
    base = _basename(uri)
    if image_ids is None:
        stem = os.path.splitext(base)[0]
        if frame == 0 and stem.isdigit():
            return int(stem)
        raise ValueError(f"no COCO image id for {uri} frame {frame}: its name is not a COCO id; "
                         "pass the annotation file (--annotations) so ids come from images[].file_name")
    for key in ((uri, frame), *((uri, base) if frame == 0 else ())):
        if key in image_ids:
            return int(image_ids[key])
    hint = ("key video frames as (source_uri, frame_index)" if frame else
            "check that the annotation file lists this image (images[].file_name)")
    raise ValueError(f"no COCO image id for {uri} frame {frame} in the given image ids; {hint}")


def import_coco(source: CocoJson, annotations: CocoJson | None = None, *,
                image_root: str | None = None, model_id: str | None = None,
                output_uri: str | None = None) -> pd.DataFrame:
    """A poses DataFrame (poses.v1 schema, one row per person) from COCO keypoint JSON.

    source:      a COCO annotation file (``{"images", "annotations", ...}``, e.g.
                 person_keypoints_val2017.json) or a results list (``[{"image_id", "keypoints",
                 "score"}, ...]``) from this or another tool; path, fsspec URI or loaded object.
    annotations: the annotation file a results list refers to (gives image file names); not
                 needed when ``source`` is itself an annotation file.
    image_root:  folder joined to ``images[].file_name`` to form ``source_uri``; defaults to the
                 annotation file's folder (a bare file name for loaded objects).
    model_id:    the ``model_id`` column; defaults to ``coco-ground-truth`` or ``coco-results:<file>``.
    output_uri:  when given, the table is also written there as Parquet (poses.v1 schema).

    Ground truth: crowd regions (iscrowd=1) are skipped; labelled keypoints (v > 0) get score 1.0
    and person score 1.0. Results: keypoints with score <= 0 are missing. COCO-17 becomes
    COCO-18 with the neck at the shoulders' midpoint (see :func:`coco18_from_coco17`); rows are
    ordered by image and descending person score. ``bbox`` and ``source_id`` follow the job's
    rules (see :func:`pipeline.evaluation.poses_table.poses_frame`), so the rows join with a
    job's output over the same image files on ``source_id``.
    """
    data = load_coco_json(source)
    if isinstance(data, Mapping) and "annotations" in data:
        images_from, anns, ground_truth = source, list(data["annotations"]), True
        images = data.get("images")
    elif isinstance(data, list):
        if annotations is None:
            raise ValueError(f"{_name(source)} is a COCO results list, which names images only by id; "
                             "pass annotations= (the person_keypoints JSON it was scored against)")
        images_from, anns, ground_truth = annotations, data, False
        images = load_coco_json(annotations).get("images")
    else:
        raise ValueError(f"{_name(source)} is neither a COCO annotation file (dict with 'annotations') "
                         "nor a COCO results list")
    if images is None:
        raise ValueError(f"{_name(images_from)} has no 'images' list to name the images by")
    root = image_root if image_root is not None else annotation_folder(images_from)
    uri_of = {int(img["id"]): image_uri(root, str(img["file_name"])) for img in images}
    anns = [a for a in anns if a.get("category_id", PERSON_CATEGORY_ID) == PERSON_CATEGORY_ID
            and not (ground_truth and a.get("iscrowd", 0))]
    unknown = sorted({int(a["image_id"]) for a in anns} - set(uri_of))
    if unknown:
        raise ValueError(f"{_name(source)} refers to image ids {unknown[:5]} missing from "
                         f"{_name(images_from)}'s images; is it the right annotation file?")
    if model_id is None:
        model_id = "coco-ground-truth" if ground_truth else f"coco-results:{_basename(_name(source))}"
    raw = np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), 17, 3)
    present = raw[..., 2] > 0
    kps = coco18_from_coco17(raw[..., :2], present, np.ones_like(raw[..., 2]) if ground_truth else raw[..., 2])
    scores = np.asarray([1.0 if ground_truth else a["score"] for a in anns], dtype=np.float32)
    frame = poses_frame([uri_of[int(a["image_id"])] for a in anns], kps, scores,
                        model_id=model_id, config_id="coco-import", shard_id="coco-import")
    if output_uri is not None:
        write_poses_parquet(frame, output_uri)
    return frame


def _basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def annotation_folder(source: CocoJson) -> str:
    """The folder of a COCO JSON path or URI ("" for an already-loaded object)."""
    if isinstance(source, (Mapping, list)):
        return ""
    s = os.fspath(source)
    return s.rsplit("/", 1)[0] if "/" in s else ""


def image_uri(root: str, file_name: str) -> str:
    """``root/file_name`` (just ``file_name`` when root is ""), for local paths and URIs alike."""
    return f"{root.rstrip('/')}/{file_name}" if root else file_name


def _name(source: Any) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the given COCO object"
