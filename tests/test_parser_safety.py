"""Hostile text for the safe expression parser, Price's identity and string closed forms (issue 20)."""

from __future__ import annotations

import ast
import pathlib
import time

import pytest
import sympy as sp

import workbench
from workbench import symbolic
from workbench.symbolic.expressions import (MAX_DIGITS, MAX_EXPONENT, ExpressionError, parse_expression,
                                            run_with_time_limit)
from workbench.symbolic.price import price_check

X = sp.Symbol("x", real=True)


@pytest.mark.parametrize("text,match", [
    ("9**9**9", f"limit of 10\\*\\*{MAX_DIGITS}"),
    ("10**10**10", f"limit of 10\\*\\*{MAX_DIGITS}"),
    ("x**10**10**10", f"limit of 10\\*\\*{MAX_DIGITS}"),
    ("x**(2**2**2**2**2)", f"limit of 10\\*\\*{MAX_DIGITS}"),
    ("x^(9^9^9)", f"limit of 10\\*\\*{MAX_DIGITS}"),
    ("x**1000", f"\\|exponent\\| <= {MAX_EXPONENT}"),
    ("((((x^9)^9)^9)^9)", f"\\|exponent\\| <= {MAX_EXPONENT}"),
    ("1e308 * 10", f"magnitude 10\\*\\*{MAX_DIGITS}"),
    ("sqrt(-1)", "not real"),
    ("(-8)^(1/3)", "not real"),
    ("x/0", "divides by zero"),
    ("max(x)", "two or more arguments"),
    ("tanh(x, x)", "one argument"),
])
def test_power_towers_and_huge_numbers_are_refused_at_once(text, match):
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=match):
        parse_expression(text)
    # the refusal is computed from logarithms before any big number exists: far below a second
    assert time.perf_counter() - start < 1.0


def test_bounded_numbers_and_exponents_are_still_accepted():
    assert parse_expression("x^100") == X ** 100
    assert parse_expression("2^10 * x") == 1024 * X
    assert parse_expression("10^300 * x / 10^300") == X
    assert parse_expression("x^(1/3)") == X ** sp.Rational(1, 3)


def test_price_check_of_the_former_crash_is_one_sentence():
    with pytest.raises(ExpressionError, match="limit"):
        price_check("x**(2**2**2**2**2)", num=2, nodes=4)


def test_price_check_says_where_the_activation_is_undefined():
    with pytest.raises(ExpressionError, match=r"log\(x\) is undefined .* whole real line"):
        price_check("log(x)", num=2, nodes=8)
    with pytest.raises(ExpressionError, match="undefined"):
        price_check("sqrt(x)", num=2, nodes=8)
    with pytest.raises(ExpressionError, match="is infinite"):
        price_check("exp(exp(exp(exp(x))))", num=2, nodes=8)


def test_time_limit_stops_a_runaway_computation_with_a_sentence():
    def spin():
        while True:
            pass

    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="time limit of 0.2 s"):
        run_with_time_limit(spin, 0.2, "spinning")
    assert time.perf_counter() - start < 2.0
    assert run_with_time_limit(lambda: 3, 0.2, "three") == 3
    with pytest.raises(ValueError, match="time_limit"):
        run_with_time_limit(lambda: 3, 0.0, "zero")


def test_closed_form_text_is_parsed_safely_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"__import__('os').system('touch {marker}') * 0 + K_12"
    with pytest.raises(ExpressionError, match=r"closed_form\[0\].*forbidden"):
        symbolic.check("erf_price", method="quadrature", samples=20, num_points=2, closed_form=(hostile, "K_12"))
    with pytest.raises(ExpressionError, match=r"closed_form\[1\].*function 'os.system' is not allowed"):
        symbolic.check("erf_price", method="quadrature", samples=20, num_points=2,
                       closed_form=("K_12", "os.system('ls')"))
    assert not marker.exists()
    with pytest.raises(TypeError, match=r"closed_form\[0\]"):
        symbolic.check("erf_price", method="quadrature", samples=20, num_points=2, closed_form=([1], "K_12"))


def test_closed_form_text_uses_the_derivations_own_symbols():
    # the true erf kernel typed as text passes, twice it fails (same tolerance logic as the sympy closed forms)
    k_text = "2*asin(2*K_12/(sqrt(2*K_11 + 1)*sqrt(2*K_22 + 1)))/pi"
    dk = symbolic.get("erf_price").closed_form[1]
    assert symbolic.check("erf_price", method="quadrature", samples=30, num_points=3, closed_form=(k_text, dk)).passed
    assert not symbolic.check("erf_price", method="quadrature", samples=30, num_points=3,
                              closed_form=("2*" + k_text, dk)).passed
    parsed = symbolic.core.closed_form_expressions(symbolic.get("erf_price"), (k_text, dk))
    assert parsed[0] == symbolic.get("erf_price").closed_form[0]


_DANGEROUS = {"eval", "exec", "sympify", "parse_expr", "S", "compile", "__import__"}


def _dangerous_calls(path: pathlib.Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            # the builtins only as bare names: re.compile(...) and a Flax module's .eval() are not evaluation
            builtin_only = name in {"eval", "exec", "compile", "__import__"}
            if name in _DANGEROUS and (isinstance(f, ast.Name) or not builtin_only):
                found.append((name, node.lineno))
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name in _DANGEROUS:
                    found.append((f"import {alias.name}", node.lineno))
    return found


def test_no_text_reaches_eval_exec_sympify_or_parse_expr():
    """Grep the whole package: no call of eval/exec/compile/sympify/parse_expr/sp.S, not even behind a guard.

    The safe parser builds sympy objects from a checked ``ast`` tree itself, so the allowed list is empty;
    sympy's ``lambdify`` (which compiles *printed sympy objects*, never user text) is the only code generation.
    """
    root = pathlib.Path(workbench.__file__).parent
    hits = {str(p.relative_to(root)): calls for p in sorted(root.rglob("*.py")) if (calls := _dangerous_calls(p))}
    assert hits == {}, f"calls that could evaluate text: {hits}"


def test_the_grep_would_catch_a_sympify():
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write("import sympy\nsympy.sympify(text)\nfrom sympy.parsing.sympy_parser import parse_expr\neval(t)\n"
                 "import re\nre.compile('x')\nmodule.eval()\n")
    found = _dangerous_calls(pathlib.Path(fh.name))
    assert [n for n, _ in found] == ["sympify", "import parse_expr", "eval"] or len(found) == 3
