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


def test_export_rejects_unknown_format(tmp_path):
    from workbench.panels.base import export_figures

    with pytest.raises(ValueError, match=r"formats must be a non-empty subset of \('html', 'svg', 'png'\)"):
        export_figures({"demo": go.Figure()}, tmp_path, ("pdf",))


class _DemoPanel:
    """A minimal Panel subclass built on demand (imports inside: the module is collected without a kernel)."""

    @staticmethod
    def make(broken: bool = False):
        import ipywidgets as W

        from workbench.panels.base import Panel

        class Demo(Panel):
            # at once, not debounced: Playwright's sync API keeps an asyncio loop running in this thread
            # while the session's browser is open, which would defer the update to a timer that never fires
            debounce_s = 0.0

            def __init__(self):
                super().__init__()
                self.n = W.IntSlider(value=2, min=1, max=5)
                self.figures["line"] = go.FigureWidget()
                self.layout([self.n], [self.figures["line"]])
                self.watch([self.n])

            def update(self):
                self.calls = getattr(self, "calls", []) + [self.n.value]
                if broken:
                    raise ZeroDivisionError("broken on purpose")
                with self.figures["line"].batch_update():
                    self.figures["line"].data = ()
                    self.figures["line"].add_scatter(y=list(range(self.n.value)))

        return Demo()


def test_panel_shows_callback_errors_in_its_status(capsys):
    panel = _DemoPanel.make(broken=True)
    panel.n.value = 3
    assert "error:</b> ZeroDivisionError: broken on purpose" in panel.status.value
    assert "ZeroDivisionError" in capsys.readouterr().err  # the traceback is printed, not swallowed


def test_panel_export_defaults_to_html_and_takes_formats(tmp_path):
    panel = _DemoPanel.make()
    panel.refresh()
    written = panel.export(tmp_path)
    assert [p.name for p in written] == ["line.html"]
    assert "exported 1 file(s)" in panel.status.value
    with pytest.raises(ValueError, match="formats must be a non-empty subset"):
        panel.export(tmp_path, formats=("html", "jpeg"))



def test_panel_debounces_a_burst_in_an_event_loop():
    """In a running event loop (a kernel), a burst of widget changes gives one recomputation with the last value."""
    import asyncio
    import threading

    panel = _DemoPanel.make()
    panel.debounce_s = 0.05

    async def burst():
        for v in (3, 4, 5):
            panel.n.value = v
        await asyncio.sleep(0.5)

    # in its own thread: Playwright's sync API may keep a loop running in this one
    t = threading.Thread(target=lambda: asyncio.run(burst()))
    t.start()
    t.join(timeout=30)
    assert panel.calls == [5]
    assert list(panel.figures["line"].data[0].y) == [0, 1, 2, 3, 4]
    assert "updated in" in panel.status.value
