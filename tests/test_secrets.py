"""pipeline.secrets: one masking rule for nested keys, URL user-info, query tokens and free text."""
from __future__ import annotations

import json

import pytest

from pipeline.secrets import MASK, is_secret_key, mask, mask_text, mask_url, secret_paths, secret_values, strip_secrets

PLANTED = {
    "key": "AKIAPLANTED0001", "secret": "planted-secret-0002", "token": "planted-token-0003",
    "password": "planted-pass-0004",
    "client_kwargs": {"aws_secret_access_key": "planted-nested-0005", "aws_session_token": "planted-session-0006",
                      "region_name": "eu-west-1"},
    "config_kwargs": {"nested": [{"ApiKey": "planted-list-0007"}]},
    "endpoint_url": "https://alice:planted-url-0008@s3.example.com:9000",
    "anon": False,
}
SECRETS = [f"planted-{w}" for w in ("secret-0002", "token-0003", "pass-0004", "nested-0005", "session-0006",
                                    "list-0007", "url-0008")] + ["AKIAPLANTED0001"]


@pytest.mark.parametrize("key, secret", [
    ("key", True), ("secret", True), ("aws_secret_access_key", True), ("aws_session_token", True),
    ("AWS_ACCESS_KEY_ID", True), ("SSEKMSKeyId", True), ("password", True), ("api-key", True), ("sig", True),
    ("endpoint_url", False), ("keypoints", False), ("client_kwargs", False), ("region_name", False),
    ("max_pixels", False), ("anon", False), ("username", False),
])
def test_secret_keys_are_judged_by_their_words(key, secret):
    assert is_secret_key(key) is secret


def test_mask_hides_every_planted_secret_and_keeps_the_rest():
    spec = {"input": ["s3://bob:planted-input-0009@bucket/photos/"], "storage_options": PLANTED,
            "model_dir": "https://u:planted-model-0010@models.example/dir", "batch_size": 8}
    masked = mask(spec)
    text = json.dumps(masked)
    for s in SECRETS + ["planted-input-0009", "planted-model-0010"]:
        assert s not in text, s
    so = masked["storage_options"]
    assert so["key"] == so["secret"] == so["client_kwargs"]["aws_secret_access_key"] == MASK
    assert so["config_kwargs"]["nested"][0]["ApiKey"] == MASK
    assert so["endpoint_url"] == "https://alice:***@s3.example.com:9000"
    assert masked["input"] == ["s3://bob:***@bucket/photos/"]
    assert masked["model_dir"] == "https://u:***@models.example/dir"
    assert so["client_kwargs"]["region_name"] == "eu-west-1" and so["anon"] is False and masked["batch_size"] == 8
    assert mask({"token": None, "key": ""}) == {"token": None, "key": ""}  # "not given" stays visible
    assert spec["storage_options"]["secret"] == "planted-secret-0002"  # a copy: the input is unchanged


def test_urls_keep_host_port_and_user():
    assert mask_url("http://host:8080/path") == "http://host:8080/path"
    assert mask_url("see https://user:p@ss:w0rd@h.example/x and s3://b/k") == "see https://user:***@h.example/x and s3://b/k"
    assert mask_url("https://h/o?X-Amz-Signature=abc123&part=2&token=zz") == "https://h/o?X-Amz-Signature=***&part=2&token=***"


def test_mask_text_replaces_known_values_in_free_text():
    secrets = secret_values({"storage_options": PLANTED})
    assert set(SECRETS) <= secrets and "eu-west-1" not in secrets
    message = (f"ClientError: signature for AKIAPLANTED0001 with planted-secret-0002 failed at "
               f"https://alice:planted-url-0008@s3.example.com:9000 (token planted-token-0003)")
    out = mask_text(message, secrets)
    assert not any(s in out for s in SECRETS), out
    assert out.startswith("ClientError: signature for *** with *** failed at https://alice:***@s3.example.com")
    assert mask_text("a 12 b", {"12"}) == "a 12 b"  # too short to search for


def test_strip_secrets_removes_what_would_travel_to_a_cluster():
    spec = {"storage_options": PLANTED, "output": "s3://u:planted-out-0011@b/out", "images_per_shard": 4}
    assert secret_paths(spec) == [
        "storage_options.key", "storage_options.secret", "storage_options.token", "storage_options.password",
        "storage_options.client_kwargs.aws_secret_access_key", "storage_options.client_kwargs.aws_session_token",
        "storage_options.config_kwargs.nested[0].ApiKey", "storage_options.endpoint_url", "output"]
    stripped = strip_secrets(spec)
    text = json.dumps(stripped)
    assert not any(s in text for s in SECRETS + ["planted-out-0011"])
    assert stripped == {"storage_options": {"client_kwargs": {"region_name": "eu-west-1"},
                                            "config_kwargs": {"nested": [{}]},
                                            "endpoint_url": "https://alice@s3.example.com:9000", "anon": False},
                        "output": "s3://u@b/out", "images_per_shard": 4}
