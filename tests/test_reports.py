"""Tests of the report writer (workbench.reports): HTML content, atomic writes, path checks, argparse types."""

from __future__ import annotations

import argparse
import os
import re

import plotly.graph_objects as go
import pytest

from workbench import reports
from workbench.reports import Report, Table


def _report(n_figures: int = 2) -> Report:
    figs = [(f"f{i}", go.Figure(go.Scatter(x=[0, 1, 2], y=[i, i + 1, i + 4], name=f"trace{i}")))
            for i in range(n_figures)]
    return Report(study="demo", title="Demo <report>", summary="A & B", figures=figs,
                  tables=[Table("numbers", ["B", "value"], [[4, 0.123456789], [16, None]])],
                  parameters={"width": 64, "lr": 0.1}, device="cpu test device", elapsed_s=1.5,
                  references=["Someone et al. 2020"], passed=True)


def test_render_html_embeds_plotly_once_and_every_figure():
    text = reports.render_html(_report(3))
    # plotly.js is embedded inline once (the file opens offline) and each figure has its own div
    assert text.count("https://plot.ly") <= 3  # only inside the plotly.js licence comments, not a CDN <script src>
    assert len(re.findall(r"<script[^>]*src=['\"]https?://", text)) == 0
    assert len(re.findall(r"/\*\*\s*\n?\s*\* plotly\.js v", text)) == 1
    for i in range(3):
        assert f'id="figure-f{i}"' in text and f"trace{i}" in text
    # escaped title, summary, table cells (4 significant digits, None as a dash), parameters, device, verdict
    assert "Demo &lt;report&gt;" in text and "A &amp; B" in text
    assert "<td>0.1235</td>" in text and "<td>-</td>" in text
    assert "<td>width</td><td>64</td>" in text and "cpu test device" in text
    assert "all checks passed" in text and "Someone et al. 2020" in text


def test_write_report_is_atomic_and_leaves_no_temp_file(tmp_path):
    path = reports.write_report(_report(1), tmp_path / "r.html")
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_write_report_failure_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    target = tmp_path / "r.html"
    target.write_text("old report")

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        reports.write_report(_report(1), target)
    assert target.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


@pytest.mark.parametrize(("name", "match"), [
    ("report.txt", r"--out must end in \.html, got .*report\.txt"),
    ("missing/sub/r.html", r"--out folder .*missing/sub.* does not exist"),
])
def test_check_output_path_rejects(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        reports.check_output_path(tmp_path / name)


def test_check_output_path_rejects_a_file_as_folder_and_a_folder_as_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="does not exist"):
        reports.check_output_path(tmp_path / "afile" / "r.html")
    (tmp_path / "d.html").mkdir()
    with pytest.raises(ValueError, match="is a folder, not a file"):
        reports.check_output_path(tmp_path / "d.html")


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match=r"row 1 has 1 cells, expected 2"):
        Table("t", ["a", "b"], [[1, 2], [3]])


def test_fmt():
    import numpy as np

    assert reports.fmt(None) == "-"
    assert reports.fmt(True) == "yes"
    assert reports.fmt(np.float32(0.000123456)) == "0.0001235"
    assert reports.fmt(np.int64(7)) == "7"
    assert reports.fmt(1234567.0) == "1.235e+06"


@pytest.mark.parametrize(("fn", "text", "expected"), [
    (reports.positive_int, "3", 3), (reports.nonnegative_int, "0", 0), (reports.positive_float, "0.5", 0.5),
    (reports.int_list, "4, 16,64", [4, 16, 64]), (reports.float_list, "0.1,1", [0.1, 1.0]),
])
def test_argparse_types_accept(fn, text, expected):
    assert fn(text) == expected


@pytest.mark.parametrize(("fn", "text", "match"), [
    (reports.positive_int, "-3", "positive integer, got -3"),
    (reports.positive_int, "x", "positive integer, got 'x'"),
    (reports.nonnegative_int, "-1", "non-negative integer, got -1"),
    (reports.positive_float, "0", "positive finite number, got '0'"),
    (reports.positive_float, "nan", "positive finite number, got 'nan'"),
    (reports.positive_float, "inf", "positive finite number, got 'inf'"),
    (reports.int_list, "4,-2", "positive integer, got -2"),
    (reports.int_list, ",", "comma-separated positive integers"),
])
def test_argparse_types_reject(fn, text, match):
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        fn(text)


def test_load_study_unknown():
    with pytest.raises(ValueError, match=r"unknown study 'nope'; choose one of ntk, dynamics"):
        reports.load_study("nope")


@pytest.mark.parametrize("name", list(reports.STUDIES))
def test_every_study_module_has_the_interface(name):
    module = reports.load_study(name)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert callable(module.build)
