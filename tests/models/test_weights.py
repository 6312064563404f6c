"""Model directory, fsspec URIs and sha256 checks for weight files (real OMZ files from ../shared)."""
from __future__ import annotations

import hashlib
import shutil

import fsspec
import numpy as np
import pytest
import torch

from pipeline.models import WeightsError, get, list_models, load_model, model_id
from pipeline.models.weights import MODEL_DIR_ENV, default_model_dir, fetch_files, weight_path

ENTRY = "omz-lightweight"


def test_registry_lists_the_default_model():
    assert ENTRY in list_models()
    entry = get(ENTRY)
    assert entry.license == "Apache-2.0" and entry.published_ap == 42.8
    # model_id covers every weights file (issue 10: it used to hash only the first, "@fc7e9dde")
    digest = hashlib.sha256("\n".join(f"{f.name} {f.sha256}" for f in sorted(entry.files, key=lambda f: f.name))
                            .encode()).hexdigest()
    assert len(entry.files) == 2 and model_id(ENTRY) == f"omz-lightweight@{digest[:8]}" == "omz-lightweight@17e2a784"


def test_model_dir_comes_from_env_or_user_cache(monkeypatch):
    monkeypatch.setenv(MODEL_DIR_ENV, "s3://bucket/models")
    assert default_model_dir() == "s3://bucket/models"
    assert weight_path(get(ENTRY), "a.bin") == "s3://bucket/models/omz-human-pose-estimation-0001-int8/a.bin"
    monkeypatch.delenv(MODEL_DIR_ENV)
    assert default_model_dir().replace("\\", "/").endswith("posepipe/models")


def test_missing_file_error_says_where_and_how(tmp_path):
    with pytest.raises(WeightsError) as exc:
        fetch_files(get(ENTRY), tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "omz-human-pose-estimation-0001-int8" / "human-pose-estimation-0001.bin") in msg
    assert MODEL_DIR_ENV in msg and "storage.openvinotoolkit.org" in msg


def test_sha256_mismatch_is_refused(tmp_path, model_dir):
    folder = get(ENTRY).folder
    shutil.copytree(model_dir / folder, tmp_path / folder)
    xml = tmp_path / folder / "human-pose-estimation-0001.xml"
    xml.chmod(0o644)
    xml.write_bytes(xml.read_bytes().replace(b"human-pose-estimation-0001", b"human-pose-estimation-0002", 1))
    with pytest.raises(WeightsError, match=r"sha256 mismatch for .*human-pose-estimation-0001\.xml: expected c3a47de9"):
        load_model(ENTRY, model_dir=tmp_path)


@pytest.fixture(scope="module")
def reference_output(model_dir):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 96) * 255
    with torch.inference_mode():
        return x, load_model(ENTRY, model_dir=model_dir)(x)


def _same_outputs(model, reference_output) -> bool:
    x, (heat, pafs) = reference_output
    with torch.inference_mode():
        h, p = model(x)
    return bool(torch.equal(h, heat) and torch.equal(p, pafs))


def test_file_uri_model_dir(model_dir, reference_output):
    assert _same_outputs(load_model(ENTRY, model_dir=model_dir.as_uri()), reference_output)


def test_memory_filesystem_model_dir(model_dir, reference_output):
    """Any fsspec filesystem works (here the in-process memory:// one; s3:// goes the same way)."""
    fs = fsspec.filesystem("memory")
    entry = get(ENTRY)
    for f in entry.files:
        fs.pipe(f"/posepipe-test/{entry.folder}/{f.name}", (model_dir / entry.folder / f.name).read_bytes())
    try:
        assert _same_outputs(load_model(ENTRY, model_dir="memory://posepipe-test"), reference_output)
    finally:
        fs.rm("/posepipe-test", recursive=True)


def test_load_model_is_in_eval_mode_on_cpu(model_dir):
    model = load_model(ENTRY, model_dir=model_dir)
    assert not model.training
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert np.isfinite(next(model.parameters()).detach().numpy()).all()
