"""Symbolic derivations: derived == closed form, every check passes on CPU float64 at small sizes, wrong
closed forms fail, bad input is rejected, and the CLI/table/plots/panel work."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

from workbench import symbolic
from workbench.symbolic import dynamics, kernels, ntk
from workbench.symbolic.__main__ import main as cli_main

ALL = ("relu_arccos", "erf_price", "ntk_recursion", "linearized_flow", "marchenko_pastur", "bbp_outlier",
       "gd_stability", "mccandlish_lr", "finite_width_kurtosis")


def test_registry_has_the_nine_derivations():
    assert sorted(symbolic.names()) == sorted(ALL)
    for name in ALL:
        d = symbolic.get(name)
        assert len(d.closed_form) >= 1 and d.methods


@pytest.mark.parametrize("name", ALL)
def test_derived_equals_closed_form_symbolically(name):
    d = symbolic.get(name)
    derived = d.derivation()
    assert len(derived.result) == len(d.closed_form)
    assert derived.steps and all(isinstance(sp.latex(s.expr), str) for s in derived.steps)
    for got, want in zip(derived.result, d.closed_form):
        assert sp.simplify(got - want) == 0, (name, got, want)


# (name, method, samples, num_points): small sizes; each tolerance is computed by the method (see its reason)
CASES = [
    ("relu_arccos", "quadrature", None, 5),
    ("relu_arccos", "monte_carlo", 20_000, 5),
    ("relu_arccos", "workbench.kernels.analytic", None, 5),
    ("erf_price", "quadrature", 30, 5),
    ("erf_price", "monte_carlo", 20_000, 5),
    ("erf_price", "workbench.kernels.analytic", None, 5),
    ("ntk_recursion", "workbench.kernels.analytic", None, 2),
    ("ntk_recursion", "empirical_ntk", 128, 2),
    ("linearized_flow", "ode", None, 4),
    ("linearized_flow", "workbench.dynamics", None, 4),
    ("linearized_flow", "wide_net", 128, 3),
    ("marchenko_pastur", "wishart", 40, 3),
    ("marchenko_pastur", "workbench.rmt", None, 3),
    ("bbp_outlier", "sampled", 48, 3),
    ("bbp_outlier", "workbench.rmt", None, 3),
    ("gd_stability", "gd_iteration", 100, 3),
    ("mccandlish_lr", "noisy_quadratic", 4000, 3),
    ("mccandlish_lr", "workbench.lr_batch", None, 3),
    ("finite_width_kurtosis", "simulated", 4000, 4),
]


@pytest.mark.parametrize("name,method,samples,num_points", CASES)
def test_check_passes_on_cpu_float64(name, method, samples, num_points):
    r = symbolic.check(name, method=method, samples=samples, num_points=num_points)
    assert r.passed, r.summary()
    assert r.dtype == "float64" and r.precision == "highest" and r.device.startswith("cpu")
    assert r.tolerance_reason and r.max_abs_err <= r.tolerance
    assert r.closed.shape == r.numeric.shape == r.tolerances.shape


def test_wrong_erf_closed_form_fails():
    """A factor 2 in the erf kernel (and, separately, in its derivative kernel) must fail the quadrature check."""
    good = kernels.ERF_CLOSED
    r_ok = symbolic.check("erf_price", method="quadrature", samples=30, num_points=5)
    assert r_ok.passed
    for i in range(2):
        bad = tuple(2 * e if j == i else e for j, e in enumerate(good))
        r = symbolic.check("erf_price", method="quadrature", samples=30, num_points=5, closed_form=bad)
        assert not r.passed and r.worst_ratio > 1e3, r.summary()


def test_wrong_closed_forms_fail_against_monte_carlo_and_ode():
    # relu derivative kernel with pi instead of 2 pi: far outside 5 Monte-Carlo standard errors
    e_phi, e_dphi = kernels.RELU_CLOSED
    r = symbolic.check("relu_arccos", method="monte_carlo", samples=20_000, num_points=3,
                       closed_form=(e_phi, 2 * e_dphi))
    assert not r.passed
    # linearized flow with a doubled rate
    t, lam, lr, g0, y = dynamics.LINEARIZED_FLOW.params
    bad = (y + (g0 - y) * sp.exp(-2 * lr * lam * t),)
    assert not symbolic.check("linearized_flow", method="ode", num_points=3, closed_form=bad).passed
    # NTK recursion without the w^2 in front of E[phi' phi'] Theta^l (vs the library's infinite_kernels)
    k_next, e_dd, theta_l, _w2 = ntk.NTK_RECURSION.params
    assert not symbolic.check("ntk_recursion", method="workbench.kernels.analytic", num_points=2,
                              closed_form=(k_next + e_dd * theta_l,)).passed
    # McCandlish without the noise term
    b, g2, ghg, trhs = symbolic.get("mccandlish_lr").params
    assert not symbolic.check("mccandlish_lr", method="noisy_quadratic", samples=4000, num_points=3,
                              closed_form=(g2 / ghg,)).passed


def test_ntk_recursion_reproduces_worked_values():
    # docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net: X = [(1,0), (0.6,0.8)], 3 hidden relu layers, w^2 = 2, b^2 = 0.1; exact in float64
    theta12, _theta11, k12 = ntk.relu_kernels(3, 2.0, 0.1, ntk.NTK_RECURSION.jax_function())
    assert abs(k12 - 1.163813358301) < 1e-10
    assert abs(theta12 - 2.799273956233) < 1e-10


def test_critical_relu_ntk_diagonal_identity():
    # critical relu, no bias: Theta^{L+1}(x, x) = (L + 1) K with K = |x|^2 w^2 / d = 1 for |x|^2 = d / 2 ... here
    # x1 = (1, 0): K^1 = 2 * 1/2 = 1 and Theta(x1, x1) = depth + 1 (an exact identity, docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net)
    for depth in (1, 2, 4):
        _t12, t11, _k12 = ntk.relu_kernels(depth, 2.0, 0.0, ntk.NTK_RECURSION.jax_function())
        assert abs(t11 - (depth + 1)) < 1e-12


def test_lambdified_closed_form_jit_matches_eager():
    fn = symbolic.get("erf_price").jax_function()
    args = (jnp.asarray([1.0, 0.3]), jnp.asarray([0.5, 2.0]), jnp.asarray([0.2, -0.4]))
    eager = fn(*args)
    jitted = jax.jit(lambda *a: fn(*a))(*args)
    for a, b in zip(eager, jitted):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-14)


def test_check_records_precision_and_rejects_bad_input():
    r = symbolic.check("gd_stability", precision="high", samples=50, num_points=2)
    assert r.precision == "high" and r.passed
    with pytest.raises(ValueError, match="name must be one of"):
        symbolic.check("no_such_derivation")
    with pytest.raises(ValueError, match="method must be one of"):
        symbolic.check("gd_stability", method="magic")
    with pytest.raises(ValueError, match="samples must be an integer >= 1"):
        symbolic.check("gd_stability", samples=0)
    with pytest.raises(ValueError, match="matmul precision must be one of"):
        symbolic.check("gd_stability", precision="tf32", num_points=2)
    with pytest.raises(ValueError, match="device 'tpu' is not available"):
        symbolic.check("gd_stability", device="tpu", num_points=2)
    with pytest.raises(ValueError, match="closed_form must have 2 expression"):
        symbolic.check("gd_stability", closed_form=(sp.Integer(1),), num_points=2)
    with pytest.raises(ValueError, match="unknown derivation name"):
        symbolic.check_all(samples={"nope": 3})


def test_check_all_table_and_cli(capsys):
    table = symbolic.check_all(["gd_stability", "linearized_flow"], all_methods=False, progress=False)
    assert len(table) == 2 and table.all_passed
    text = table.format()
    assert "gd_stability" in text and "cpu" in text and "float64" in text and "2 passed" in text
    assert "<table>" in table.to_html()
    assert cli_main(["--list"]) == 0
    assert "marchenko_pastur" in capsys.readouterr().out
    assert cli_main(["--names", "gd_stability", "--first-method-only", "--fast"]) == 0
    assert "1 checks, 1 passed" in capsys.readouterr().out


def test_float32_exact_checks_and_explicit_device():
    """In float32 the rounding allowance scales with float32's epsilon and exact checks still pass; the
    result records the dtype and the device it was given."""
    from workbench import config

    cpu = jax.devices("cpu")[0]
    with config.precision("float32"):
        for name, method in (("erf_price", "workbench.kernels.analytic"), ("gd_stability", "gd_iteration")):
            r = symbolic.check(name, method=method, device=cpu, samples=100 if name == "gd_stability" else None,
                               num_points=3)
            assert r.passed and r.dtype == "float32" and r.device.startswith("cpu:0"), r.summary()
            assert r.tolerance < 1e-3  # still a tight check: rounding of float32, not a loose bound


def test_finite_width_check_separates_5_over_n_from_4_over_n():
    """The kurtosis check is sharp enough to reject (1 + 4/n)^(L-1) at width 16 (20000 simulated nets)."""
    from workbench.symbolic.finite_width import L, N

    good = symbolic.check("finite_width_kurtosis", samples=20_000, num_points=4)
    assert good.passed, good.summary()
    bad = symbolic.check("finite_width_kurtosis", samples=20_000, num_points=4, closed_form=((1 + 4 / N) ** (L - 1),))
    assert not bad.passed, bad.summary()
