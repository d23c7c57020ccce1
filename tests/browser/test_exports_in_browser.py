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
import pytest

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


def test_static_figures_carry_images_and_turn_off(chromium_path, monkeypatch):
    """use_static_renderer: plotly's default renderer, panel figures and a displayed panel carry an image."""
    import plotly.io as pio

    from workbench import config
    from workbench.panels.figure import LiveFigure
    from workbench.plots import use_static_renderer

    monkeypatch.setenv("BROWSER_PATH", chromium_path)
    before = pio.renderers.default
    try:
        assert use_static_renderer("svg") == "plotly_mimetype+svg" and config.static_figures() == "svg"
        live = LiveFigure(go.Figure(go.Scatter(y=[1, 3, 2]), layout={"title": {"text": "demo"}}))
        data = live.outputs[0]["data"]
        assert "<svg" in data["image/svg+xml"][:500] and "application/vnd.plotly.v1+json" in data
        assert live.static_html().startswith('<img src="data:image/svg+xml;base64,')
        with pytest.raises(ValueError, match=r"fmt must be one of \('png', 'svg'\) or None, got 'jpeg'"):
            use_static_renderer("jpeg")
    finally:
        assert use_static_renderer(None) == before
    assert config.static_figures() is None
    assert set(LiveFigure(go.Figure()).outputs[0]["data"]) == {"application/vnd.plotly.v1+json", "text/plain"}


def test_static_notebook_export_shows_figures_in_nbconvert_html(browser, chromium_path, tmp_path, monkeypatch,
                                                               screenshot_dir, timings):
    """A notebook executed with WORKBENCH_STATIC_FIGURES=png and saved without widget state (JupyterLab's
    default) exports with nbconvert to HTML that shows the panel's figures as images, offline: what GitHub
    and nbconvert show where no widget runs."""
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    from tests.browser.conftest import NOTEBOOKS

    monkeypatch.setenv("BROWSER_PATH", chromium_path)
    monkeypatch.setenv("WORKBENCH_STATIC_FIGURES", "png")
    monkeypatch.setenv("WORKBENCH_FAST", "1")
    start = time.monotonic()
    nb = nbformat.read(NOTEBOOKS / "00_tour.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nb.metadata.pop("widgets", None)  # saved without widget state
    panel_outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert panel_outputs and all('<img src="data:image/png;base64,' in o["data"]["text/html"] for o in panel_outputs)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = tmp_path / "00_tour.html"
    out.write_text(body)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(out.as_uri(), wait_until="load", timeout=60_000)
        drawn = page.evaluate("() => Array.from(document.querySelectorAll('.wb-static-panel img'))"
                              ".filter(img => img.complete && img.naturalWidth > 100).length")
        page.screenshot(path=str(screenshot_dir / "nbconvert-static-00_tour.png"), full_page=True)
    finally:
        page.close()
    assert drawn == sum(o["data"]["text/html"].count("<img") for o in panel_outputs) >= 1
    timings.add("static 00_tour: execute + nbconvert html + open", seconds=time.monotonic() - start)
