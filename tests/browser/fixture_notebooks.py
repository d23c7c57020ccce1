"""Fixture notebooks that must make the browser checks fail, written at test time.

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


def write_fixture_notebooks(root: Path) -> list[Path]:
    """Write the fixture notebooks into ``root`` and return their paths."""
    paths = []
    for name, (what, body) in FIXTURES.items():
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# Test fixture: {what}"),
                    nbformat.v4.new_code_cell(_PANEL.format(body=body))]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = root / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths
