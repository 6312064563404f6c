"""COCO keypoint AP/AR with pycocotools' own COCOeval (iouType="keypoints", OKS matching).

:func:`evaluate` scores results against a ``person_keypoints`` annotation file and adds a
per-image breakdown (each image evaluated alone through ``params.imgIds``).
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipeline.evaluation.coco_format import (
    CocoJson, export_coco, image_ids_from_annotations, load_coco_json,
)

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
    """Score ``results`` against the COCO keypoint ground truth ``annotations`` with COCOeval.

    results:     a poses DataFrame (exported with image ids from the annotations' file names),
                 a COCO results list, or a path/URI of a results JSON file.
    annotations: a person_keypoints JSON (path, URI or loaded dict).
    per_image:   also evaluate every image alone (adds one COCOeval run per image).
    Detections on images absent from the annotations are an error (COCOeval would refuse them).
    """
    from pycocotools.coco import COCO

    gt_data = load_coco_json(annotations)
    if isinstance(results, pd.DataFrame):
        results = export_coco(results, image_ids_from_annotations(gt_data))
    dts = load_coco_json(results)
    if not isinstance(dts, list):
        raise ValueError("results must be a poses DataFrame or a COCO results list "
                         "([{image_id, category_id, keypoints, score}, ...])")
    gt = _quiet(COCO)
    gt.dataset = _checked_annotations(gt_data)
    _quiet(gt.createIndex)
    unknown = sorted({int(d["image_id"]) for d in dts} - set(gt.getImgIds()))
    if unknown:
        raise ValueError(f"results name image ids {unknown[:5]} that the annotation file does not "
                         "list; export with --annotations so ids come from its file names")
    # loadRes adds area/bbox/id to each dict it is given: hand it copies.
    dt = _quiet(gt.loadRes, [dict(d) for d in dts]) if dts else _empty_results(gt)
    stats, summary = _run(gt, dt, gt.getImgIds())
    scored = {img: sum(1 for a in gt.imgToAnns[img] if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0)
              for img in gt.getImgIds()}
    submitted = {img: len(dt.imgToAnns.get(img, [])) for img in gt.getImgIds()}
    rows = []
    if per_image:
        for img in sorted(gt.getImgIds()):
            ap = _run(gt, dt, [img])[0]["AP"] if scored[img] else None
            rows.append(ImageResult(img, str(gt.imgs[img].get("file_name", "")), ap, scored[img], submitted[img]))
    return EvalResult(stats, rows, len(gt.getImgIds()), sum(scored.values()), len(dts), summary)


def _run(gt, dt, img_ids: list[int]) -> tuple[dict[str, float | None], str]:
    from pycocotools.cocoeval import COCOeval

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ev = COCOeval(gt, dt, iouType="keypoints")
        ev.params.imgIds = list(img_ids)
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
    missing = [a.get("id") for a in data["annotations"] if "keypoints" not in a or "num_keypoints" not in a]
    if missing:
        raise ValueError(f"annotations {missing[:5]} have no 'keypoints'/'num_keypoints'; use a person_keypoints "
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
