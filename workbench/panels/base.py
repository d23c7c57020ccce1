"""The base class of every notebook panel: layout, debounced recomputation, status line, export bar.

A panel subclass builds its widgets and figures, then calls :meth:`Panel.watch` with the widgets
whose changes should trigger a recomputation. In a running kernel, changes are debounced: a
burst of slider moves while a computation runs leads to one recomputation with the latest values,
not a queue of stale ones. Outside an event loop (tests, scripts) :meth:`Panel.refresh` runs at once.
"""

from __future__ import annotations

import asyncio
import html
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from workbench import config
from workbench.plots import save_html


class Panel:
    """Subclass and implement :meth:`update` (recompute and redraw from the current widget values)."""

    #: seconds to wait after the last widget change before recomputing
    debounce_s: float = 0.25

    def __init__(self) -> None:
        self.figures: dict[str, go.FigureWidget] = {}
        self.status = W.HTML()
        self.export_dir = W.Text(value="exports", description="export to", layout=W.Layout(width="260px"))
        self.export_button = W.Button(description="Export figures", icon="download",
                                      tooltip="Save every figure as standalone HTML (and PNG where kaleido works)")
        self.export_button.on_click(lambda _b: self.export(self.export_dir.value))
        self._pending: asyncio.TimerHandle | None = None
        self._busy = False

    # ---------------------------------------------------------------- layout
    def layout(self, controls: Sequence[W.Widget], body: Sequence[W.Widget]) -> W.VBox:
        """Controls on top, then the body (figures), then status and export bar."""
        self.widget = W.VBox([*controls, *body, self.status, W.HBox([self.export_button, self.export_dir])])
        return self.widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ---------------------------------------------------------------- recomputation
    def update(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def watch(self, widgets: Sequence[W.Widget], handler: Callable[[], None] | None = None) -> None:
        """Recompute (``handler`` or :meth:`update`) when any of ``widgets`` changes value, debounced."""
        fn = handler or self.update
        for w in widgets:
            w.observe(lambda _change, fn=fn: self.schedule(fn), names="value")

    def schedule(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``debounce_s`` of quiet in a running event loop; at once otherwise."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self.debounce_s <= 0:
            self._run(fn)
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.call_later(self.debounce_s, self._run, fn)

    def refresh(self) -> None:
        """Recompute now with the current widget values (synchronous)."""
        self._run(self.update)

    def _run(self, fn: Callable[[], None]) -> None:
        self._pending = None
        start = time.perf_counter()
        self._busy = True
        self.status.value = "<small>computing...</small>"
        try:
            fn()
        except Exception as exc:  # shown in the panel, not swallowed: the traceback is printed too
            self.status.value = (f"<span style='color:#b00'><b>error:</b> {html.escape(type(exc).__name__)}: "
                                 f"{html.escape(str(exc))}</span>")
            traceback.print_exc()
            return
        finally:
            self._busy = False
        self.status.value = (f"<small>updated in {time.perf_counter() - start:.2f} s &middot; "
                             f"{html.escape(config.device_report())}</small>")

    # ---------------------------------------------------------------- export
    def export(self, directory: str | Path) -> list[Path]:
        """Save every figure as standalone HTML, and as PNG where kaleido can find a browser."""
        directory = Path(directory)
        written = []
        for name, fig in self.figures.items():
            written.append(save_html(go.Figure(fig), directory / f"{name}.html"))
            try:
                png = directory / f"{name}.png"
                go.Figure(fig).write_image(str(png))
                written.append(png)
            except Exception:  # kaleido missing or no Chromium: HTML only, as documented
                pass
        self.status.value = f"<small>exported {len(written)} file(s) to {html.escape(str(directory))}</small>"
        return written
