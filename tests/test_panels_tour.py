"""The tour panel and its plot builder: a widget change redraws the figure with new data."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from workbench.panels.tour import TourPanel, tour_draws
from workbench.plots import save_html
from workbench.plots.tour import function_draws


def test_function_draws_figure():
    t = np.linspace(0, 1, 5)
    fig = function_draws(t, np.ones((3, 5)))
    assert isinstance(fig, go.Figure) and len(fig.data) == 3
    with pytest.raises(ValueError, match="outputs"):
        function_draws(t, np.ones((3, 4)))


@pytest.mark.slow  # 20 s on 2 cores; the NNGP variance at init is checked against closed forms in tests/test_nets.py
def test_tour_draws_scale_is_width_independent():
    # NTK parametrization: Var f = K^{L+1}(x, x) = w_std^2 |x|^2 / d = 2/3 for critical relu (w_std^2 = 2, no bias)
    # on the unit sphere in d = 3, at every width. 400 draws: relative standard error sqrt(2/400) = 7% (the 10 points
    # of one draw are correlated, so count draws only); allow 4 standard errors.
    for width in (16, 256):  # a 16x width change; at 1024 the 400 draws cost half a minute of CPU
        _, out = tour_draws(width=width, depth=2, activation="relu", num_draws=400, num_points=10)
        assert abs(np.mean(out**2) / (2 / 3) - 1.0) < 4 * np.sqrt(2 / 400)


def test_tour_panel_updates_on_widget_change(tmp_path):
    panel = TourPanel()
    before = np.array(panel.figures["draws"].figure.data[0].y)
    panel.width.value = 16  # no running event loop here: the update runs at once
    after = np.array(panel.figures["draws"].figure.data[0].y)
    assert not np.allclose(before, after)
    assert "updated" in panel.status.value
    written = panel.export(tmp_path)
    assert (tmp_path / "draws.html").exists() and written[0].stat().st_size > 1000
    with pytest.raises(ValueError, match=".html"):
        save_html(go.Figure(), tmp_path / "x.png")
