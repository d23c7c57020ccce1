"""A live plotly figure for panels: an ``ipywidgets.Output`` that shows one figure through plotly's mime renderer.

Why not ``plotly.graph_objects.FigureWidget``: since plotly 6 a FigureWidget is an anywidget whose model carries
plotly's whole 5 MB JavaScript bundle as its ``_esm`` string, so every figure on a page sends, parses and
compiles its own copy. anywidget gives a model 2 s to load that code; past that, the model's ``ready`` promise
rejects and every later update message to it is dropped ("[anywidget] Failed to initialize model"). A Voila
page, which creates all its figure models at once, hit that on 2 cores: figures drew once and then never changed.

A :class:`LiveFigure` sends only the figure's JSON (typed arrays base64-encoded) as a
``application/vnd.plotly.v1+json`` display output; JupyterLab, Notebook 7, Voila and VS Code render it with
plotly's own mime extension (``jupyterlab-plotly``, installed with plotly), which loads plotly.js once per page.
An update replaces the output in one message (no blank flash). Every figure shown carries a fixed
``layout.uirevision`` (unless the figure sets its own). The front end draws each update into a new plot element
(neither the Output widget nor plotly's mime renderer redraws in place), so ``uirevision`` alone would not keep a
person's zoom: a :class:`~workbench.panels.view_tracker.ViewTracker` reports the axis ranges the person set, and
:meth:`LiveFigure.update` sends the next figure with them (same ``uirevision`` only; the panel's own figure,
``live.figure``, is never changed).

With static figures on (:func:`workbench.plots.use_static_renderer`), each output also carries a PNG or SVG
image, which nbconvert HTML and other front ends without plotly's renderer show instead.
"""

from __future__ import annotations

import base64
import html
import json

import ipywidgets as W
import plotly.graph_objects as go
from plotly.io._json import to_json

from workbench import config
from workbench.panels.view_tracker import ViewTracker
from workbench.plots import static_image

#: the plotly mime type rendered by the ``jupyterlab-plotly`` extension
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def figure_mimebundle(fig: go.Figure) -> dict:
    """Display data of ``fig`` for the plotly mime renderer: ``{PLOTLY_MIME: json, "text/plain": summary}``.

    The JSON is what ``plotly.io`` writes (numpy arrays as base64 typed arrays), so it crosses the kernel's
    websocket without a float-by-float text encoding.
    """
    if not isinstance(fig, go.Figure):
        raise TypeError(f"fig must be a plotly.graph_objects.Figure, got {type(fig).__name__}")
    # what plotly's "plotly_mimetype" renderer sends, without importing plotly.io's renderer registry: that
    # imports nbformat -> jsonschema -> rfc3987_syntax, which builds ~40 grammars (2-3 s in every kernel)
    bundle = {PLOTLY_MIME: json.loads(to_json(fig.to_dict(), validate=False, remove_uids=False))}
    title = fig.layout.title.text or "untitled"
    bundle["text/plain"] = f"<plotly figure {title!r}: {len(fig.data)} trace(s)>"
    fmt = config.static_figures()
    if fmt is not None:  # an image too, for front ends without plotly's renderer (nbconvert HTML, GitHub)
        image = static_image(fig, fmt)
        if fmt == "png":
            bundle["image/png"] = base64.b64encode(image).decode("ascii")
        else:
            bundle["image/svg+xml"] = image.decode("utf-8")
    return bundle


def image_html(bundle: dict) -> str:
    """An ``<img>`` tag with the static image of a figure's mime bundle (data URI), or "" without one."""
    if "image/png" in bundle:
        src = "data:image/png;base64," + bundle["image/png"]
    elif "image/svg+xml" in bundle:
        src = "data:image/svg+xml;base64," + base64.b64encode(bundle["image/svg+xml"].encode("utf-8")).decode("ascii")
    else:
        return ""
    alt = html.escape(bundle.get("text/plain", "figure"))
    return f'<img src="{src}" alt="{alt}" style="max-width:100%;display:block;margin:4px 0">'



class LiveFigure(W.Output):
    """An Output widget holding one plotly figure; :meth:`update` replaces the figure and redraws it.

    ``live.figure`` is the current ``go.Figure`` (read it in tests and exports; change it only through
    :meth:`update`). Place the LiveFigure in any ipywidgets layout like another widget.
    """

    #: the ``layout.uirevision`` given to figures that set none: constant, so zoom and pan survive updates
    uirevision = "workbench-live-figure"

    def __init__(self, figure: go.Figure | None = None, *, legend_below: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_class("wb-live-figure")
        #: the zoom and pan the person set on this figure in the browser (kept across updates)
        self.view_tracker = ViewTracker()
        self.add_class(self.view_tracker.target)
        #: draw the legend under the plot (for narrow figures, where a legend above wraps over the title)
        self.legend_below = legend_below
        self._figure = go.Figure()
        self.update(go.Figure() if figure is None else figure)

    @property
    def figure(self) -> go.Figure:
        """The figure shown now."""
        return self._figure

    def update(self, new: go.Figure) -> None:
        """Show ``new`` instead of the current figure (one message to the front end, no flash; none when the figure
        sent would be the one shown)."""
        if not isinstance(new, go.Figure):
            raise TypeError(f"new must be a plotly.graph_objects.Figure, got {type(new).__name__}")
        if new.layout.uirevision is None:
            new.layout.uirevision = self.uirevision
        self._figure = new
        # a legend above the plot that would wrap onto a second row grows up over the title: put it below
        below = self.legend_below or legend_rows(new, NOTEBOOK_WIDTH_PX) > 1
        shown = _with_legend_below(new, NOTEBOOK_WIDTH_PX // 2 if self.legend_below else NOTEBOOK_WIDTH_PX) \
            if below else new
        bundle = figure_mimebundle(shown)
        keep = self.view_tracker.axes_for(new.layout.uirevision)
        if keep:  # the person's zoom and pan, on the axes the new figure has
            layout = bundle[PLOTLY_MIME].setdefault("layout", {})
            for name, rng in keep.items():
                if name in ("xaxis", "yaxis") or name in layout:
                    layout.setdefault(name, {}).update(range=rng, autorange=False)
        elif self.view_tracker.view:  # set on a figure with another uirevision: that view is gone
            self.view_tracker.view = {}
        if self.outputs and self.outputs[0].get("data") == bundle:
            return  # the same figure: nothing to send (the browser would render it again, on the kernel's cores)
        self.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)

    def static_html(self) -> str:
        """The static image of the current figure as an ``<img>`` tag ("" when static figures are off)."""
        return image_html(self.outputs[0]["data"]) if self.outputs else ""


#: the width a figure gets in a notebook at its default width (JupyterLab, Voila: about 900 to 1000 px)
NOTEBOOK_WIDTH_PX = 900


def legend_rows(fig: go.Figure, width_px: int) -> int:
    """How many rows a horizontal legend of ``fig`` takes at ``width_px`` (plotly: ~40 px of symbol and gaps per
    entry plus ~7 px per character at the default 12 px font); 0 without legend entries."""
    names = [str(t.name or "") for t in fig.data if t.showlegend is not False and t.name]
    if not names or fig.layout.showlegend is False:
        return 0
    rows, used = 1, 0
    for name in names:
        w = 40 + 7 * len(name)
        if used and used + w > width_px - 80:
            rows, used = rows + 1, 0
        used += w
    return rows


def _with_legend_below(fig: go.Figure, width_px: int = NOTEBOOK_WIDTH_PX // 2) -> go.Figure:
    """A copy of ``fig`` with a horizontal legend under the plot and the figure taller by the room it takes."""
    out = go.Figure(fig)
    rows = max(1, legend_rows(out, width_px))
    extra = 30 + 22 * rows
    out.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.16 - 0.02 * rows, x=0),
                      height=(out.layout.height or 450) + extra,
                      margin=dict(b=(out.layout.margin.b or 50) + extra))
    return out


def side_by_side(*figures: LiveFigure) -> W.HBox:
    """Figures in one row, sharing its width equally (each plot sizes itself to its share, legend below)."""
    if not figures or not all(isinstance(f, LiveFigure) for f in figures):
        raise TypeError("side_by_side takes one or more LiveFigure objects")
    share = f"{100 / len(figures):.4g}%"
    for f in figures:
        f.layout.width = share
        f.layout.min_width = "0"
        if not f.legend_below:
            f.legend_below = True
            f.update(f.figure)
    return W.HBox(list(figures), layout=W.Layout(width="100%"))
