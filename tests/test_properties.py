"""Property-based tests of bad input over the public API and the expression parser (Hypothesis, issue 20).

Every call either returns finite, correctly shaped results or raises ``ValueError``/``TypeError`` whose message
names the argument at fault. The parser never runs past its limit on generated text, power towers and nested
functions. The example budget is fixed (``derandomize=True``, small ``max_examples``): the file is cheap and
gives the same examples on every run; the functions here are NumPy/SciPy or a single small JAX op chain.
"""

from __future__ import annotations

import math
import re
import time

import jax
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from workbench import data, dynamics, rmt
from workbench.kernels import analytic, sphere
from workbench.nets import MLP
from workbench.symbolic.core import JAX_MODULES
from workbench.symbolic.expressions import FUNCTIONS, TIME_LIMIT, ExpressionError, parse_expression, \
    run_with_time_limit

FAST = settings(derandomize=True, max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: each parser example gets this long, well above the ~10 ms an accepted expression takes here
PARSE_BUDGET = 2.0


def _names_argument(exc: BaseException, *names: str) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", str(exc)) for n in names)


def _call(fn, *names: str):
    """fn() -> its value, or None after checking that a ValueError/TypeError names one of ``names``."""
    try:
        return fn()
    except (ValueError, TypeError) as exc:
        assert _names_argument(exc, *names), f"error does not name {names}: {type(exc).__name__}: {exc}"
        return None


# ----------------------------------------------------------------------------- values with holes
_ELEMENTS = {
    np.float64: st.one_of(st.floats(-10, 10, width=32), st.sampled_from([np.nan, np.inf, -np.inf])),
    np.float32: st.one_of(st.floats(-10, 10, width=32), st.sampled_from([np.nan, np.inf, -np.inf])),
    np.int32: st.integers(-10, 10), np.int64: st.integers(-10, 10), np.bool_: st.booleans(),
    np.complex64: st.complex_numbers(max_magnitude=10, width=64),
}


def _arrays(max_dims: int = 2, max_side: int = 4):
    """Random dtype, shape (empty sides included) and values with NaN/inf placed anywhere in float arrays."""
    shapes = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side)
    return st.sampled_from(sorted(_ELEMENTS, key=str)).flatmap(
        lambda dt: hnp.arrays(dt, shapes, elements=_ELEMENTS[dt]))


_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-5, 5), st.booleans(),
                     st.text(max_size=4), st.none())


@FAST
@given(x=st.one_of(_arrays(), st.text(max_size=5)), sigma=_NUMBERS)
def test_semicircle_density_finite_or_named_error(x, sigma):
    out = _call(lambda: rmt.semicircle_density(x, sigma), "x", "sigma")
    if out is not None:
        assert out.shape == np.shape(x) and np.all(np.isfinite(out)) and np.all(out >= 0)


@FAST
@given(k=st.one_of(st.integers(-3, 3000), st.floats(0, 10), st.booleans(), st.text(max_size=3)), sigma=_NUMBERS)
def test_semicircle_moment_finite_or_named_error(k, sigma):
    out = _call(lambda: rmt.semicircle_moment(k, sigma), "k", "sigma", "semicircle_moment")
    if out is not None:
        assert isinstance(out, float) and math.isfinite(out)
        if k % 2 == 0 and k <= 40:  # exact Catalan numbers where float64 holds them
            j = k // 2
            assert out == pytest.approx(float(sigma) ** k * math.comb(2 * j, j) / (j + 1), rel=1e-12)


@FAST
@given(n=st.integers(1, 4), holes=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3),
                                                      st.sampled_from([np.nan, np.inf, -np.inf])), max_size=2),
       lr=_NUMBERS)
def test_gradient_flow_finite_or_named_error(n, holes, lr):
    a = np.random.default_rng(n).normal(size=(n, n))
    k = a @ a.T + n * np.eye(n)
    for i, j, v in holes:
        if i < n and j < n:
            k[i, j] = k[j, i] = v
    y = np.ones((n, 1))
    pred = _call(lambda: dynamics.gradient_flow(k, y, lr=lr), "ntk_train", "lr")
    if pred is not None:
        assert np.isfinite(k).all() and not isinstance(lr, (str, bool))


SMALL = settings(FAST, max_examples=12)  # each new accepted shape costs a JAX dispatch compile


@SMALL
@given(dim=st.one_of(st.integers(-1, 2), st.floats(0.5, 3.5), st.booleans(), st.text(max_size=2)),
       n=st.one_of(st.integers(0, 2), st.booleans()))
def test_dataset_sizes_are_integers_or_named_errors(dim, n):
    out = _call(lambda: data.linear_teacher(jax.random.PRNGKey(0), n, 2, dim), "dim", "n_train")
    if out is not None:
        assert out.x_train.shape == (n, dim) and np.all(np.isfinite(out.y_train))


@SMALL
@given(classes=st.lists(st.one_of(st.integers(-1, 10), st.floats(0, 9), st.booleans()), max_size=4))
def test_digit_classes_are_distinct_digits_or_named_errors(classes):
    out = _call(lambda: data.digits(jax.random.PRNGKey(0), 8, 4, classes=tuple(classes)), "classes", "classes[0]",
                "classes[1]", "classes[2]", "classes[3]")
    if out is not None:
        labels = np.argmax(np.asarray(out.y_train), axis=1)
        assert out.y_train.shape[1] == len(classes) and len(set(classes)) == len(classes)
        assert labels.min() >= 0 and labels.max() < len(classes)


_NET = MLP(depth=1, width=4, activation="tanh")
_PARAMS = _NET.init(jax.random.PRNGKey(0), 2)
_RELU = MLP(depth=1, width=4, activation="relu")  # closed-form kernels: no quadrature, cheap per example


@FAST
@given(layer=st.integers(0, 1), which=st.sampled_from(["W", "b"]), value=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_mlp_apply_names_the_layer_with_a_non_finite_parameter(layer, which, value):
    bad = [dict(p) for p in _PARAMS]
    bad[layer][which] = bad[layer][which].at[(0,) * bad[layer][which].ndim].set(value)
    with pytest.raises(ValueError, match=rf"params: layer {layer} .*'{which}'.*non-finite"):
        _NET.apply(bad, np.ones((2, 2)))
    # outside jit it can be switched off: NaN then propagates (inf may saturate in tanh, so only NaN is asserted)
    if np.isnan(value):
        assert np.all(np.isnan(np.asarray(_NET.apply(bad, np.ones((2, 2)), check=False))))


@settings(derandomize=True, max_examples=15, deadline=None, database=None)
@given(x=st.one_of(_arrays(max_dims=3, max_side=3), st.text(max_size=3)))
def test_infinite_kernels_finite_and_square_or_named_error(x):
    out = _call(lambda: analytic.infinite_kernels(_RELU, x), "x1")
    if out is not None:
        n = np.shape(x)[0]
        assert out.ntk.shape == out.nngp.shape == (n, n) and np.all(np.isfinite(np.asarray(out.ntk)))


@FAST
@given(degree=st.one_of(st.integers(0, 12), st.integers(10 ** 8, 10 ** 15), st.floats(0, 3), st.booleans()))
def test_sphere_eigenvalues_small_degrees_or_refusal_before_allocating(degree):
    out = _call(lambda: sphere.sphere_eigenvalues(sphere.relu_ntk_two_layer, 3, [degree]), "degrees")
    if out is not None:
        assert out.shape == (1,) and np.all(np.isfinite(out))


# ----------------------------------------------------------------------------- the parser
_TEXT = st.lists(st.sampled_from(list("x0123456789+-*/^()., eEpisqrtlogxn_'[]") + ["**", "exp(", "tanh(", "__"]),
                max_size=30).map("".join)


def _timed(fn):
    """(value or ExpressionError, CPU seconds of this process): CPU time, so a loaded CI machine cannot fail it."""
    start = time.process_time()
    try:
        out = fn()
    except ExpressionError as exc:
        out = exc
    return out, time.process_time() - start


@settings(derandomize=True, max_examples=60, deadline=None, database=None)
@given(text=_TEXT)
def test_random_text_is_an_expression_or_a_sentence_in_time(text):
    out, seconds = _timed(lambda: parse_expression(text, time_limit=PARSE_BUDGET))
    assert seconds < PARSE_BUDGET + 0.5
    assert isinstance(out, (ExpressionError, sp.Expr))
    if isinstance(out, sp.Expr):
        assert out.free_symbols <= {sp.Symbol("x", real=True)}


@settings(derandomize=True, max_examples=40, deadline=None, database=None)
@given(levels=st.lists(st.integers(0, 99), min_size=2, max_size=6), base=st.sampled_from(["", "x**", "x**(-1)**"]),
       paren=st.booleans())
def test_power_towers_never_exceed_the_limit(levels, base, paren):
    tower = "**".join(map(str, levels))
    text = f"{base}({tower})" if paren and base else base + tower
    out, seconds = _timed(lambda: parse_expression(text, time_limit=PARSE_BUDGET))
    assert seconds < 1.0, f"{text}: {seconds:.2f} s"  # refusals come from logarithms, not from big numbers
    if isinstance(out, ExpressionError):
        assert "limit" in str(out) or "not finite" in str(out) or "not real" in str(out) or "divides" in str(out)


_UNARY = sorted(n for n in FUNCTIONS if n.lower() not in ("max", "min"))


@settings(derandomize=True, max_examples=20, deadline=None, database=None)
@given(names=st.lists(st.sampled_from(_UNARY), min_size=1, max_size=14), power=st.integers(1, 9))
def test_nested_functions_parse_differentiate_and_compile_in_time(names, power):
    text = "".join(f"{n}(" for n in names) + f"x^{power}" + ")" * len(names)
    x = sp.Symbol("x", real=True)
    start = time.process_time()
    try:
        expr = parse_expression(text, time_limit=PARSE_BUDGET)
        d = run_with_time_limit(lambda: sp.diff(expr, x), PARSE_BUDGET, "diff")
        run_with_time_limit(lambda: sp.lambdify(x, d, modules=JAX_MODULES), PARSE_BUDGET, "lambdify")
    except ExpressionError as exc:  # a refusal must be a sentence about the limits or the time
        assert "limit" in str(exc) or "not finite" in str(exc) or "not real" in str(exc), str(exc)
    assert time.process_time() - start < 3 * PARSE_BUDGET + 0.5
    assert TIME_LIMIT >= PARSE_BUDGET  # the notebook's limit is at least what is tested here
