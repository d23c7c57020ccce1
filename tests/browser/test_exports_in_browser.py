"""Reports and exports as a person opens them: the CLI's HTML report in Chromium, and a panel's exports.

* ``workbench report ntk --out r.html`` (fast mode) writes a report that opens in Chromium with its figures
  drawn (plotly's SVG with traces), and no JavaScript error.
* :func:`workbench.panels.base.export_figures` writes standalone HTML that opens offline, and SVG/PNG through
  kaleido with the same Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import plotly.graph_objects as go

from tests.browser import harness


def test_cli_ntk_report_opens_in_chromium(browser, tmp_path, screenshot_dir, timings):
    out = tmp_path / "r.html"
    env = dict(os.environ, WORKBENCH_FAST="1")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "workbench", "report", "ntk", "--no-progress", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.exists() and f"wrote {out}" in proc.stdout
    expected = out.read_text().count('class="plotly-graph-div"')
    assert expected >= 1
    # every figure of the report is drawn (plotly's SVG with at least one trace)
    assert harness.check_html_file(browser, out, screenshot_dir / "report-ntk.png", min_figures=expected) == expected
    timings.add("cli report ntk + open in Chromium", seconds=time.monotonic() - start)


def test_export_html_svg_png(browser, chromium_path, tmp_path, screenshot_dir, monkeypatch, timings):
    from workbench.panels.base import export_figures

    monkeypatch.setenv("BROWSER_PATH", chromium_path)  # kaleido's Chromium: the same Debian one
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[1, 3, 2], name="demo"))
    start = time.monotonic()
    written, note = export_figures({"demo": fig}, tmp_path, ("html", "svg", "png"))
    assert note == "", note
    assert sorted(p.name for p in written) == ["demo.html", "demo.png", "demo.svg"]
    assert (tmp_path / "demo.svg").read_text()[:200].lstrip().startswith("<svg")
    assert (tmp_path / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert harness.check_html_file(browser, tmp_path / "demo.html", screenshot_dir / "export-demo.png") == 1
    timings.add("export html/svg/png + open html", seconds=time.monotonic() - start)
