"""Streamed planning (pipeline.job.planner): pages of the listing, finished work from the shard_log
rows of each page's URI range, removed inputs found in the same rows, and a driver that never
holds the whole listing."""
from __future__ import annotations

import os

import pytest

from pipeline import testing as standin
from pipeline.job import build_spec, run_job
from pipeline.job import planner as planner_module
from pipeline.job.planner import Planner, _under
from pipeline.job.rows import RowContext
from pipeline.job.sink import DeltaSink


def _spec(inputs, out, **kw):
    return build_spec({"input": [str(i) for i in inputs], "output": str(out), "progress": False,
                       "images_per_shard": 2, **kw})


def _planner(spec, page_sources=3) -> Planner:
    sink = DeltaSink(spec.output)
    ctx = RowContext("standin@0", spec.config_id())
    sink.open(ctx.model_id, ctx.config_id)
    return Planner(sink, spec, ctx, page_sources=page_sources)


@pytest.fixture()
def labelled(job_ray, tmp_path):
    """10 images (2 per shard), labelled by a real job; returns (folder, output, spec)."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(10):
        standin.write_image(folder / f"img{i:02d}.png", i, size=(96, 72))
    spec = _spec([folder], out)
    assert run_job(spec, runner_factory=standin.RenderedRunner, model_id="standin@0").frames == 10
    return folder, out, spec


def test_pages_find_finished_added_and_removed_inputs(labelled):
    folder, out, spec = labelled
    (folder / "img03.png").unlink()
    standin.write_image(folder / "img10.png", 10, size=(96, 72))
    standin.write_image(folder / "img04.png", 44, size=(96, 72))  # changed content: another source_id
    planner = _planner(spec, page_sources=3)
    shards = list(planner.shards())
    planned = sorted(os.path.basename(s.uri) for shard in shards for s in shard.sources)
    assert planned == ["img04.png", "img10.png"]
    assert planner.totals.sources == 10 and planner.totals.in_order and not planner.totals.errors
    assert [os.path.basename(u) for u in planner.prunable()] == ["img03.png"]


def test_nothing_is_pruned_after_a_listing_error_or_for_an_input_listed_twice(labelled, tmp_path):
    folder, out, spec = labelled
    one = str(folder / "img01.png")
    # The folder and one of its files as two inputs: img01 comes once and is not "removed".
    twice = _planner(_spec([one, folder], out))
    assert list(twice.shards()) == [] and twice.prunable() == []
    (folder / "img05.png").unlink()
    broken = _planner(_spec([folder, tmp_path / "missing"], out))
    list(broken.shards())
    assert broken.totals.gone and broken.totals.errors and broken.prunable() == []


def test_the_listing_is_pulled_one_page_at_a_time(labelled, monkeypatch):
    folder, out, spec = labelled
    for name in ("img02.png", "img09.png"):
        os.utime(folder / name, (1, 1))  # touched: new source ids, so they are planned again
    pulled = []
    real = planner_module.iter_sources

    def counting(*args, **kwargs):
        for entry in real(*args, **kwargs):
            pulled.append(entry)
            yield entry

    monkeypatch.setattr(planner_module, "iter_sources", counting)
    shards = _planner(spec, page_sources=3).shards()
    first = next(shards)
    assert [os.path.basename(s.uri) for s in first.sources] == ["img02.png"] and len(pulled) == 3
    assert [os.path.basename(s.uri) for s in next(shards).sources] == ["img09.png"] and len(pulled) == 10


@pytest.mark.parametrize("item, inside, outside", [
    ("/d/in", ["/d/in/a.png", "/d/in/x/b.png", "/d/in/t.tar#m.jpg"], ["/d/in2/a.png", "/d/inx.png"]),
    ("/d/in/*.png", ["/d/in/a.png"], ["/d/in/a.jpg", "/d/other/a.png"]),
    ("s3://b/in/", ["s3://b/in/a.png"], ["s3://b/in2/a.png", "s3://c/in/a.png"]),
    ("literal:/d/in[1].png", ["/d/in[1].png"], ["/d/in1.png"]),
])
def test_which_stored_uris_belong_to_an_input(item, inside, outside):
    under = _under(item)
    assert all(under(u) for u in inside) and not any(under(u) for u in outside)
