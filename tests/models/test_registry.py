"""The registry: entries, builders named by dotted path, model_id, and that importing it costs no torch."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from pipeline.models import WeightsEntry, WeightsFile, get, list_models, model_id, register
from pipeline.models import registry
from pipeline.models.registry import Preprocessing


def _torch_free(code: str) -> None:
    """Run ``code`` in a fresh interpreter, then assert torch was never imported."""
    check = "import sys\n" + code + "\nassert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", check], check=True, timeout=120)


def test_registry_never_imports_torch():
    _torch_free("import pipeline.models, pipeline.models.registry\n"
                "from pipeline.models import get, list_models, model_id\n"
                "assert 'omz-lightweight' in list_models()\n"
                "assert get('tfpose-mobilenet-thin').builder.endswith(':build_tfpose')\n"
                "assert model_id('omz-lightweight').startswith('omz-lightweight@')\n"
                "assert 'cv2' not in sys.modules and 'openvino' not in sys.modules")


def test_job_spec_validation_never_imports_torch(tmp_path):
    _torch_free("from pipeline.job.spec import build_spec\n"
                f"spec = build_spec({{'input': [{str(tmp_path)!r}], 'output': {str(tmp_path / 'out')!r}, "
                "'model': 'tfpose-mobilenet-thin'})\n"
                "assert spec.model == 'tfpose-mobilenet-thin'")


def test_every_entry_names_an_importable_builder():
    for name in list_models():
        entry = get(name)
        assert callable(entry.builder_function()), name
        assert entry.preprocessing.bucket % entry.preprocessing.stride == 0
    assert get("omz-lightweight").openvino_ir == ("human-pose-estimation-0001.xml", "human-pose-estimation-0001.bin")


@pytest.fixture
def scratch_registry(monkeypatch):
    """Entries registered by a test disappear after it."""
    list_models()  # the catalog is loaded into the real registry first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_model_id_covers_every_weights_file(scratch_registry):
    """Two entries that differ only in their second file get different ids (the first file's
    sha256 alone used to be the id)."""
    def entry(name: str, second_sha: str) -> WeightsEntry:
        return WeightsEntry(name=name, architecture="test", folder="f", builder="pipeline.models.catalog:register",
                            files=(WeightsFile("a.bin", "1" * 64), WeightsFile("b.xml", second_sha)),
                            preprocessing=Preprocessing(), license="test", source_url="-")

    one, other = entry("test-two-files-a", "2" * 64), entry("test-two-files-b", "3" * 64)
    expected = hashlib.sha256(f"a.bin {'1' * 64}\nb.xml {'2' * 64}".encode()).hexdigest()
    assert one.weights_digest == expected and other.weights_digest != expected
    register(one), register(other)
    assert model_id("test-two-files-a") == f"test-two-files-a@{expected[:8]}"
    assert model_id("test-two-files-a").split("@")[1] != model_id("test-two-files-b").split("@")[1]


def test_bad_entries_and_names_are_refused(scratch_registry):
    with pytest.raises(KeyError, match="unknown model 'nope'; known models: .*omz-lightweight"):
        get("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(get("omz-lightweight"))
    bad = WeightsEntry(name="test-bad-builder", architecture="test", folder="f", files=(),
                       builder="pipeline.models.lightweight_openpose.build_omz",
                       preprocessing=Preprocessing(), license="test", source_url="-")
    with pytest.raises(ValueError, match="dotted path 'package.module:function'"):
        register(bad)
    missing = WeightsEntry(name="test-missing-builder", architecture="test", folder="f", files=(),
                           builder="pipeline.models.no_such_module:build", preprocessing=Preprocessing(),
                           license="test", source_url="-")
    with pytest.raises(ImportError, match="builder 'pipeline.models.no_such_module:build' of model"):
        missing.build({})
