"""Pretrained PAF networks: the registry, weight files and model construction.

Importing this package is torch-free: the registry (:func:`get`, :func:`list_models`,
:func:`model_id`) and the weight-file checks need no torch. ``load_model(name)`` reads the entry's
files from the model directory (``$POSEPIPE_MODEL_DIR`` or the user cache; local path or fsspec
URI), checks their sha256, imports the entry's builder (which imports torch), builds the
``torch.nn.Module`` and puts it in eval mode. Every network maps float32 [N, 3, H, W] (preprocessed
per its entry) to (heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]) in the COCO-18 layout.
"""
from __future__ import annotations

import os

from pipeline.models.registry import (  # noqa: F401  (public API)
    Preprocessing, WeightsEntry, WeightsFile, get, list_models, model_id, register,
)
from pipeline.models.weights import WeightsError, default_model_dir, fetch_files  # noqa: F401

__all__ = ["get", "list_models", "register", "WeightsEntry", "Preprocessing", "WeightsFile",
           "WeightsError", "load_model", "model_id", "fetch_files", "default_model_dir"]


def load_model(name: str, model_dir: str | os.PathLike | None = None, device: str = "cpu"):
    """The registered network ``name`` as a torch.nn.Module in eval mode on ``device``.

    Weights come from ``<model_dir>/<entry.folder>/`` (default :func:`default_model_dir`), checked
    against their sha256; a missing or corrupt file raises :class:`WeightsError`.
    """
    entry = get(name)
    model = entry.build(fetch_files(entry, model_dir))
    return model.to(device).eval()
