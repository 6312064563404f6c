"""pipeline.storage: literal inputs, absolute paths, and storage_options checked against the real filesystem classes."""
from __future__ import annotations

import inspect
import os

import pytest
import s3fs

from pipeline.storage import (COMMON_STORAGE_OPTIONS, StorageOptionsError, absolute_uri, accepted_storage_options,
                              check_storage_options, split_literal)


def test_split_literal_and_absolute_uri(tmp_path, monkeypatch):
    assert split_literal("literal:shots/shot[1].jpg") == ("shots/shot[1].jpg", True)
    assert split_literal("shots/*.jpg") == ("shots/*.jpg", False)
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("a/../b") == os.path.join(str(tmp_path), "b")
    assert absolute_uri("s3://bucket/x/") == "s3://bucket/x/"


def test_s3_options_are_those_s3fs_takes():
    name, accepted = accepted_storage_options("s3")
    assert name == "s3fs.S3FileSystem"
    own = {p for p in inspect.signature(s3fs.S3FileSystem.__init__).parameters if p not in ("self", "kwargs")}
    assert own <= accepted and COMMON_STORAGE_OPTIONS <= accepted
    assert {"endpoint_url", "key", "secret", "token", "client_kwargs", "anon"} <= accepted
    # Every accepted key really builds a filesystem (no key is listed that s3fs would refuse).
    s3fs.S3FileSystem(endpoint_url="http://127.0.0.1:1", key="k", secret="s", skip_instance_cache=True,
                      use_listings_cache=False, client_kwargs={"region_name": "us-east-1"})
    check_storage_options(["s3://b/in/", "s3://b/out"], {"endpoint_url": "http://x", "key": "k", "secret": "s"})


def test_a_misspelt_option_names_the_right_one_and_lists_the_accepted():
    with pytest.raises(StorageOptionsError) as err:
        check_storage_options(["s3://b/in/", "/local/out"], {"endpoint": "http://x", "key": "k"})
    text = str(err.value)
    assert "'endpoint' (did you mean 'endpoint_url'?)" in text and "s3fs.S3FileSystem" in text
    assert "accepted keys: " in text and "endpoint_url" in text.split("accepted keys: ")[1]
    with pytest.raises(StorageOptionsError, match="'frobnicate' for memory://"):
        check_storage_options(["memory://x/y"], {"frobnicate": 1})


def test_local_locations_take_no_options():
    check_storage_options(["/a", "/b"], {})
    with pytest.raises(StorageOptionsError, match="local paths, which take no storage_options"):
        check_storage_options(["/a", "/b"], {"anon": True})


def test_a_missing_filesystem_package_is_named():
    with pytest.raises(StorageOptionsError, match="cannot check options for nosuchproto://.*not known"):
        check_storage_options(["nosuchproto://a/b"], {"x": 1})
    with pytest.raises(StorageOptionsError, match="cannot check options for gs://.*install gcsfs"):
        check_storage_options(["gs://a/b"], {"x": 1})  # gcsfs is not a dependency
