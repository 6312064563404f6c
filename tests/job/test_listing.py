"""Listing inputs: any file name (non-UTF-8, spaces, unicode, glob characters), literal paths,
streaming order, and errors rows instead of exceptions. Real files on the local disk."""
from __future__ import annotations

import io
import os
import shutil

import cv2
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.job.listing import iter_sources, list_sources, local_uri
from pipeline.job.records import ErrorRecord, Source
from pipeline.storage import filesystem

LATIN1_NAME = b"caf\xe9.jpg"  # "café.jpg" in Latin-1: not valid UTF-8


@pytest.fixture
def odd_names(tmp_path, media_dir):
    """A folder of real photos under hostile names, plus a text file and a hidden file."""
    folder = tmp_path / "in put"
    (folder / "sub dir").mkdir(parents=True)
    photo = media_dir / "images" / "p1.jpg"
    names = ["shot[1].jpg", "a b.jpg", "日本語 写真.jpg", "100%.jpg", "star*.jpg", "starfish.jpg", "sub dir/q?.jpg"]
    for name in names:
        shutil.copy(photo, folder / name)
    with open(os.path.join(os.fsencode(folder), LATIN1_NAME), "wb") as f:  # created from bytes, as a Latin-1 system would
        f.write(photo.read_bytes())
    (folder / "notes.txt").write_text("not media")
    (folder / ".hidden.jpg").write_bytes(photo.read_bytes())
    return folder, photo


def test_every_name_is_listed_with_a_utf8_uri_and_opens(odd_names):
    folder, photo = odd_names
    sources, errors = list_sources([str(folder)])
    base = str(folder)
    assert [s.uri for s in sources] == sorted(f"{base}/{n}" for n in [
        "100%.jpg", "a b.jpg", "caf%E9.jpg", "shot[1].jpg", "star*.jpg", "starfish.jpg", "sub dir/q?.jpg",
        "日本語 写真.jpg"])
    assert [os.path.basename(e.input) for e in errors] == ["notes.txt"]
    assert errors[0].error_type == "UnsupportedMediaError"
    latin = next(s for s in sources if "caf" in s.uri)
    assert os.fsencode(latin.open_path) == os.path.join(os.fsencode(base), LATIN1_NAME)
    assert all(s.open_path == s.uri for s in sources if s is not latin)
    expected = cv2.imread(str(photo))
    for s in sources:
        fs, path = filesystem(s.open_path)
        with fs.open(path, "rb") as f:
            data = f.read()
        assert s.size == len(data) == photo.stat().st_size
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(image, expected), s.uri
        # The etag is what fsspec's own listing reports (ids of earlier listings stay valid).
        assert s.etag == str(fsspec.filesystem("file").info(s.open_path)["mtime"])
    # Every URI and error message is a valid Parquet string.
    buf = io.BytesIO()
    pq.write_table(pa.table({"uri": [s.uri for s in sources], "message": [errors[0].message] * len(sources)}), buf)
    assert pq.read_table(io.BytesIO(buf.getvalue())).column("uri").to_pylist() == [s.uri for s in sources]


def test_percent_escaping_rule():
    assert local_uri("/p/café.jpg") == "/p/café.jpg"                      # valid UTF-8: as it is
    assert local_uri("/p/100%.jpg") == "/p/100%.jpg"
    assert local_uri(os.fsdecode(b"/p/caf\xe9 100%.jpg")) == "/p/caf%E9 100%25.jpg"
    assert local_uri(os.fsdecode(b"/p/\xff\xfe.png")) == "/p/%FF%FE.png"


def test_glob_characters_existing_paths_and_the_literal_prefix(odd_names):
    folder, _ = odd_names
    base = str(folder)

    def uris(inputs):
        sources, errors = list_sources(inputs)
        return [os.path.relpath(s.uri, base) for s in sources], errors

    assert uris([f"{base}/shot[1].jpg"]) == (["shot[1].jpg"], [])             # exists: taken literally
    assert uris([f"{base}/star*.jpg"]) == (["star*.jpg"], [])                 # not also starfish.jpg
    assert uris([f"literal:{base}/star*.jpg"]) == (["star*.jpg"], [])
    assert uris([f"{base}/sta?fish.jpg"])[0] == ["starfish.jpg"]              # missing: a glob
    assert uris([f"{base}/*.jpg"])[0] == ["100%.jpg", "a b.jpg", "caf%E9.jpg", "shot[1].jpg", "star*.jpg",
                                          "starfish.jpg", "日本語 写真.jpg"]
    found, errors = uris([f"literal:{base}/sta?fish.jpg"])                   # literal: never a glob
    assert found == [] and len(errors) == 1 and errors[0].input == f"literal:{base}/sta?fish.jpg"
    assert "nothing exists at this location" in errors[0].message


def test_listing_never_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "ok.png").write_bytes(b"\x89PNG")
    bad_input = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"missing-\xe9.jpg"))
    sources, errors = list_sources([str(tmp_path / "nope"), str(tmp_path / "empty"), f"{tmp_path}/*.gif",
                                    bad_input, str(tmp_path / "ok.png")])
    assert [s.uri for s in sources] == [str(tmp_path / "ok.png")]
    messages = [e.message for e in errors]
    assert len(errors) == 4 and all(e.stage == "list" for e in errors)
    assert "holds no files" in messages[1] and "no files match the pattern" in messages[2]
    assert errors[3].input == f"{tmp_path}/missing-%E9.jpg"
    for m in messages:
        m.encode("utf-8")  # storable


def test_iter_sources_streams_inputs_in_order(tmp_path):
    for d in ("b", "a"):
        (tmp_path / d).mkdir()
        for n in ("2.jpg", "1.jpg", "10.jpg"):
            (tmp_path / d / n).write_bytes(b"x")
    consumed = []

    def inputs():
        for d in ("b", "a", "b"):
            consumed.append(d)
            yield str(tmp_path / d)

    stream = iter_sources(inputs())
    first = next(stream)
    assert isinstance(first, Source) and first.uri == str(tmp_path / "b" / "1.jpg") and consumed == ["b"]
    rest = list(stream)
    assert all(not isinstance(e, ErrorRecord) for e in rest)
    assert [os.path.relpath(s.uri, tmp_path) for s in [first, *rest]] == [
        "b/1.jpg", "b/10.jpg", "b/2.jpg", "a/1.jpg", "a/10.jpg", "a/2.jpg"]  # each input sorted; repeats once
    sources, _ = list_sources([str(tmp_path / "b"), str(tmp_path / "a")])
    assert [s.uri for s in sources] == sorted(s.uri for s in sources)


def test_media_kind_ignores_only_a_url_query():
    from pipeline.job.listing import media_kind

    assert media_kind("https://h.example/x.JPG?X-Amz-Signature=1") == "image"
    assert media_kind("/local/what?.mp4") == "video" and media_kind("/local/clip.mp4?.txt") is None


def test_odd_names_are_labelled_end_to_end(job_ray, tmp_path, media_dir, capsys):
    """`posepipe run` with the real default network over hostile names: each is labelled, stored
    under its (escaped) URI, and the CLI exits 0."""
    import pipeline
    from pipeline.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), LATIN1_NAME), "wb") as f:
        f.write((media_dir / "images" / "p1.jpg").read_bytes())
    shutil.copy(media_dir / "images" / "valid_person1.jpg", folder / "shot[1].jpg")
    shutil.copy(media_dir / "images" / "cat.jpg", folder / "日本 写真.jpg")
    out = tmp_path / "out"
    status = main(["run", "--input", str(folder), f"literal:{folder}/shot[1].jpg", "--output", str(out),
                   "--images-per-shard", "3", "--batch-size", "3", "--no-progress", "--no-tracking"])
    assert status == 0, capsys.readouterr().err
    assert pipeline.read_errors(out).empty
    frames = pipeline.read_frames(out).set_index("source_uri")
    people = frames.num_people.to_dict()
    assert sorted(people) == sorted(f"{folder}/{n}" for n in ("caf%E9.jpg", "shot[1].jpg", "日本 写真.jpg"))
    assert people[f"{folder}/caf%E9.jpg"] >= 1 and people[f"{folder}/shot[1].jpg"] >= 1
    assert people[f"{folder}/日本 写真.jpg"] == 0  # the cat
    assert len(pipeline.read_poses(out)) == sum(people.values())


def test_listing_errors_hold_no_credentials(tmp_path):
    """A refused remote listing is an errors row with the URL password and the options' secrets masked."""
    item = "s3://alice:PLANTED-URL-PASS@no-such-bucket-posepipe/photos/"
    options = {"endpoint_url": "http://127.0.0.1:9", "key": "PLANTED-KEY-ID", "secret": "PLANTED-SECRET-VALUE",
               "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}}}
    sources, errors = list_sources([item], options)
    assert not sources and len(errors) == 1
    row = errors[0]
    assert row.input == "s3://alice:***@no-such-bucket-posepipe/photos/"
    text = f"{row.input} {row.message}"
    assert not [p for p in ("PLANTED-URL-PASS", "PLANTED-KEY-ID", "PLANTED-SECRET-VALUE") if p in text], text


def test_an_s3_folder_is_listed_page_by_page_in_key_order(s3, monkeypatch):
    """On S3 a folder's listing streams one ListObjectsV2 page at a time (here pages of 2 keys): the
    first source comes after one page, and the whole listing equals s3fs's own ``find`` (sorted,
    hidden files and folder markers left out, the same sizes and ETags, so the same source ids)."""
    import s3fs

    from pipeline.job import listing

    fs = s3.fs()
    fs.mkdir("paged")
    names = ["b/2.jpg", "b/10.jpg", "a-b.jpg", "a/1.png", "a/x/.hidden.jpg", ".hidden/c.jpg", "z.mp4", "日本.jpg"]
    for i, name in enumerate(names):
        fs.pipe_file(f"paged/in/{name}", bytes([i]) * (10 + i))
    fs.pipe_file("paged/in/a/x/", b"")  # a folder marker object
    monkeypatch.setattr(listing, "S3_PAGE_KEYS", 2)
    pages = []
    real_call = s3fs.S3FileSystem._call_s3

    async def counting(self, method, *args, **kwargs):
        if method == "list_objects_v2" and kwargs.get("MaxKeys") == 2:
            pages.append(kwargs.get("ContinuationToken"))
        return await real_call(self, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counting)
    stream = iter_sources(["s3://paged/in/"], s3.options)
    first = next(stream)
    assert first.uri == "s3://paged/in/a-b.jpg" and len(pages) == 1
    listed = [first, *stream]
    assert len(pages) == 5  # 9 keys in pages of 2
    expected = sorted((i for i in fs.find("paged/in", detail=True).values()
                       if i["type"] == "file" and "/." not in i["name"] and not i["name"].endswith("/")),
                      key=lambda i: i["name"])  # find() counts a folder marker as a file; the listing does not
    assert [s.uri for s in listed] == ["s3://" + i["name"] for i in expected]
    assert [s.uri.rsplit("/in/", 1)[1] for s in listed] == ["a-b.jpg", "a/1.png", "b/10.jpg", "b/2.jpg", "z.mp4",
                                                           "日本.jpg"]
    assert [s.size for s in listed] == [i["size"] for i in expected]
    assert [s.source_id for s in listed] == [listing.source_id("s3://" + i["name"], i["size"], listing._etag(i))
                                            for i in expected]
    assert [s.kind for s in listed] == ["image", "image", "image", "image", "video", "image"]
