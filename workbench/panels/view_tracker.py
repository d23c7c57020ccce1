"""Keep a person's zoom and pan on a :class:`~workbench.panels.figure.LiveFigure` across its updates.

Why this exists: plotly keeps zoom and pan across a redraw only when the *same* plot element is redrawn with
``Plotly.react`` and an unchanged ``layout.uirevision``. A LiveFigure is an ``ipywidgets.Output`` showing the
figure through plotly's JupyterLab mime renderer, and neither layer redraws in place:

* the Output widget's front-end model (``@jupyter-widgets/jupyterlab-manager``, also in Voila) answers every
  change of its ``outputs`` state with ``clear_output()`` then ``fromJSON(outputs)``, so JupyterLab's output
  area disposes the old renderer and makes a new one (a new plot element); its ``OutputArea._setOutput``
  re-use path is taken only for an ``update_display_data`` message of a cell's own output area, and the Output
  widget's message hook ignores that message type;
* and plotly's mime renderer (``jupyterlab-plotly`` 7.1) returns at once from ``renderModel`` when its element
  already holds a graph, so even a re-used renderer would keep showing the old figure.

So the view is carried over instead: a :class:`ViewTracker` (a tiny anywidget without a view, one per
LiveFigure) finds its figure's plot element in the page (the LiveFigure carries the CSS class
:attr:`ViewTracker.target`), listens to plotly's ``plotly_relayout`` events, and syncs the axis ranges the
person set (``{"uirevision": ..., "axes": {"xaxis": [lo, hi], ...}}``) to the kernel. :meth:`LiveFigure.update`
writes those ranges into the figure it sends when the new figure has the same ``uirevision`` (plotly's own rule:
a changed uirevision resets the view), so the new plot is drawn once, already zoomed. If the person zoomed while
an update was in flight (the kernel sent the figure before it heard of the zoom), the tracker re-applies the
ranges in the browser with ``Plotly.relayout`` once the new plot is drawn.

A double click (autoscale) clears the ranges; a figure with another ``uirevision`` starts from its own view.
Works wherever anywidget and plotly's mime renderer run: JupyterLab, Notebook 7, Voila.
"""

from __future__ import annotations

import re
import uuid

import anywidget
import traitlets

#: the tracker's front-end code: an anywidget ``initialize`` hook (no view; the model finds its figure by class)
_ESM = r"""
const AXIS = /^[xy]axis\d*$/;
const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

function registry() {
  const reg = (globalThis.__wbViewTrackers ??= { models: new Map(), observer: null, timer: null });
  if (!reg.observer && document.body) {
    reg.observer = new MutationObserver(() => {
      if (reg.timer === null) reg.timer = setTimeout(() => { reg.timer = null; scan(reg); }, 40);
    });
    reg.observer.observe(document.body, { childList: true, subtree: true });
  }
  return reg;
}

// the ranges of the axes the person set (zoom, pan): autorange off and a range given
function userAxes(gd) {
  const axes = {};
  for (const [name, ax] of Object.entries(gd.layout || {})) {
    if (AXIS.test(name) && ax && ax.autorange === false && Array.isArray(ax.range) && ax.range.length === 2) {
      axes[name] = [ax.range[0], ax.range[1]];
    }
  }
  return axes;
}

function report(gd, model) {
  const view = { uirevision: gd.layout?.uirevision ?? null, axes: userAxes(gd) };
  if (same(view, model.get("view"))) return;
  model.set("view", view);
  model.save_changes();
}

// a plot drawn without the person's ranges (an update sent before the kernel heard of the zoom): re-apply them
function restore(gd, model) {
  const view = model.get("view") || {};
  const axes = view.axes || {};
  if (!Object.keys(axes).length || !same(view.uirevision, gd.layout?.uirevision) || !globalThis.Plotly) return;
  const patch = {};
  for (const [name, r] of Object.entries(axes)) {
    if (!gd._fullLayout || !gd._fullLayout[name]) continue;  // the new figure has no such axis
    const ax = (gd.layout || {})[name] || {};
    if (ax.autorange === false && Array.isArray(ax.range) && same(ax.range, r)) continue;
    patch[name + ".range"] = [r[0], r[1]];
    patch[name + ".autorange"] = false;
  }
  if (Object.keys(patch).length) {
    gd.dataset.wbViewRestored = "browser";
    globalThis.Plotly.relayout(gd, patch);
  }
}

function scan(reg) {
  for (const [target, model] of reg.models) {
    for (const el of document.getElementsByClassName(target)) {
      const gd = el.querySelector(".js-plotly-plot");
      if (!gd || gd.__wbViewTracker === model) continue;
      if (!gd._fullLayout || typeof gd.on !== "function") {  // not drawn yet: look again shortly
        setTimeout(() => scan(reg), 200);
        continue;
      }
      gd.__wbViewTracker = model;
      restore(gd, model);
      gd.on("plotly_relayout", () => report(gd, model));
    }
  }
}

export default {
  initialize({ model }) {
    const reg = registry();
    const target = model.get("target");
    reg.models.set(target, model);
    scan(reg);
    return () => { if (reg.models.get(target) === model) reg.models.delete(target); };
  },
};
"""


class ViewTracker(anywidget.AnyWidget):
    """The axis ranges a person set on one LiveFigure's plot, synced from the browser (see the module docstring).

    ``view``: ``{}`` (autoscale) or ``{"uirevision": <the figure's uirevision>, "axes": {"xaxis": [lo, hi], ...}}``
    in plotly's units (log axes: log10 of the values, as plotly writes ``range``).
    """

    _esm = traitlets.Unicode(_ESM).tag(sync=True)
    #: the CSS class of the figure's element in the page
    target = traitlets.Unicode().tag(sync=True)
    view = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(target=f"wb-view-{uuid.uuid4().hex[:12]}", **kwargs)

    def axes_for(self, uirevision) -> dict[str, list]:
        """The ranges to keep for a figure with ``uirevision`` ({} when the view was set on another one)."""
        view = self.view or {}
        if view.get("uirevision") != uirevision:
            return {}
        axes = view.get("axes") or {}
        return {name: list(r) for name, r in axes.items()
                if isinstance(name, str) and _AXIS.fullmatch(name) and isinstance(r, (list, tuple)) and len(r) == 2}


#: the cartesian axes of a plotly layout (``xaxis``, ``yaxis2``, ...): the only keys a view may set
_AXIS = re.compile(r"[xy]axis[0-9]*")
