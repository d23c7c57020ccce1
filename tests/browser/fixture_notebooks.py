"""Fixture notebooks that must make the browser checks fail, and one for the zoom check, written at test time.

They are generated (not committed as ``.ipynb``) so that nbmake, which collects every notebook under the
test paths, never runs them. Each is a minimal :class:`workbench.panels.base.Panel` with one slider and one
figure; only its callback differs.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

_PANEL = '''\
import ipywidgets as W
import plotly.graph_objects as go

from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure


class FixturePanel(Panel):
    """One slider, one figure: the slider sets the number of points drawn."""

    def __init__(self):
        super().__init__()
        self.n = W.IntSlider(value=3, min=1, max=10, description="points")
        self.figures["line"] = LiveFigure(go.Figure(go.Scatter(y=list(range(self.n.value)))))
        self.layout([self.n], [self.figures["line"]])
        self.watch([self.n])

    def update(self):
{body}


FixturePanel()
'''

#: name -> (what is wrong, the update body)
FIXTURES = {
    "fixture_broken_callback.ipynb": (
        "the callback raises",
        "        raise ZeroDivisionError('deliberately broken callback (test fixture)')",
    ),
    "fixture_silent_callback.ipynb": (
        "the callback runs without error but never touches the figure",
        "        self.computed = self.n.value  # forgot to redraw",
    ),
}


#: a working panel for the zoom check: the slider changes both figures' data; ``kept`` has the LiveFigure's constant
#: uirevision, ``reset`` a uirevision that changes with the slider (plotly's rule: its zoom must reset, which
#: shows that the check can tell a kept zoom from a reset one)
_ZOOM_PANEL = '''\
import time

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure


class ZoomPanel(Panel):
    def __init__(self):
        super().__init__()
        self.n = W.IntSlider(value=5, min=2, max=20, description="points")
        self.figures["kept"] = LiveFigure()
        self.figures["reset"] = LiveFigure()
        self.layout([self.n], [self.figures["kept"], self.figures["reset"]])
        self.watch([self.n])
        self.update()

    def update(self):
        time.sleep(1.0)  # a busy kernel: a zoom made right after a slider move reaches it after the update is sent
        y = np.sin(np.arange(self.n.value, dtype=float))
        self.figures["kept"].update(go.Figure(go.Scatter(y=y), layout={"title": {"text": "kept"}}))
        self.figures["reset"].update(go.Figure(go.Scatter(y=y), layout={"title": {"text": "reset"},
                                                                       "uirevision": f"n={self.n.value}"}))


ZoomPanel()
'''

#: notebooks that must pass a check: name -> (what it is, code)
WORKING = {"fixture_zoom.ipynb": ("zoom and pan survive an update", _ZOOM_PANEL)}


def write_fixture_notebooks(root: Path) -> list[Path]:
    """Write the fixture notebooks into ``root`` and return their paths."""
    paths = []
    cells = {name: (what, _PANEL.format(body=body)) for name, (what, body) in FIXTURES.items()} | WORKING
    for name, (what, code) in cells.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# Test fixture: {what}"),
                    nbformat.v4.new_code_cell(code)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = root / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths
