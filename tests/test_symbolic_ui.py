"""Safe expression parsing, Price's identity for typed activations, plot builders and the symbolic panel."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from workbench.plots.symbolic import check_figure, error_ratio_figure, price_figure
from workbench.symbolic.expressions import ExpressionError, parse_expression
from workbench.symbolic.price import price_check

X = sp.Symbol("x", real=True)


def test_parse_accepts_math_and_helpers():
    assert sp.simplify(parse_expression("tanh(2*x)") - sp.tanh(2 * X)) == 0
    assert sp.simplify(parse_expression("x^2 * exp(-x)") - X ** 2 * sp.exp(-X)) == 0
    assert parse_expression("relu(x)") == sp.Max(X, 0)
    assert sp.simplify(parse_expression("gelu(x)") - X / 2 * (1 + sp.erf(X / sp.sqrt(2)))) == 0


@pytest.mark.parametrize("text,match", [
    ("__import__('os')", "forbidden token"),
    ("os.system('ls')", "not allowed"),
    ("y + 1", "unknown name 'y'"),
    ("foo(x)", "function 'foo' is not allowed"),
    ("x +", "cannot parse"),
    ("", "empty"),
    ("[x, x]", "List is not allowed"),
    ("tanh(x, k=1)", "keyword arguments"),
    ("1/0", "not finite"),
    ("'x'", "only numbers"),
    ("x" * 300, "too long"),
])
def test_parse_rejects_bad_text_with_a_clear_message(text, match):
    with pytest.raises(ExpressionError, match=match):
        parse_expression(text)


def test_parse_rejects_non_strings():
    with pytest.raises(ExpressionError, match="must be a string"):
        parse_expression(3)  # type: ignore[arg-type]


def test_price_identity_holds_for_smooth_activations():
    # tolerance: the two sides' Gauss-Hermite error estimates |Q(n) - Q(2n)| (see price_check)
    for text in ("tanh(x)", "sin(2*x)", "x^3"):
        res = price_check(text, k11=1.0, k22=0.7, num=5, nodes=40)
        assert res.passed and res.smooth, res.message()
        assert np.max(np.abs(res.lhs - res.rhs)) < 1e-6


def test_price_flags_kinked_activation():
    res = price_check("relu(x)", num=2, nodes=8)
    assert not res.smooth and "kinked" in res.message()


def test_price_rejects_bad_arguments():
    with pytest.raises(ValueError, match="k11 must be > 0"):
        price_check("tanh(x)", k11=-1.0)
    with pytest.raises(ExpressionError, match="unknown name"):
        price_check("tanh(z)")


def test_plot_builders():
    x = np.linspace(0, 1, 4)
    fig = check_figure(x, x, x + 0.01, np.full(4, 0.1), sweep_name="t", output_name="f",
                       curve=(np.linspace(0, 1, 20), np.linspace(0, 1, 20)))
    assert len(fig.data) == 3
    with pytest.raises(ValueError, match="one shape"):
        check_figure(x, x[:2], x, x, sweep_name="t", output_name="f")
    fig = error_ratio_figure(["a", "b"], [0.1, 3.0], [True, False])
    assert fig.data[0].marker.color[1] != fig.data[0].marker.color[0]
    with pytest.raises(ValueError, match="one length"):
        error_ratio_figure(["a"], [0.1, 3.0], [True, False])
    assert len(price_figure(x, x, x, x, activation="tanh(x)").data) == 2


def test_symbolic_panel_smoke():
    from workbench.panels.symbolic import SymbolicPanel

    panel = SymbolicPanel("gd_stability")
    assert "PASS" in panel.result.value
    assert "$$" in panel.steps.value and "rsolve" in panel.steps.value
    assert len(panel.figures["check"].figure.data) >= 2
    assert "holds" in panel.price_message.value
    panel.activation.value = "import os"
    panel._run(panel.update_price)
    assert "cannot parse" in panel.price_message.value
    panel.output.value = 1
    assert panel.figures["check"].figure.layout.yaxis.title.text == "eta_opt"


def test_check_all_button_streams_the_table_in_the_background(monkeypatch):
    """"Run check_all" is a background experiment: the table grows one check per chunk, and the finished table
    holds one row per (derivation, available method), as symbolic.check_all does."""
    from workbench import symbolic
    from workbench.panels.symbolic import SymbolicPanel

    monkeypatch.setattr(symbolic, "names", lambda: ("gd_stability", "linearized_flow"))
    panel = SymbolicPanel("gd_stability")
    panel.runner.threaded = True
    sizes = []
    draw = panel.figures["check_all"].update
    monkeypatch.setattr(panel.figures["check_all"], "update", lambda fig: (sizes.append(len(fig.data[0].x)), draw(fig)))
    panel._run(panel.run_check_all)
    table = panel.check_table
    expected = [(d.name, m.name) for d in map(symbolic.get, ("gd_stability", "linearized_flow"))
                for m in d.methods if m.available()]
    assert [(r.name, r.method) for r in table] == expected
    # drawn after every check (then once more as the finished result), not only once at the end
    assert sizes == [*range(1, len(expected) + 1), len(expected)]
    assert "gd_stability" in panel.table.value and table.all_passed
