"""Figures of the tour notebook."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.plots import base_figure


def function_draws(angles: np.ndarray, outputs: np.ndarray, *, title: str = "") -> go.Figure:
    """Network outputs along a great circle: one line per random draw.

    Args:
      angles: shape (n,), the angle t of each point cos(t) e1 + sin(t) e2.
      outputs: shape (draws, n), one row per initialization.
    """
    angles = np.asarray(angles)
    outputs = np.atleast_2d(np.asarray(outputs))
    if outputs.shape[1] != angles.shape[0]:
        raise ValueError(f"outputs must have shape (draws, {angles.shape[0]}), got {outputs.shape}")
    fig = base_figure(title or "Random networks on a great circle of the sphere", "angle t (radians)", "f(x(t))")
    for i, row in enumerate(outputs):
        fig.add_trace(go.Scatter(x=angles, y=row, mode="lines", name=f"draw {i + 1}", line=dict(width=1.5)))
    return fig
