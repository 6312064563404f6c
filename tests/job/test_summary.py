"""pipeline.job.summary: the quality summary from the shard_log's aggregates equals the one computed
from the tables themselves (pipeline.evaluation.quality_summary), overall and per source."""
from __future__ import annotations

import pytest

import pipeline
from pipeline import testing as standin
from pipeline.evaluation.quality import quality_summary
from pipeline.job import build_spec, run_job
from pipeline.job.sink import DeltaSink
from pipeline.job.summary import quality_from_log


def test_quality_from_the_log_equals_the_tables(job_ray, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(1, 10):
        standin.write_image(folder / f"img{i}.png", i)
    out = tmp_path / "out"
    run_job(build_spec({"input": [str(folder)], "output": str(out), "progress": False, "images_per_shard": 4}),
            runner_factory=standin.RenderedRunner, model_id="standin@0")
    mine = quality_from_log(DeltaSink(str(out)))
    theirs = quality_summary(pipeline.read_poses(out), pipeline.read_frames(out))
    def same(a: dict, b: dict, where: str) -> None:
        assert set(a) == set(b), where
        for key, value in b.items():
            if value is None:
                assert a[key] is None, (where, key)
            else:
                assert a[key] == pytest.approx(value, rel=1e-6), (where, key)

    same({k: v for k, v in mine.items() if k != "per_source"},
         {k: v for k, v in theirs.items() if k != "per_source"}, "overall")
    assert set(mine["per_source"]) == set(theirs["per_source"])
    for uri, figures in theirs["per_source"].items():
        same(mine["per_source"][uri], figures, uri)
