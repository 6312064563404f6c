"""ray_cluster.yaml is a valid Ray cluster-launcher config (checked offline with Ray's own validation)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parents[2] / "ray_cluster.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_passes_ray_schema_and_launcher_defaults(config):
    validate_config(config)                 # Ray's ray-schema.json + its cross-field checks
    prepared = prepare_config(config)       # what `ray up` does before touching AWS
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] == "head"


def test_node_types_split_network_and_parsing(config):
    types = config["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}, "work must not land on the head"
    gpu, cpu = types["gpu"], types["cpu"]
    # A GPU node is up when a job starts (the job sizes its network pool from the GPUs present).
    assert gpu["resources"]["GPU"] >= 1 and gpu["max_workers"] > gpu["min_workers"] >= 1
    assert "GPU" not in cpu["resources"] and cpu["max_workers"] > cpu["min_workers"] == 0
    assert gpu["node_config"]["InstanceType"].startswith(("g5.", "g6.", "g6e."))
    assert sum(t.get("max_workers", 0) for t in types.values()) >= config["max_workers"]


def test_s3_by_instance_profile_and_project_installed(config):
    for name, node_type in config["available_node_types"].items():
        arn = node_type["node_config"]["IamInstanceProfile"]["Arn"]
        assert ":instance-profile/" in arn, name
    setup = "\n".join(config["setup_commands"])
    assert "[s3,video]" in setup and "posepipe" in setup
    assert "POSEPIPE_MODEL_DIR" in setup
    assert config["docker"] == {}
    assert "--dashboard-port=8265" in " ".join(config["head_start_ray_commands"])


def test_schema_rejects_a_broken_config(config):
    """The validation above is not vacuous: an unknown top-level key fails it."""
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate_config(dict(config, max_wrokers=3))
