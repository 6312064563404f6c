"""COCO keypoint AP/AR with pycocotools' own COCOeval (iouType="keypoints", OKS matching).

:func:`evaluate` scores results against a ``person_keypoints`` annotation file and adds a
per-image breakdown (each image evaluated alone through ``params.imgIds``). Annotation files in the
CrowdPose-14 and PoseTrack-17 layouts are scored on the joints they share with the network's COCO-18
parts, with their own OKS sigmas (pipeline.evaluation.keypoint_sets); images are matched to the
poses' source URIs by their relative path (``images[].file_name``), so base names may repeat.
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipeline.evaluation.coco_format import PERSON_CATEGORY_ID, CocoJson, load_coco_json
from pipeline.evaluation.keypoint_sets import COCO17, KeypointSet, keypoint_set_of
from pipeline.job.read import keypoints_array

#: Names of COCOeval.stats for iouType="keypoints", in its order (AP/AR over OKS 0.50:0.95, maxDets 20).
METRICS: tuple[str, ...] = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


@dataclass(frozen=True)
class ImageResult:
    """One image scored alone. ap: OKS AP in [0, 1], None when the image has no scorable person
    (COCOeval's -1); num_gt: people COCOeval scores (not crowd, >= 1 labelled keypoint);
    num_dt: detections submitted for the image."""

    image_id: int
    file_name: str
    ap: float | None
    num_gt: int
    num_dt: int


@dataclass(frozen=True)
class EvalResult:
    """COCO keypoint metrics. stats: {name in METRICS: value in [0, 1], or None where COCOeval
    reports -1 (no ground truth in that area range)}; per_image: one ImageResult per annotated
    image; summary: COCOeval.summarize()'s printed text."""

    stats: dict[str, float | None]
    per_image: list[ImageResult]
    num_images: int
    num_gt: int
    num_dt: int
    summary: str = field(repr=False, default="")

    @property
    def ap(self) -> float:
        """OKS AP averaged over thresholds 0.50:0.95 (0 when nothing is scorable)."""
        return self.stats["AP"] or 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict (no NaN: undefined values are null)."""
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """The metrics and the per-image breakdown as fixed-width text."""
        fmt = lambda v: "   -" if v is None else f"{v:.3f}"  # noqa: E731
        lines = ["  ".join(f"{m:>5}" for m in METRICS),
                 "  ".join(f"{fmt(self.stats[m]):>5}" for m in METRICS),
                 "",
                 f"{'image_id':>10}  {'file_name':<24} {'AP':>5}  {'GT':>3}  {'DT':>3}"]
        lines += [f"{r.image_id:>10}  {r.file_name:<24} {fmt(r.ap):>5}  {r.num_gt:>3}  {r.num_dt:>3}"
                  for r in self.per_image]
        lines.append(f"{'all':>10}  {f'{self.num_images} images':<24} {fmt(self.stats['AP']):>5}  "
                     f"{self.num_gt:>3}  {self.num_dt:>3}")
        return "\n".join(lines)


def evaluate(results: pd.DataFrame | list | CocoJson, annotations: CocoJson,
             per_image: bool = True) -> EvalResult:
    """Score ``results`` against the keypoint ground truth ``annotations`` with COCOeval.

    results:     a poses DataFrame (image ids from the annotations' file names, matched as
                 relative paths: see :func:`image_ids_by_path`), a results list in the annotation
                 file's layout (or COCO-17 for COCO files), or a path/URI of a results JSON file.
    annotations: a person_keypoints JSON (path, URI or loaded dict) in the COCO-17, CrowdPose-14 or
                 PoseTrack-17 layout (see pipeline.evaluation.keypoint_sets; only the joints the
                 network also predicts are scored).
    per_image:   also evaluate every image alone (adds one COCOeval run per image).
    Detections on images absent from the annotations are an error (COCOeval would refuse them).
    """
    from pycocotools.coco import COCO

    gt_data = _checked_annotations(load_coco_json(annotations))
    kset = keypoint_set_of(gt_data)
    if isinstance(results, pd.DataFrame):
        dts = results_from_poses(results, image_ids_by_path(results["source_uri"].unique(), gt_data), kset)
    else:
        dts = load_coco_json(results)
        if not isinstance(dts, list):
            raise ValueError("results must be a poses DataFrame or a COCO results list "
                             "([{image_id, category_id, keypoints, score}, ...])")
        dts = [_restricted_result(d, kset) for d in dts]
    gt = _quiet(COCO)
    gt.dataset = _restricted_annotations(gt_data, kset)
    _quiet(gt.createIndex)
    unknown = sorted({int(d["image_id"]) for d in dts} - set(gt.getImgIds()))
    if unknown:
        raise ValueError(f"results name image ids {unknown[:5]} that the annotation file does not "
                         "list; export with --annotations so ids come from its file names")
    # loadRes adds area/bbox/id to each dict it is given: hand it copies.
    dt = _quiet(gt.loadRes, [dict(d) for d in dts]) if dts else _empty_results(gt)
    stats, summary = _run(gt, dt, gt.getImgIds(), kset.scored_sigmas)
    scored = {img: sum(1 for a in gt.imgToAnns[img] if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0)
              for img in gt.getImgIds()}
    submitted = {img: len(dt.imgToAnns.get(img, [])) for img in gt.getImgIds()}
    rows = []
    if per_image:
        for img in sorted(gt.getImgIds()):
            ap = _run(gt, dt, [img], kset.scored_sigmas)[0]["AP"] if scored[img] else None
            rows.append(ImageResult(img, str(gt.imgs[img].get("file_name", "")), ap, scored[img], submitted[img]))
    return EvalResult(stats, rows, len(gt.getImgIds()), sum(scored.values()), len(dts), summary)


def image_ids_by_path(source_uris, annotations: Mapping) -> dict[str, int]:
    """{source URI: image id} for the URIs whose path ends with an image's ``file_name`` (as path
    components, so "seq1/000001.jpg" matches ".../val/seq1/000001.jpg" but not ".../seq2/000001.jpg");
    the longest matching file_name wins. URIs matching no image are left out (:func:`results_from_poses`
    names them). Raises ValueError when two images match a URI equally well.
    """
    by_name: dict[tuple[str, ...], list[int]] = {}
    for img in annotations["images"]:
        parts = tuple(p for p in str(img["file_name"]).replace("\\", "/").split("/") if p not in ("", "."))
        by_name.setdefault(parts, []).append(int(img["id"]))
    depth = max((len(k) for k in by_name), default=0)
    out: dict[str, int] = {}
    for uri in source_uris:
        parts = tuple(p for p in str(uri).split("/") if p)
        for n in range(min(depth, len(parts)), 0, -1):
            ids = by_name.get(parts[-n:])
            if ids:
                if len(ids) > 1:
                    raise ValueError(f"{uri} matches {len(ids)} images named {'/'.join(parts[-n:])!r} in the "
                                     "annotation file (ids " + ", ".join(map(str, ids[:5])) + "); give each image "
                                     "a distinct file_name (its path relative to the image root)")
                out[str(uri)] = ids[0]
                break
    return out


def results_from_poses(poses: pd.DataFrame, image_ids: Mapping[str, int], kset: KeypointSet = COCO17) -> list[dict]:
    """Keypoint results (one dict per person with a scored joint found) of a poses DataFrame, in
    ``kset``'s scored joints: ``{"image_id", "category_id": 1, "keypoints": 3 K' floats (x, y, score;
    missing 0, 0, 0), "score": the person score}``. image_ids: {source_uri: id}; rows of video frames
    or of URIs without an id are an error naming them."""
    results: list[dict] = []
    if len(poses) == 0:
        return results
    kps = kset.from_coco18(keypoints_array(poses))
    for uri, frame, kp, score in zip(poses["source_uri"], poses["frame_index"], kps, poses["score"]):
        if not (kp[:, 2] > 0).any():
            continue  # nothing to score: it would only count as a false positive
        if int(frame) != 0 or uri not in image_ids:
            raise ValueError(f"no image id for {uri} frame {int(frame)}: no images[].file_name of the annotation "
                             "file is the end of its path; check that the file lists this image "
                             "(file_name relative to the image root)")
        results.append({"image_id": int(image_ids[uri]), "category_id": PERSON_CATEGORY_ID,
                        "keypoints": [float(v) for v in kp.reshape(-1)], "score": float(score)})
    return results


def _restricted_result(result: Mapping, kset: KeypointSet) -> dict:
    """A results dict with its keypoints cut to ``kset``'s scored joints (it must be in ``kset``'s layout)."""
    n = len(result.get("keypoints", ()))
    if n != 3 * len(kset.keypoints):
        raise ValueError(f"a result for image {result.get('image_id')} has {n // 3} keypoints but the annotations "
                         f"use the {kset.name} layout ({len(kset.keypoints)}); write results in the annotation "
                         "file's layout, or pass the poses table (it is mapped onto any supported layout)")
    return {**result, "keypoints": kset.restrict(result["keypoints"])}


def _restricted_annotations(data: Mapping, kset: KeypointSet) -> dict:
    """A copy of an annotation dict with each person cut to ``kset``'s scored joints (num_keypoints
    recounted over them; where a file lacks them, ``area`` from the box and ``iscrowd`` 0)."""
    anns = []
    for a in data["annotations"]:
        kp = kset.restrict(a["keypoints"])
        area = a["area"] if "area" in a else float(a["bbox"][2] * a["bbox"][3]) if "bbox" in a else 0.0
        anns.append({**a, "keypoints": kp, "num_keypoints": int(sum(v > 0 for v in kp[2::3])), "area": area,
                     "iscrowd": a.get("iscrowd", 0)})
    return {**data, "annotations": anns}


def _run(gt, dt, img_ids: list[int], sigmas: np.ndarray) -> tuple[dict[str, float | None], str]:
    from pycocotools.cocoeval import COCOeval

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.imgIds = list(img_ids)
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {m: (None if v < 0 else float(v)) for m, v in zip(METRICS, np.asarray(ev.stats, float))}
    summary = "\n".join(l for l in out.getvalue().splitlines() if l.startswith(" Average"))
    return stats, summary


def _checked_annotations(data: Mapping) -> dict:
    """A shallow copy of an annotation dict, after checking it has what COCOeval needs."""
    if not isinstance(data, Mapping) or "annotations" not in data or "images" not in data:
        raise ValueError("annotations must be a COCO keypoint annotation file with 'images' and "
                         "'annotations' (e.g. person_keypoints_val2017.json)")
    missing = [a.get("id") for a in data["annotations"] if "keypoints" not in a]
    if missing:
        raise ValueError(f"annotations {missing[:5]} have no 'keypoints'; use a person_keypoints "
                         "file, not instances_*.json")
    return dict(data)


def _empty_results(gt):
    """A COCO results object with no detections (COCO.loadRes rejects an empty list)."""
    from pycocotools.coco import COCO

    dt = _quiet(COCO)
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": list(gt.dataset.get("categories", [])),
                  "annotations": []}
    _quiet(dt.createIndex)
    return dt


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)
