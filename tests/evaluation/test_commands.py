"""The import-coco / export-coco / eval sub-commands on real files."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.evaluation.commands import add_commands


def test_import_export_eval_through_the_cli(ann_path, tmp_path, capsys):
    table, results, report = tmp_path / "gt.parquet", tmp_path / "results.json", tmp_path / "eval.json"
    assert main(["import-coco", "--input", str(ann_path), "--output", str(table)]) == 0
    assert main(["export-coco", "--poses", str(table), "--output", str(results),
                 "--annotations", str(ann_path)]) == 0
    assert len(json.loads(results.read_text())) == 12
    assert main(["eval", "--poses", str(table), "--annotations", str(ann_path), "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "000000197388.jpg" in out and "AP50" in out
    assert json.loads(report.read_text())["stats"]["AP"] == pytest.approx(1.0)
    # the results file scores the same as the table it came from
    assert main(["eval", "--poses", str(results), "--annotations", str(ann_path), "--json", "-"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].startswith("1.000")
    assert json.loads(out[out.index("{"):])["num_dt"] == 12


def test_cli_errors_name_the_input(tmp_path, ann_path, capsys):
    assert main(["eval", "--poses", str(tmp_path / "none.parquet"), "--annotations", str(ann_path)]) == 2
    assert "none.parquet not found" in capsys.readouterr().err


def test_add_commands_registers_on_a_host_parser():
    parser = argparse.ArgumentParser(prog="posepipe")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "--poses", "p.parquet", "--annotations", "a.json"])
    assert callable(args.func) and args.poses == "p.parquet"


def test_posepipe_reports_bad_input_as_one_line(ann_path, tmp_path, capsys):
    from pipeline.cli import main as posepipe

    table = tmp_path / "gt.parquet"
    assert posepipe(["import-coco", "--input", str(ann_path), "--output", str(table)]) == 0
    assert posepipe(["export-coco", "--poses", str(table), "--output", str(tmp_path / "r.json"),
                     "--annotations", str(table)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("posepipe export-coco: ") and "gt.parquet is not valid JSON" in err


def test_coco_commands_never_import_torch(ann_path, tmp_path):
    # import-coco, export-coco and eval run on a laptop without the network stack.
    table, results = tmp_path / "gt.parquet", tmp_path / "r.json"
    code = ("import sys\nfrom pipeline.cli import main\n"
            f"assert main(['import-coco', '--input', {str(ann_path)!r}, '--output', {str(table)!r}]) == 0\n"
            f"assert main(['export-coco', '--poses', {str(table)!r}, '--output', {str(results)!r}]) == 0\n"
            f"assert main(['eval', '--poses', {str(table)!r}, '--annotations', {str(ann_path)!r}]) == 0\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
