"""Run a registered network + the PAF parser over the images of a COCO annotation file."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.evaluation.coco_format import CocoJson, annotation_folder, image_uri, load_coco_json
from pipeline.evaluation.poses_table import poses_frame

#: Images per runner call: bounds the memory held by PoseFields between inference and parsing.
CHUNK = 8


def predict_coco(model_name: str, annotations: CocoJson, configs: Sequence = (), *,
                 image_dir: str | None = None, scales: Sequence[float] = (1.0,), flip: bool = False,
                 model_dir: str | os.PathLike | None = None) -> list[pd.DataFrame]:
    """Poses of every image listed in ``annotations``, one poses.v1 DataFrame per parser config.

    model_name: a registered network (see :func:`pipeline.models.list_models`), run on CPU through
    :class:`pipeline.models.inference.PoseNetRunner` with ``scales`` (factors of the network's
    target height) and optional ``flip`` averaging; the network runs once and every
    :class:`pipeline.parsing.ParseConfig` in ``configs`` (default: ``ParseConfig()``, greedy)
    parses the same maps. Images are read (local path or fsspec URI) and decoded as the job does
    from ``image_dir`` (default: the annotation file's folder) joined with ``images[].file_name``;
    ``source_uri`` is that path. ``config_id`` is the one a ``posepipe run`` job with the same
    model, scales, flip and parse settings writes (:meth:`pipeline.job.spec.JobSpec.config_id`).
    """
    from pipeline.job.decode import decode_image
    from pipeline.job.spec import build_spec
    from pipeline.models import model_id
    from pipeline.models.inference import PoseNetRunner
    from pipeline.parsing import ParseConfig, parse

    configs = list(configs) or [ParseConfig()]
    images = load_coco_json(annotations).get("images")
    if not images:
        raise ValueError("the annotation file lists no images to run the model on")
    root = image_dir if image_dir is not None else annotation_folder(annotations)
    uris = [image_uri(root, str(img["file_name"])) for img in images]
    runner = PoseNetRunner(model_name, scales=scales, flip=flip, model_dir=model_dir)
    people: list[list[tuple[str, np.ndarray, float]]] = [[] for _ in configs]
    for start in range(0, len(uris), CHUNK):
        chunk = uris[start:start + CHUNK]
        pixels = [decode_image(_read(u), u) for u in chunk]
        for uri, fields in zip(chunk, runner(pixels)):
            for out, cfg in zip(people, configs):
                found = parse(fields, cfg)
                out += [(uri, found.keypoints[p], float(found.scores[p])) for p in range(len(found))]
    frames = []
    for out, cfg in zip(people, configs):
        config_id = build_spec({
            "input": uris, "output": "memory://predict_coco",  # the job that would label these; nothing is written
            "model": model_name, "device": "cpu", "scales": list(runner.scales), "flip": flip,
            "parse": cfg.to_dict()}, source="predict_coco").config_id()
        kps = np.stack([k for _, k, _ in out]) if out else np.zeros((0, 18, 3), np.float32)
        frames.append(poses_frame([u for u, _, _ in out], kps, [s for _, _, s in out],
                                  model_id=model_id(model_name), config_id=config_id, shard_id="evaluation"))
    return frames


def _read(uri: str) -> bytes:
    from pipeline import storage

    fs, path = storage.filesystem(storage.absolute_uri(uri))
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"cannot read image {uri}; pass image_dir= (the folder holding the "
                                "annotation file's images)") from None
