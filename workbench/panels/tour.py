"""The tour panel: width, depth and activation widgets driving random-network draws on a sphere slice."""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from workbench import config
from workbench.nets import ACTIVATIONS
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure
from workbench.plots.tour import function_draws
from workbench.studies.tour import WIDTHS, tour_draws


class TourPanel(Panel):
    """Sliders for width and depth, a dropdown for the activation; the figure shows several random draws.

    As the width grows the draws stay O(1) and become smoother samples of the NNGP.
    """

    def __init__(self) -> None:
        super().__init__()
        self.width = W.SelectionSlider(options=config.pick(WIDTHS[:4], WIDTHS), value=64, description="width")
        self.depth = W.IntSlider(value=2, min=1, max=6, description="depth")
        self.activation = W.Dropdown(options=sorted(ACTIVATIONS), value="relu", description="activation")
        self.draws = W.IntSlider(value=config.pick(3, 5), min=1, max=10, description="draws")
        t, out = self.compute()
        self.figures["draws"] = LiveFigure(function_draws(t, out, title=self._title()))
        controls = W.HBox([W.VBox([self.width, self.depth]), W.VBox([self.activation, self.draws])])
        self.layout([controls], [self.figures["draws"]])
        self.watch([self.width, self.depth, self.activation, self.draws])
        self.status.value = f"<small>{config.device_report()}</small>"

    def _title(self) -> str:
        return f"{self.draws.value} random {self.activation.value} nets, depth {self.depth.value}, width {self.width.value}"

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        return tour_draws(self.width.value, self.depth.value, self.activation.value, self.draws.value,
                          num_points=config.pick(100, 200))

    def update(self) -> None:
        t, out = self.compute()
        new = function_draws(t, out, title=self._title())
        self.figures["draws"].update(new)
