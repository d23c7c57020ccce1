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
        self.figures["draws"] = LiveFigure(function_draws(*great_circle_empty(), title=self._title()))
        controls = W.HBox([W.VBox([self.width, self.depth]), W.VBox([self.activation, self.draws])])
        self.layout([controls], [self.figures["draws"]])
        self.watch([self.width, self.depth, self.activation, self.draws])
        self.status.value = f"<small>{config.device_report()}</small>"
        self.update()

    def _title(self) -> str:
        return f"{self.draws.value} random {self.activation.value} nets, depth {self.depth.value}, width {self.width.value}"

    def compute(self) -> tuple[np.ndarray, np.ndarray]:
        return tour_draws(self.width.value, self.depth.value, self.activation.value, self.draws.value,
                          num_points=config.pick(100, 200))

    def update(self) -> None:
        """The draws of the current setting, computed in the background (cached per setting)."""
        key = (self.width.value, self.depth.value, self.activation.value, self.draws.value)
        title = self._title()

        def chunks():
            t, out = tour_draws(*key, num_points=config.pick(100, 200))
            yield (t, out), 1.0, f"{key[3]} draws"

        def draw(result, _done: bool) -> None:
            self.figures["draws"].update(function_draws(*result, title=title))

        self.experiment(key, "random networks", chunks, draw)


def great_circle_empty() -> tuple[np.ndarray, np.ndarray]:
    """No draws yet: angles and an empty (0, n) array (the figure shows its axes while the draws compute)."""
    return np.zeros(0), np.zeros((0, 0))
