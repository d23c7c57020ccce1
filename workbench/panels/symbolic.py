"""The symbolic-checks panel: pick a derivation, read its sympy steps, see the closed form against numerics.

Controls: derivation, numerical method and output; "Run check_all" runs the whole registry in the background
(the table grows check by check) and shows the table (with device and precision) and the error/tolerance bars; a text box takes an
activation phi(x) (parsed safely, never evaluated) and checks Price's identity for it.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import sympy as sp

from workbench import config, symbolic
from workbench.panels.base import Panel
from workbench.panels.figure import LiveFigure
from workbench.plots.symbolic import check_figure, error_ratio_figure, price_figure
from workbench._compat import deprecated_alias
from workbench.studies.symbolic import dense_curve as _dense_curve
from workbench.symbolic.core import CheckResult, Derivation
from workbench.symbolic.expressions import ExpressionError
from workbench.symbolic.price import price_check


def derivation_html(deriv: Derivation) -> str:
    """The derivation as HTML with MathJax ($$ ... $$) blocks: assumptions, steps, closed form."""
    derived = deriv.derivation()
    parts = [f"<h4>{html.escape(deriv.title)}</h4><p><i>{html.escape(deriv.references)}</i></p>",
             f"<p>{html.escape(deriv.summary)}</p><p><b>Assumptions:</b> "]
    parts.append("; ".join(f"\\({sp.latex(sym)}\\): {html.escape(text)}" for sym, text in deriv.assumptions))
    parts.append("</p><ol>")
    for step in derived.steps:
        parts.append(f"<li>{html.escape(step.text)}<br>$$ {step.latex()} $$</li>")
    parts.append("</ol><p><b>Closed form:</b></p>")
    for line in deriv.latex_closed_form():
        parts.append(f"<p>$$ {line} $$</p>")
    if derived.numeric_identity:
        parts.append(f"<p><i>Checked numerically at random points: {html.escape(derived.numeric_identity)}</i></p>")
    return "".join(parts)


def result_html(result: CheckResult) -> str:
    color = "#080" if result.passed else "#b00"
    verdict = "PASS" if result.passed else "FAIL"
    return (f"<p><b style='color:{color}'>{verdict}</b> &middot; max abs err {result.max_abs_err:.3g} "
            f"(rel {result.max_rel_err:.3g}) &middot; worst err/tol {result.worst_ratio:.3g} &middot; "
            f"{html.escape(result.device)}, {result.dtype}, matmul {result.precision}, {result.seconds:.2f} s<br>"
            f"<small>tolerance: {html.escape(result.tolerance_reason)}; numerics: {html.escape(result.backend)}</small></p>")


class SymbolicPanel(Panel):
    """Dropdowns for derivation/method/output; steps in LaTeX; closed form vs numerics; check_all; Price's identity."""

    def __init__(self, name: str = "linearized_flow") -> None:
        super().__init__()
        self.derivation = W.Dropdown(options=symbolic.names(), value=name, description="derivation",
                                     layout=W.Layout(width="360px"))
        self.method = W.Dropdown(description="numerics", layout=W.Layout(width="360px"))
        self.output = W.Dropdown(description="output", layout=W.Layout(width="360px"))
        self.steps = W.HTMLMath()
        self.result = W.HTML()
        self.table = W.HTML()
        self.run_all = W.Button(description="Run check_all", icon="play", tooltip="every derivation and method")
        self.run_all.on_click(lambda _b: self._run(self.run_check_all))
        self.activation = W.Text(value="tanh(x)", description="phi(x) =", layout=W.Layout(width="360px"))
        self.price_button = W.Button(description="Check Price's identity", icon="check")
        self.price_button.on_click(lambda _b: self._run(self.update_price))
        self.price_message = W.HTML()
        self._last: CheckResult | None = None
        self._curve: Any = None  # the dense closed-form curve of ``_curve_of`` (a CheckResult)
        self._curve_of: CheckResult | None = None
        self._table: symbolic.CheckTable | None = None
        self._syncing = False
        self._sync_choices()
        self.figures["check"] = LiveFigure()
        self.figures["check_all"] = LiveFigure()
        self.figures["price"] = LiveFigure()
        controls = [W.HBox([self.derivation, self.method, self.output])]
        body = [self.steps, self.result, self.figures["check"],
                W.HTML("<h4>Whole registry</h4>"), self.run_all, self.table, self.figures["check_all"],
                W.HTML("<h4>Price's theorem for your activation</h4>"
                       "<small>Allowed: x, numbers, + - * / ^, and functions such as tanh, erf, exp, sin, relu, "
                       "gelu, sigmoid. The text is parsed, never executed.</small>"),
                W.HBox([self.activation, self.price_button]), self.price_message, self.figures["price"]]
        self.layout(controls, body)
        self.derivation.observe(lambda _c: self._on_derivation(), names="value")
        self.method.observe(lambda _c: None if self._syncing else self.schedule(self.update), names="value")
        self.output.observe(lambda _c: None if self._syncing else self._redraw(), names="value")
        self.refresh()
        self._initial_price()

    def _sync_choices(self) -> None:
        """Method and output choices of the selected derivation (without triggering recomputations)."""
        d = symbolic.get(self.derivation.value)
        methods = [m.name for m in d.methods if m.available()]
        self._syncing = True
        try:
            self.method.options = methods
            self.method.value = methods[0]
            self.output.options = [(o, i) for i, o in enumerate(d.outputs)]
            self.output.value = 0
        finally:
            self._syncing = False

    def _on_derivation(self) -> None:
        self._sync_choices()
        self.schedule(self.update)

    def update(self) -> None:
        """Instant: the derivation's steps; background: the numerical check (cached per derivation and method)."""
        d = symbolic.get(self.derivation.value)
        self.steps.value = derivation_html(d)
        key = (d.name, self.method.value)
        if self._last is None or (self._last.name, self._last.method) != key:
            self.result.value = f"<p><i>checking {html.escape(d.name)} with {html.escape(key[1])}...</i></p>"

        def chunks():
            yield symbolic.check(key[0], method=key[1]), 1.0, f"{key[0]} / {key[1]}"

        def draw(result: CheckResult, _done: bool) -> None:
            self._last = result
            self.result.value = result_html(result)
            self._redraw()

        self.experiment(key, "numerical check", chunks, draw)

    def _redraw(self) -> None:
        with self.runner.draw_lock:  # the output dropdown (main thread) and a background draw do not interleave
            self._redraw_check()

    def _redraw_check(self) -> None:
        r = self._last
        if r is None or r.name != self.derivation.value:
            return
        d = symbolic.get(r.name)
        i = int(self.output.value or 0)
        col = d.point_names.index(d.sweep[0])
        if self._curve_of is not r:  # the closed form on a dense grid, every output at once: the output dropdown
            self._curve, self._curve_of = _dense_curve(d, r), r  # only picks a column of it
        curve = self._curve
        new = check_figure(r.points[:, col], r.closed[:, i], r.numeric[:, i], r.tolerances[:, i],
                           sweep_name=d.sweep[0], output_name=d.outputs[i],
                           curve=None if curve is None else (curve[0], curve[1][:, i]),
                           title=f"{d.title} [{r.method}]")
        self.figures["check"].update(new)

    def run_check_all(self) -> None:
        """Every (derivation, method) pair of the registry in the background, one check per chunk: the table and
        the error/tolerance bars grow as checks finish (:attr:`check_table` waits for the whole table)."""
        jobs = [(d.name, m.name) for d in map(symbolic.get, symbolic.names()) for m in d.methods if m.available()]

        def chunks():
            table = symbolic.CheckTable()
            for i, (name, method) in enumerate(jobs):
                table.append(symbolic.check(name, method=method))
                yield symbolic.CheckTable(table), (i + 1) / len(jobs), f"{name} / {method}"

        def draw(table: symbolic.CheckTable, _done: bool) -> None:
            self._table = table
            self.table.value = (table.to_html()
                                + f"<p><small>{html.escape(table.format().splitlines()[-1])}</small></p>")
            self.figures["check_all"].update(error_ratio_figure([f"{r.name}/{r.method}" for r in table],
                                                                [r.worst_ratio for r in table],
                                                                [r.passed for r in table]))

        self.experiment(tuple(jobs), "check_all", chunks, draw, kind="check_all")

    @property
    def check_table(self) -> symbolic.CheckTable | None:
        """The table of the last "Run check_all" (waits for it to finish); None before the first run."""
        self.wait()
        return self._table

    def update_price(self) -> None:
        """Price's identity for the text box's activation, at once (the button; user text is parsed under a time
        limit, which needs the main thread)."""
        try:
            res = price_check(self.activation.value, num=config.pick(7, 13))
        except ExpressionError as exc:
            self._show_price(exc)
            return
        self._show_price(res)

    def _initial_price(self) -> None:
        """The default activation's check in the background, queued after the derivation's numerical check, so the
        panel appears (and its first figure is drawn) without waiting for it (~1-2 s with compilation)."""
        text = self.activation.value

        def chunks():
            yield price_check(text, num=config.pick(7, 13)), 1.0, f"Price's identity for {text}"

        self.experiment(("price", text), "Price's identity", chunks, lambda res, _done: self._show_price(res),
                        kind="price")

    def _show_price(self, res: Any) -> None:
        if isinstance(res, ExpressionError):
            self.price_message.value = f"<span style='color:#b00'>{html.escape(str(res))}</span>"
            return
        self.price_message.value = html.escape(res.message())
        new = price_figure(res.k12, res.lhs, res.rhs, res.tolerance, activation=str(res.phi))
        self.figures["price"].update(new)

#: moved to the studies layer (presentation holds no computation); this name goes in the next release
dense_curve = deprecated_alias(_dense_curve, "workbench.panels.symbolic.dense_curve",
                               "workbench.studies.symbolic.dense_curve")
