"""Export-test fixtures: one real job output (the default network on 3 sample photos, one of them
with nobody, and the 5-frame sample video) made once per session, and controlnet_aux's own drawing."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import pytest

PHOTOS = ("p1.jpg", "COCO_val2014_000000000357.jpg", "cat.jpg")
VIDEO = "mmpose-demo-5frames.mp4"


@pytest.fixture(scope="session")
def job_output(tmp_path_factory, media_dir: Path, ray_local) -> str:
    """A posepipe job output folder made by the real job (``posepipe run``) on the sample media."""
    from pipeline.cli import main

    out = tmp_path_factory.mktemp("job") / "out"
    inputs = [str(media_dir / "images" / p) for p in PHOTOS] + [str(media_dir / "video" / VIDEO)]
    status = main(["run", "--input", *inputs, "--output", str(out), "--no-progress"])
    assert status == 0, f"posepipe run exited with {status}"
    return str(out)


@pytest.fixture(scope="session")
def draw_bodypose():
    """controlnet_aux's ``open_pose.util.draw_bodypose`` and its ``Keypoint``, loaded from the installed
    files (``make install`` adds controlnet-aux with --no-deps) without running its package __init__."""
    spec = importlib.util.find_spec("controlnet_aux")
    if spec is None:
        pytest.fail("controlnet_aux is not installed; run `make install` (it installs controlnet-aux --no-deps)")
    root = Path(spec.submodule_search_locations[0])
    saved = {k: sys.modules.get(k) for k in ("controlnet_aux", "controlnet_aux.open_pose")}
    for name, folder in (("controlnet_aux", root), ("controlnet_aux.open_pose", root / "open_pose")):
        package = types.ModuleType(name)  # the package shells only: their __init__.py files never run
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    try:
        util = importlib.import_module("controlnet_aux.open_pose.util")
        body = sys.modules["controlnet_aux.open_pose.body"]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return util.draw_bodypose, body.Keypoint
