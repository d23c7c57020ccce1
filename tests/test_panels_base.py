"""The panel machinery without a browser: LiveFigure, callback errors, debouncing, exports."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import pytest

from workbench.panels.base import Panel, export_figures
from workbench.panels.figure import PLOTLY_MIME, LiveFigure, figure_mimebundle


class Demo(Panel):
    """One slider, one figure: the slider sets how many points are drawn."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.broken = broken
        self.calls: list[int] = []
        self.n = W.IntSlider(value=2, min=1, max=5)
        self.figures["line"] = LiveFigure()
        self.layout([self.n], [self.figures["line"]])
        self.watch([self.n])

    def update(self) -> None:
        self.calls.append(self.n.value)
        if self.broken:
            raise ZeroDivisionError("broken on purpose")
        self.figures["line"].update(go.Figure(go.Scatter(y=np.arange(self.n.value, dtype=float))))


def _shown(live: LiveFigure) -> dict:
    """The figure JSON the front end receives (the one display output of the Output widget)."""
    (out,) = live.outputs
    assert out["output_type"] == "display_data"
    return out["data"][PLOTLY_MIME]


def _decode(arr) -> list[float]:
    """plotly.io writes numpy arrays as base64 typed arrays: decode one back to numbers."""
    if isinstance(arr, dict):
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"]).tolist()
    return list(arr)


def test_live_figure_sends_json_and_replaces_it_whole():
    live = LiveFigure(go.Figure(go.Scatter(x=[0, 1, 2], y=np.array([1.0, 3.0, 2.0]), name="a"),
                                layout={"title": {"text": "first"}}))
    shown = _shown(live)
    json.dumps(live.outputs)  # the widget state must be plain JSON (no numpy arrays)
    assert [t["name"] for t in shown["data"]] == ["a"]
    assert _decode(shown["data"][0]["y"]) == [1.0, 3.0, 2.0]
    assert shown["layout"]["title"]["text"] == "first"
    live.update(go.Figure([go.Scatter(y=[5.0]), go.Bar(y=[1, 2])], layout={"title": {"text": "second"}}))
    shown = _shown(live)
    assert len(live.outputs) == 1  # replaced, not appended
    assert [t["type"] for t in shown["data"]] == ["scatter", "bar"]
    assert shown["layout"]["title"]["text"] == "second"
    assert live.figure.layout.title.text == "second" and len(live.figure.data) == 2
    assert "second" in live.outputs[0]["data"]["text/plain"]


def test_live_figure_does_not_send_the_figure_it_shows():
    """An update with the figure shown sends nothing (the browser would render it again); any change is sent."""
    def fig(y):
        return go.Figure(go.Scatter(y=np.asarray(y, float)), layout={"title": {"text": "t"}})

    live = LiveFigure(fig([1, 2]))
    sent = []
    live.observe(lambda c: sent.append(c["new"]), names="outputs")
    live.update(fig([1, 2]))
    assert sent == []
    live.update(fig([1, 3]))
    assert len(sent) == 1 and _decode(_shown(live)["data"][0]["y"]) == [1.0, 3.0]
    assert live.figure.data[0].y.tolist() == [1.0, 3.0]


def test_live_figure_and_mimebundle_reject_non_figures():
    with pytest.raises(TypeError, match="must be a plotly.graph_objects.Figure, got dict"):
        LiveFigure().update({"data": []})
    with pytest.raises(TypeError, match="got list"):
        figure_mimebundle([])


def test_panel_redraws_on_change_outside_a_kernel():
    panel = Demo()
    panel.refresh()
    assert _decode(_shown(panel.figures["line"])["data"][0]["y"]) == [0.0, 1.0]
    panel.n.value = 4  # no event loop here: recomputed at once
    assert panel.calls == [2, 4]
    assert _decode(_shown(panel.figures["line"])["data"][0]["y"]) == [0.0, 1.0, 2.0, 3.0]
    assert "updated in" in panel.status.value


def test_panel_shows_callback_errors_in_its_status(capsys):
    panel = Demo(broken=True)
    panel.n.value = 3
    assert "error:</b> ZeroDivisionError: broken on purpose" in panel.status.value
    assert "ZeroDivisionError" in capsys.readouterr().err  # outside a kernel the traceback is printed too
    assert "Traceback" in panel.progress.outputs[0]["text"]  # and it shows in the panel's output area
    panel.broken = False
    panel.n.value = 2  # a later success clears the area
    assert panel.progress.outputs == ()


def test_panel_debounces_a_burst_in_an_event_loop():
    """In a running event loop (a kernel), a burst of widget changes gives one recomputation with the last value."""
    panel = Demo()
    panel.debounce_s = 0.05

    async def burst():
        for v in (3, 4, 5):
            panel.n.value = v
        await asyncio.sleep(0.5)

    t = threading.Thread(target=lambda: asyncio.run(burst()))
    t.start()
    t.join(timeout=30)
    assert panel.calls == [5]
    assert list(panel.figures["line"].figure.data[0].y) == [0, 1, 2, 3, 4]
    assert "updated in" in panel.status.value


def test_panel_export_defaults_to_html_and_takes_formats(tmp_path):
    panel = Demo()
    panel.refresh()
    written = panel.export(tmp_path)
    assert [p.name for p in written] == ["line.html"]
    assert "exported 1 file(s)" in panel.status.value
    text = written[0].read_text()
    assert "plotly-graph-div" in text and "Plotly.newPlot" in text  # standalone: plotly.js embedded
    with pytest.raises(ValueError, match="formats must be a non-empty subset"):
        panel.export(tmp_path, formats=("html", "jpeg"))


def test_export_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match=r"formats must be a non-empty subset of \('html', 'svg', 'png'\)"):
        export_figures({"demo": go.Figure()}, tmp_path, ("pdf",))


def test_deferred_controls_say_press_the_button_and_do_not_recompute():
    panel = Demo()
    panel.refresh()
    steps = W.IntSlider(value=10, description="steps")
    run = W.Button(description="Run sweep")
    panel.defer([steps], run)
    steps.value = 20
    assert panel.calls == [2]  # no recomputation
    assert "press <b>Run sweep</b> to recompute" in panel.status.value
    assert "wb-deferred" in steps._dom_classes


def test_side_by_side_shares_the_row():
    from workbench.panels.figure import side_by_side

    a, b, c = LiveFigure(), LiveFigure(), LiveFigure()
    row = side_by_side(a, b, c)
    assert list(row.children) == [a, b, c]
    assert a.layout.width == b.layout.width == "33.33%" and c.layout.min_width == "0"
    with pytest.raises(TypeError, match="LiveFigure"):
        side_by_side(go.Figure())


def test_legend_below_moves_the_shown_legend_only():
    fig = go.Figure([go.Scatter(y=[1, 2], name="a"), go.Scatter(y=[2, 1], name="b")], layout={"height": 400})
    live = LiveFigure(fig, legend_below=True)
    shown = _shown(live)["layout"]
    assert shown["legend"]["yanchor"] == "top" and shown["legend"]["y"] < 0 and shown["height"] > 400
    assert live.figure.layout.height == 400 and live.figure.layout.legend.y is None  # the figure itself is untouched


# ------------------------------------------------------------------------------------------ background experiments
class Slow(Panel):
    """A slider whose experiment takes ``chunks`` chunks of ``chunk_s`` seconds; the figure shows the value."""

    def __init__(self, *, threaded: bool, chunks: int = 8, chunk_s: float = 0.05) -> None:
        super().__init__()
        self.runner.threaded = threaded
        self.runner.debounce_s = 0.0
        self.n_chunks, self.chunk_s = chunks, chunk_s
        self.started: list[int] = []   # values whose experiment started
        self.finished: list[int] = []  # values whose experiment ran to its last chunk
        self.theory: list[int] = []    # values the instant part drew
        self.n = W.IntSlider(value=1, min=1, max=9)
        self.figures["line"] = LiveFigure()
        self.layout([self.n], [self.figures["line"]])
        self.watch([self.n])

    def update(self) -> None:
        v = self.n.value
        self.theory.append(v)

        def chunks():
            self.started.append(v)
            for i in range(self.n_chunks):
                threading.Event().wait(self.chunk_s)
                yield np.full(i + 1, float(v)), (i + 1) / self.n_chunks, f"chunk {i + 1}"
            self.finished.append(v)

        def draw(ys, done):
            self.figures["line"].update(go.Figure(go.Scatter(y=ys, name=f"value {v}"),
                                                  layout={"title": {"text": f"value {v}, done {done}"}}))

        self.experiment(v, f"value {v}", chunks, draw)


def test_a_newer_setting_supersedes_a_running_experiment():
    """Two quick moves during a long experiment: only the last value runs to its end; the figure ends in its state."""
    panel = Slow(threaded=True, chunks=40, chunk_s=0.05)  # 2 s per experiment: ample time for the two moves
    panel.refresh()  # value 1 starts in the background
    for _ in range(200):  # wait until it has really started (not just queued)
        if panel.started:
            break
        threading.Event().wait(0.01)
    panel.n.value = 5
    panel.n.value = 7
    assert panel.theory == [1, 5, 7]  # the instant part ran synchronously for every move
    assert panel.wait(timeout=60)
    assert panel.finished == [7]  # 1 was stopped between chunks, 5 never ran to its end
    assert 5 not in panel.started or panel.runner.history.count(("experiment", ("Slow", "experiment", 5), "done")) == 0
    assert panel.runner.history[-1] == ("experiment", ("Slow", "experiment", 7), "done")
    fig = panel.figures["line"].figure
    assert fig.layout.title.text == "value 7, done True" and list(fig.data[0].y) == [7.0] * 40
    assert "value 7 done in" in panel.status.value


def test_returning_to_an_earlier_setting_is_served_from_the_cache():
    panel = Slow(threaded=False, chunks=3, chunk_s=0.0)
    panel.refresh()
    panel.n.value = 4
    assert panel.started == [1, 4]
    panel.n.value = 1  # computed before: drawn from the cache, no chunk runs
    assert panel.started == [1, 4]
    assert panel.runner.history[-1] == ("experiment", ("Slow", "experiment", 1), "cached")
    assert panel.figures["line"].figure.layout.title.text == "value 1, done True"


def test_experiment_errors_show_in_the_status_and_the_output_area():
    panel = Slow(threaded=True, chunks=2, chunk_s=0.0)

    def broken():
        yield 1, 0.5, "half"
        raise ZeroDivisionError("broken experiment")

    panel.experiment("bad", "broken", broken, lambda *_: None)
    assert panel.wait(timeout=30)
    assert "error:</b> ZeroDivisionError: broken experiment" in panel.status.value
    assert "Traceback" in panel.progress.outputs[0]["text"]


def _zoom(live: LiveFigure, axes: dict, uirevision=LiveFigure.uirevision) -> None:
    """What the browser does when a person zooms: the view tracker's state arrives from the front end."""
    live.view_tracker.set_state({"view": {"uirevision": uirevision, "axes": axes}})


def test_zoom_survives_an_update():
    """Every shown figure carries the same uirevision; once the person zoomed, the next figure is sent with their axis
    ranges (not reset), while its data changes and the panel's own figure stays unzoomed."""
    live = LiveFigure(go.Figure(go.Scatter(y=[1.0, 2.0])))
    first = _shown(live)["layout"]
    live.update(go.Figure(go.Scatter(y=[3.0, 1.0, 2.0])))
    second = _shown(live)["layout"]
    assert first["uirevision"] == second["uirevision"] == LiveFigure.uirevision
    for layout in (first, second):  # never zoomed: plotly autoranges
        assert "range" not in layout.get("xaxis", {}) and "range" not in layout.get("yaxis", {})
    assert live.view_tracker.target in live._dom_classes  # how the tracker finds the plot in the page

    _zoom(live, {"xaxis": [0.5, 1.5], "yaxis": [-1.0, 4.0], "xaxis7": [0, 1], "bogus": [0, 1]})
    live.update(go.Figure(go.Scatter(y=[9.0, 8.0, 7.0, 6.0])))
    shown = _shown(live)
    assert _decode(shown["data"][0]["y"]) == [9.0, 8.0, 7.0, 6.0]  # the data changed
    assert shown["layout"]["uirevision"] == LiveFigure.uirevision
    assert shown["layout"]["xaxis"]["range"] == [0.5, 1.5] and shown["layout"]["xaxis"]["autorange"] is False
    assert shown["layout"]["yaxis"]["range"] == [-1.0, 4.0]
    assert "xaxis7" not in shown["layout"] and "bogus" not in shown["layout"]  # no axis the figure lacks
    assert live.figure.layout.xaxis.range is None  # exports and tests see the panel's figure, unzoomed

    own = go.Figure(go.Scatter(y=[1.0]), layout={"uirevision": "mine"})  # a new uirevision resets the view
    live.update(own)
    assert _shown(live)["layout"]["uirevision"] == "mine" and "range" not in _shown(live)["layout"].get("xaxis", {})
    assert live.view_tracker.view == {}
    live.update(go.Figure(go.Scatter(y=[2.0])))  # and it does not come back
    assert "range" not in _shown(live)["layout"].get("xaxis", {})


def test_zoom_on_a_subplot_axis_is_kept():
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2)
    fig.add_scatter(y=[1, 2], row=1, col=1)
    fig.add_scatter(y=[3, 4], row=1, col=2)
    live = LiveFigure(fig)
    _zoom(live, {"xaxis2": [0.2, 0.8]})
    live.update(go.Figure(fig))
    layout = _shown(live)["layout"]
    assert layout["xaxis2"]["range"] == [0.2, 0.8] and "range" not in layout["xaxis"]


def test_mimebundle_is_what_plotlys_mime_renderer_sends():
    """figure_mimebundle builds the bundle itself (plotly.io's renderer registry imports nbformat and jsonschema,
    seconds per kernel); the JSON must stay what plotly's own "plotly_mimetype" renderer sends."""
    import plotly.io as pio

    fig = go.Figure(go.Scatter(x=np.arange(4.0), y=np.arange(4.0) ** 2, name="sq"))
    fig.update_layout(title="t")
    ours = figure_mimebundle(fig)[PLOTLY_MIME]
    theirs = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())[PLOTLY_MIME]
    assert ours == theirs


def test_model_panel_recomputes_your_own_model_on_every_run(monkeypatch):
    """Built-in models are served from the cache on a repeated Run; a module:factory model is recomputed (its
    code may have changed between presses)."""
    from workbench.panels.model import ModelPanel

    panel = ModelPanel(run=False)
    keys = []
    monkeypatch.setattr(panel, "model_and_data", lambda: (None, np.zeros((8, 2)), None, None, ""))
    monkeypatch.setattr(panel, "experiment", lambda key, *a, **k: keys.append(key))
    panel.refresh()
    panel.refresh()
    assert keys[0] == keys[1]
    panel.model.value = "factory"
    panel.refresh()
    panel.refresh()
    assert keys[2] != keys[3] and keys[2][1][0] == panel.factory.value


def test_a_move_during_a_stale_chunk_says_queued_not_computing():
    """While the previous experiment finishes its current chunk, the status says the new request waits ("experiment
    queued"), not the instant part's bare "computing..." (which stayed up to a minute in notebook 02: issue 12)."""
    gate = threading.Event()

    class Gated(Slow):
        def update(self) -> None:
            v = self.n.value
            self.theory.append(v)

            def chunks():
                self.started.append(v)
                if v == 1:
                    gate.wait(60)  # the old experiment's chunk: held until the test has looked at the status
                yield np.full(1, float(v)), 1.0, "chunk 1"
                self.finished.append(v)

            self.experiment(v, f"value {v}", chunks, lambda ys, done: None)

    panel = Gated(threaded=True, chunks=1, chunk_s=0.0)
    panel.refresh()
    for _ in range(500):
        if panel.started:
            break
        threading.Event().wait(0.01)
    assert panel.started == [1]
    panel.n.value = 5  # synchronous instant part (no event loop here); the experiment of 1 is inside its chunk
    try:
        assert "experiment queued" in panel.status.value, panel.status.value
    finally:
        gate.set()
    assert panel.wait(timeout=60)
    assert panel.finished == [5] and "value 5 done in" in panel.status.value


@pytest.mark.parametrize("fast", ["1", "0"])
def test_every_slider_default_sits_on_its_step_grid(monkeypatch, fast):
    """A slider value off its grid (min + k step) is snapped by the browser's slider on the first touch and sent
    back: an unasked second recomputation beside the one the person asked for (notebook 01's sample size 100 on
    a grid of 8 from 8 became 104). Every panel, in fast and full mode; the panels are built with their
    recomputations switched off (only the widgets are looked at)."""
    import importlib

    monkeypatch.setenv("WORKBENCH_FAST", fast)
    monkeypatch.setattr(Panel, "_run", lambda self, fn: None)
    panels = []
    for name in ("ntk", "hessian", "dynamics", "lr_batch", "tour", "symbolic", "model"):
        module = importlib.import_module(f"workbench.panels.{name}")
        for cls in vars(module).values():
            if isinstance(cls, type) and issubclass(cls, Panel) and cls.__module__ == module.__name__:
                monkeypatch.setattr(cls, "update", lambda self: None)
                panels.append(cls())
    assert len(panels) >= 7
    checked, off_grid = 0, []
    for panel in panels:
        for attr, w in vars(panel).items():
            if isinstance(w, (W.IntSlider, W.FloatSlider)):
                checked += 1
                k = (w.value - w.min) / w.step
                if abs(k - round(k)) > 1e-9 or not w.min <= w.value <= w.max:
                    off_grid.append(f"{type(panel).__name__}.{attr}: {w.value} on min {w.min}, step {w.step}")
    assert checked >= 10 and not off_grid, off_grid


def test_callbacks_from_two_threads_run_one_at_a_time():
    """JupyterLab may deliver widget messages on a kernel subshell (a second thread): two control changes of one
    panel then call back at once. Their instant parts must not interleave (each sees a consistent panel and
    leaves a consistent status line): the second waits for the first."""
    import time

    spans: list[tuple[float, float]] = []

    class Slow(Demo):
        def update(self) -> None:
            start = time.perf_counter()
            time.sleep(0.2)
            super().update()
            spans.append((start, time.perf_counter()))

    panel = Slow()
    spans.clear()
    threads = [threading.Thread(target=lambda v=v: setattr(panel.n, "value", v)) for v in (3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = sorted(spans)
    assert b0 >= a1, f"instant parts overlapped: {spans}"
    assert "updated in" in panel.status.value and panel.calls[-1] == panel.n.value


def test_a_background_draw_that_moves_a_watched_control_does_not_deadlock_a_newer_request():
    """A background draw that sets a watched control (notebook 02's draw moves its time slider) calls back into
    the panel from the worker thread while holding the draw lock; a newer request on the main thread meanwhile
    holds the panel's instant-part lock and waits for the draw lock. Both must finish."""
    import time

    class Drawing(Panel):
        def __init__(self) -> None:
            super().__init__()
            self.runner.threaded = True
            self.runner.debounce_s = 0.0
            self.a = W.IntSlider(value=0, min=0, max=10)
            self.b = W.IntSlider(value=0, min=0, max=100)
            self.redraws = 0
            self.layout([self.a, self.b], [])
            self.watch([self.a])
            self.watch([self.b], self.redraw)

        def redraw(self) -> None:
            self.redraws += 1

        def update(self) -> None:
            a = self.a.value

            def chunks():
                yield a, 1.0, "done"

            def draw(_result, _done: bool) -> None:
                time.sleep(0.3)  # the main thread's newer request arrives while this draw holds the draw lock
                self.b.value += 1

            self.experiment(a, "drawing", chunks, draw)

    panel = Drawing()
    panel.a.value = 1
    time.sleep(0.1)  # the worker is inside the draw now
    mover = threading.Thread(target=lambda: setattr(panel.a, "value", 2), daemon=True)
    mover.start()
    mover.join(10)
    assert not mover.is_alive(), "the newer request deadlocked against the background draw"
    assert panel.wait(10) and panel.redraws >= 1
