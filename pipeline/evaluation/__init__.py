"""Measurable accuracy: COCO keypoint export/import, COCOeval AP, and a job's quality summary."""
from pipeline.evaluation.coco_eval import METRICS, EvalResult, ImageResult, evaluate
from pipeline.evaluation.coco_format import export_coco, image_ids_from_annotations, import_coco
from pipeline.evaluation.quality import quality_summary

__all__ = ["METRICS", "EvalResult", "ImageResult", "evaluate", "export_coco", "image_ids_from_annotations",
           "import_coco", "quality_summary"]
