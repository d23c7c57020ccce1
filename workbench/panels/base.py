"""The base class of every notebook panel: layout, instant and background recomputation, status line, export bar.

A panel subclass builds its widgets and figures, then calls :meth:`Panel.watch` with the widgets whose changes
should trigger a recomputation. Its work has two parts:

* the *instant* part (closed-form theory, formulas, cached results) runs synchronously in the widget callback
  (:meth:`Panel.update`, or the handler given to :meth:`Panel.watch`), so a control is acknowledged at once;
* the *experiment* part (training, Hessians, sweeps, Monte Carlo) is handed to :meth:`Panel.experiment`: a
  generator of partial results that the panel's :class:`~workbench.panels.background.Runner` runs on a worker
  thread, drawing each chunk as it finishes, caching the result by its parameters, and dropping a stale
  computation between chunks when a newer setting arrives (the last value wins). The status line and the
  progress bar say what is computed and how far along it is. :meth:`Panel.wait` blocks until it is done.

Outside a kernel (tests, scripts) everything runs synchronously, as do the experiments of a Voila app's first
render (its page restores widget state from the kernel once all cells ran; updates sent while it restores could
be lost), and every run when static figures are on.

Progress shows in the panel's own status line and progress bar (one widget each, created once), never in
``tqdm`` widget bars: a panel passes ``progress=False`` to the package functions. A traceback of a failed
recomputation is written into the panel's ``progress`` output area by assigning its ``outputs`` (never through
an ``Output`` capture context): in Voila the notebook executor mirrors captured output into the widget's state
with its own messages, a second writer next to the panel's own assignments, and tqdm bars put views of widget
models there that are later closed; that is the likely cause of Voila's "Error displaying widget: model not
found" under load (not traced message by message), and it no longer exists.

Export: :meth:`Panel.export` (and the panel's export button) writes every figure as standalone HTML,
and as SVG/PNG where kaleido finds a Chromium (:func:`export_figures`).
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
import traceback
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from workbench import config
from workbench.panels.background import Chunk, Experiment, Runner
from workbench.panels.figure import LiveFigure
from workbench.plots import save_html

#: formats :func:`export_figures` writes; "html" always works, "svg"/"png" need kaleido and a Chromium
EXPORT_FORMATS = ("html", "svg", "png")
_EXPORT_CHOICES = (("HTML", ("html",)), ("HTML + SVG", ("html", "svg")), ("HTML + PNG", ("html", "png")),
                   ("HTML + SVG + PNG", ("html", "svg", "png")))


def export_figures(figures: dict[str, go.Figure | LiveFigure], directory: str | Path,
                   formats: Sequence[str] = ("html",)) -> tuple[list[Path], str]:
    """Write each figure as ``<directory>/<name>.<format>``; returns (paths written, a note on what was skipped).

    HTML is standalone (plotly.js embedded, opens offline). SVG and PNG go through kaleido in one browser
    session (``plotly.io.write_images``); without kaleido or a Chromium they are skipped and the note says why.
    """
    formats = tuple(formats)
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {EXPORT_FORMATS}, got {formats!r}")
    directory = Path(directory)
    written: list[Path] = []
    plain = {name: go.Figure(fig.figure if isinstance(fig, LiveFigure) else fig) for name, fig in figures.items()}
    if "html" in formats:
        written += [save_html(fig, directory / f"{name}.html") for name, fig in plain.items()]
    static = [f for f in formats if f != "html"]
    note = ""
    if static and plain:
        import plotly.io as pio

        directory.mkdir(parents=True, exist_ok=True)
        figs = [fig for fig in plain.values() for _ in static]
        paths = [directory / f"{name}.{fmt}" for name in plain for fmt in static]
        try:
            pio.write_images(figs, paths, format=[p.suffix[1:] for p in paths])
            written += paths
        except Exception as exc:  # kaleido missing or no Chromium: HTML only, and say so
            note = f"{'/'.join(static).upper()} skipped ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    return written, note


def _in_kernel() -> bool:
    """True inside a running IPython kernel (where an Output widget captures output)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    ip = get_ipython()
    return ip is not None and getattr(ip, "kernel", None) is not None


def _in_voila() -> bool:
    """True in a kernel started by Voila (it sets ``SERVER_SOFTWARE=voila/<version>`` in the kernel's environment)."""
    return os.environ.get("SERVER_SOFTWARE", "").startswith("voila")


#: the status while the instant part of an update runs
_INSTANT_COMPUTING = "<small>computing...</small>"


class Panel:
    """Subclass and implement :meth:`update` (recompute and redraw from the current widget values)."""

    #: seconds to wait after the last widget change before running the instant part (0: at once)
    debounce_s: float = 0.0

    def __init__(self) -> None:
        #: the panel's figures by name; each is shown and redrawn through its LiveFigure
        self.figures: dict[str, LiveFigure] = {}
        self.status = W.HTML()
        self.status.add_class("wb-status")  # benchmarks/ui.py reads the status line by this class
        self.export_dir = W.Text(value="exports", description="export to", layout=W.Layout(width="260px"))
        self.export_format = W.Dropdown(options=_EXPORT_CHOICES, value=("html",), description="as",
                                        layout=W.Layout(width="220px"))
        self.export_button = W.Button(description="Export figures", icon="download",
                                      tooltip="Save every figure as standalone HTML (and SVG/PNG where kaleido works)")
        self.export_button.on_click(lambda _b: self.export(self.export_dir.value))
        for w in (self.export_dir, self.export_format, self.export_button):
            w.add_class("wb-export")  # browser tests leave the export bar alone when they look for controls
        #: output area of recomputations: progress bars and tracebacks of callbacks show here
        self.progress = W.Output()
        #: progress of the background experiment (hidden when none runs)
        self.progress_bar = W.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info",
                                            layout=W.Layout(width="260px", visibility="hidden"))
        self.progress_bar.add_class("wb-progress")
        self._pending: asyncio.TimerHandle | None = None
        #: one instant part at a time: JupyterLab may hand widget messages to a kernel subshell (ipykernel 7), a
        #: thread beside the main one, so two callbacks of one panel can otherwise run at once
        self._run_lock = threading.RLock()
        self._busy = False
        self._instant_note = ""
        self._displayed = False
        self._shown = threading.Event()  # set once displayed: the worker starts after the first paint is sent
        #: runs the experiment part (see :mod:`workbench.panels.background`)
        self.runner = Runner(self._on_experiment_status, threaded=None, shown=self._shown)
        self.runner.is_threaded = self._threaded  # type: ignore[method-assign]

    # ---------------------------------------------------------------- layout
    def layout(self, controls: Sequence[W.Widget], body: Sequence[W.Widget]) -> W.VBox:
        """Controls on top, then the body (figures), then status and export bar."""
        self.widget = W.VBox([*controls, *body, self.progress, W.HBox([self.status, self.progress_bar]),
                              W.HBox([self.export_button, self.export_format, self.export_dir])])
        return self.widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._displayed = True
        bundle = self.widget._repr_mimebundle_()
        if config.static_figures() is not None:
            bundle["text/html"] = self.static_html()
        display(bundle, raw=True)
        self._shown.set()

    def static_html(self) -> str:
        """The panel as static HTML: every figure as an image (static figures on) and the status line.

        A displayed panel carries this next to its widget view: where widgets do not render (GitHub, nbconvert
        HTML of a notebook saved without widget state) this is what shows, as of the panel's first display.
        """
        images = "".join(fig.static_html() for fig in self.figures.values())
        return f'<div class="wb-static-panel">{images}<div>{self.status.value}</div></div>'

    def _clear_progress(self) -> None:
        """Empty the progress area (only if it shows something: no message otherwise)."""
        if self.progress.outputs:
            self.progress.outputs = ()

    def _show_traceback(self, text: str) -> None:
        """Show ``text`` (a traceback) in the progress area, as the area's whole content."""
        self.progress.outputs = ({"output_type": "stream", "name": "stderr", "text": text},)

    # ---------------------------------------------------------------- recomputation
    def update(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def watch(self, widgets: Sequence[W.Widget], handler: Callable[[], None] | None = None) -> None:
        """Recompute (``handler`` or :meth:`update`) when any of ``widgets`` changes value, debounced."""
        fn = handler or self.update
        for w in widgets:
            w.observe(lambda _change, fn=fn: self.schedule(fn), names="value")

    def defer(self, widgets: Sequence[W.Widget], button: W.Button) -> None:
        """Controls that take effect only through ``button`` (an expensive run): a change says so in the status
        line instead of recomputing, and the controls carry the CSS class ``wb-deferred`` (the browser tests
        change live controls only)."""
        def note(_change) -> None:
            if not self._busy:
                self.status.value = (f"<small>settings changed: press <b>{html.escape(button.description)}</b> "
                                     f"to recompute</small>")

        for w in widgets:
            w.add_class("wb-deferred")
            w.observe(note, names="value")

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
        if threading.get_ident() == self.runner._computing_thread:
            # a callback set off by a background draw (e.g. a draw that moves a time slider): it is part of that
            # draw, which the runner's draw lock already serializes. Taking the panel lock here could deadlock: a
            # newer request on the main thread holds it while it waits for the draw lock this draw holds.
            self._run_locked(fn)
            return
        with self._run_lock:
            self._run_locked(fn)

    def _run_locked(self, fn: Callable[[], None]) -> None:
        self._pending = None
        start = time.perf_counter()
        self._busy = True
        self.status.value = _INSTANT_COMPUTING
        error: Exception | None = None
        try:
            fn()
        except Exception as exc:  # shown in the panel, not swallowed: the traceback goes to the output area
            error = exc
            self._show_traceback(traceback.format_exc())
            if not _in_kernel():  # a script or test: on stderr too
                traceback.print_exc()
        finally:
            self._busy = False
        if error is not None:
            self.status.value = (f"<span style='color:#b00'><b>error:</b> {html.escape(type(error).__name__)}: "
                                 f"{html.escape(str(error))}</span>")
            return
        self._clear_progress()
        elapsed = time.perf_counter() - start
        if self.runner.busy:  # the experiment part goes on in the background and reports its own progress
            self._instant_note = f"updated in {elapsed:.2f} s"
            # the runner's own "computing <what>: ..." stays; the instant part's "computing..." (set above, while a
            # stale experiment may still finish its chunk) says the request waits
            if self.status.value == _INSTANT_COMPUTING or "computing" not in self.status.value:
                self.status.value = f"<small>{self._instant_note} &middot; experiment queued...</small>"
            return
        self._instant_note = ""
        self.status.value = (f"<small>updated in {elapsed:.2f} s &middot; "
                             f"{html.escape(config.device_report())}</small>")

    # ---------------------------------------------------------------- experiments (background)
    def _threaded(self) -> bool:
        """Experiments on a worker thread: in a kernel, without static figures, and in Voila once displayed."""
        if self.runner.threaded is not None:
            return self.runner.threaded
        if not _in_kernel() or config.static_figures() is not None:
            return False
        return self._displayed or not _in_voila()

    def experiment(self, cache_key: Hashable, label: str, chunks: Callable[[], Iterator[Chunk]],
                   draw: Callable[[object, bool], None], *, kind: str = "experiment") -> None:
        """Compute ``chunks()`` in the background (see :class:`~workbench.panels.background.Experiment`).

        ``cache_key``: the parameters the result depends on (a computed key is drawn from the cache at once);
        ``draw(partial, done)`` redraws the figures from a partial or the final result. A newer request of the
        same ``kind`` supersedes this one between chunks.
        """
        self.runner.submit(Experiment(key=(type(self).__name__, kind, cache_key), label=label, chunks=chunks,
                                      draw=draw, kind=kind))

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the background experiments are finished (True) or ``timeout`` seconds passed (False)."""
        return self.runner.wait(timeout)

    def _on_experiment_status(self, text: str, fraction: float, state: str) -> None:
        if state == "error":
            head, _, tb = text.partition("\n")
            self.status.value = f"<span style='color:#b00'><b>error:</b> {html.escape(head)}</span>"
            self._show_traceback(tb)
            self.progress_bar.layout.visibility = "hidden"
            return
        if state == "running":
            self._clear_progress()
        self.progress_bar.value = max(0.0, min(1.0, fraction))
        self.progress_bar.layout.visibility = "visible" if state == "running" else "hidden"
        prefix = f"{self._instant_note} &middot; " if self._instant_note else ""
        tail = "" if state == "running" else f" &middot; {html.escape(config.device_report())}"
        self.status.value = f"<small>{prefix}{html.escape(text)}{tail}</small>"

    # ---------------------------------------------------------------- export
    def export(self, directory: str | Path, formats: Sequence[str] | None = None) -> list[Path]:
        """Save every figure as standalone HTML, and as SVG/PNG where kaleido can find a browser.

        ``formats``: a subset of :data:`EXPORT_FORMATS`; default: the panel's export-format dropdown (HTML).
        """
        written, note = export_figures(self.figures, directory, formats or self.export_format.value)
        self.status.value = (f"<small>exported {len(written)} file(s) to {html.escape(str(directory))}"
                             + (f"; {html.escape(note)}" if note else "") + "</small>")
        return written
