"""docs/conventions.md holds for the public API: every package (and every module that defines one) has an
``__all__`` whose names resolve; scalar formulas give Python floats for scalar inputs and numpy arrays of the
broadcast shape for array inputs; deprecated names warn and give the same numbers as their new homes."""

from __future__ import annotations

import importlib
import math
import pkgutil
import warnings

import numpy as np
import pytest

import workbench
from workbench import dynamics, generalization, rmt, stats
from workbench import lr_batch as lb

# modules that only make sense with a notebook front end or run as scripts
_SKIP = {"workbench.__main__", "workbench.symbolic.__main__"}


def _modules():
    names = ["workbench"]
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if info.name not in _SKIP:
            names.append(info.name)
    return names


MODULES = _modules()
PACKAGES = [m for m in MODULES if hasattr(importlib.import_module(m), "__path__")]
# the layers owned by the one-API-style rule: theories, experiments, studies, shared concepts (see docs/conventions.md)
MUST_HAVE_ALL = PACKAGES + [
    "workbench.config", "workbench.validation", "workbench.losses", "workbench.stats", "workbench.nets",
    "workbench.data", "workbench.hessian", "workbench.dynamics", "workbench.generalization", "workbench.rmt",
    "workbench.linalg.dense", "workbench.training.loop", "workbench.training.mlp", "workbench.lr_batch.theory",
    "workbench.lr_batch.analysis", "workbench.lr_batch.quadratic", "workbench.experiments.sweep",
    "workbench.experiments.gradient_noise", "workbench.experiments.curvature", "workbench.studies.dynamics",
    "workbench.studies.hessian", "workbench.studies.lr_batch", "workbench.studies.ntk", "workbench.studies.symbolic",
    "workbench.studies.tour",
]


@pytest.mark.parametrize("name", MUST_HAVE_ALL)
def test_all_is_present(name):
    mod = importlib.import_module(name)
    assert isinstance(getattr(mod, "__all__", None), (list, tuple)), f"{name} has no explicit __all__"
    assert all(isinstance(x, str) for x in mod.__all__) and len(set(mod.__all__)) == len(mod.__all__)


def test_every_all_name_resolves():
    missing = []
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", ()):
            if hasattr(mod, "__path__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
                continue  # a package face listing its submodules
            if not hasattr(mod, attr):
                missing.append(f"{name}.{attr}")
    assert not missing, missing


# (function, scalar arguments, keyword arguments, index of the argument that may be an array)
SCALAR_FORMULAS = [
    (stats.sampling_factor, (10, 101), {}, 0),
    (lb.mccandlish_optimal_lr, (1000, 0.1, 100.0), {}, 0),
    (lb.expected_batch_grad_sq_norm, (1.0, 100.0, 10), {}, 2),
    (lb.sgd_stability_limit_1d, (4, 1.0, 1.0), {}, 0),
    (lb.max_lr_from_sharpness, (4.0, 0.5), {}, None),
    (lb.eos_threshold, (0.1,), {"optimizer": "momentum"}, 0),
    (lb.rmt_max_lr, (200, 2.0, 400, 0.05), {}, 0),
    (lb.rmt_critical_batch, (2.0, 400, 0.05), {}, None),
    (lb.scaling_rule, (64, 0.1, 16), {}, 0),
    (lb.kaplan_critical_batch, (3.0,), {}, 0),
    (lb.mccandlish_critical_batch, (1000.0, 1e5), {}, None),
    (lb.simple_noise_scale, (2.0, 100.0), {}, None),
    (rmt.semicircle_density, (0.5,), {}, 0),
    (rmt.semicircle_cdf, (0.5,), {}, 0),
    (rmt.spiked_wigner_outlier, (2.0,), {}, 0),
    (rmt.spiked_wigner_overlap, (2.0,), {}, 0),
    (rmt.marchenko_pastur_density, (1.0, 0.5), {}, 0),
    (rmt.spiked_covariance_outlier, (2.0, 0.5), {}, 0),
    (rmt.batch_noise_variance, (0.1, 8), {"num_data": 100}, 1),
    (rmt.hessian_noise_critical_batch, (5.0, 10 ** 4, 0.01), {}, None),
    (rmt.wigner_edge, (1.5,), {}, None),
    (rmt.marchenko_pastur_atom, (2.0,), {}, None),
]
# pairs of floats: both entries follow the rule
SCALAR_PAIRS = [
    (lb.critical_batch_tradeoff, (1000.0, 1e5, 100), {}, 2),
    (lb.step_law, (1e9, 1e11), {}, 0),
    (generalization.advani_saxe_errors, (2.0, 1.0), {"noise_var": 0.25}, 1),
]


@pytest.mark.parametrize("fn, args, kwargs, arr", SCALAR_FORMULAS, ids=lambda v: getattr(v, "__name__", ""))
def test_scalar_in_float_out_arrays_broadcast(fn, args, kwargs, arr):
    out = fn(*args, **kwargs)
    assert type(out) is float, f"{fn.__name__}: scalar inputs gave {type(out).__name__}"
    if arr is not None:  # the same argument as arrays of shape (2, 1) and (3,): numpy broadcasting, same numbers
        for shape in ((2, 1), (3,)):
            a = list(args)
            a[arr] = np.full(shape, args[arr])
            res = fn(*a, **kwargs)
            assert isinstance(res, np.ndarray) and res.shape == shape, (fn.__name__, shape, np.shape(res))
            np.testing.assert_allclose(res, out, rtol=1e-15)


@pytest.mark.parametrize("fn, args, kwargs, arr", SCALAR_PAIRS, ids=lambda v: getattr(v, "__name__", ""))
def test_scalar_pairs(fn, args, kwargs, arr):
    out = fn(*args, **kwargs)
    assert all(type(o) is float for o in out), (fn.__name__, [type(o).__name__ for o in out])
    a = list(args)
    a[arr] = np.full((3,), args[arr])
    for o, r in zip(out, fn(*a, **kwargs)):
        assert isinstance(r, np.ndarray) and r.shape == (3,)
        np.testing.assert_allclose(r, o, rtol=1e-12)


def test_every_scalar_formula_is_covered():
    # a new closed form in these modules must be added to the tables above (or listed as not scalar-in)
    covered = {f for f, *_ in SCALAR_FORMULAS + SCALAR_PAIRS}
    not_scalar = {"noise_scale", "NoiseScale", "EOS_OPTIMIZERS", "critical_batch_size", "gd_stability_limit",
                  "sampling_factor"}  # bundles, constants, deprecated aliases, and the stats re-export (covered)
    for name in lb.theory.__all__:
        fn = getattr(lb.theory, name)
        assert name in not_scalar or fn in covered, f"workbench.lr_batch.theory.{name} is not in SCALAR_FORMULAS"


@pytest.mark.parametrize("old, new, args", [
    (lambda: lb.gd_stability_limit, lb.max_lr_from_sharpness, (4.0, 0.5)),
    (lambda: lb.critical_batch_size, lb.mccandlish_critical_batch, (1000.0, 1e5)),
    (lambda: rmt.critical_batch_size, rmt.hessian_noise_critical_batch, (5.0, 10 ** 4, 0.01)),
    (lambda: dynamics.gd_stability_limit, dynamics.max_lr_from_ntk, (np.array([[2.0, 0.5], [0.5, 1.0]]),)),
    (lambda: lb.fit_power_law, lambda x, y: stats.fit_loglog(x, y), ([1.0, 2.0, 4.0], [3.0, 12.0, 47.0])),
    (lambda: lb.check_lrs, lambda x: workbench.validation.check_lrs(x, grid=True), ([0.3, 0.1],)),
])
def test_deprecated_names_warn_and_agree(old, new, args):
    with pytest.warns(DeprecationWarning, match="deprecated"):
        got = old()(*args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = new(*args)
    np.testing.assert_array_equal(np.asarray(got, dtype=float), np.asarray(want, dtype=float))


def test_one_meaning_of_an_int_seed():
    from workbench.validation import check_seeds

    assert check_seeds(3).tolist() == [0, 1, 2] and check_seeds([7]).tolist() == [7]
    with pytest.raises(ValueError, match="distinct"):
        check_seeds([1, 1])
    with pytest.raises(ValueError, match="non-negative"):
        check_seeds([-1])
    assert math.isclose(stats.sampling_factor(10, 101), 0.091, rel_tol=1e-15)  # (101 - 10)/(10 * 100)


def test_moved_lr_batch_names_warn_and_are_the_experiments_ones():
    from workbench import experiments

    with pytest.warns(DeprecationWarning, match="workbench.experiments.sweep"):
        assert lb.sweep is experiments.sweep
    with pytest.warns(DeprecationWarning, match="workbench.experiments.curvature_stats"):
        assert lb.curvature_stats is experiments.curvature_stats


def _public_callables(mod):
    """(qualified name, function) of the public functions and methods a module defines itself."""
    import inspect

    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isfunction(obj):
            yield f"{mod.__name__}.{name}", obj
        elif inspect.isclass(obj):
            for attr, fn in vars(obj).items():
                if inspect.isfunction(fn) and not attr.startswith("_"):
                    yield f"{mod.__name__}.{name}.{attr}", fn


def test_a_prng_key_is_the_first_argument_or_keyword_only():
    """docs/conventions.md: a function that draws random numbers takes ``key`` as a keyword, except samplers and
    ``init`` methods, which take it first as ``jax.random`` functions do (``init(key, shape)``)."""
    import inspect

    bad = []
    for modname in _modules():
        if modname.startswith("workbench.papers._"):
            continue  # private helpers of the paper reproductions
        for qualname, fn in _public_callables(importlib.import_module(modname)):
            params = [p for p in inspect.signature(fn).parameters.values() if p.name not in ("self", "cls")]
            for i, p in enumerate(params):
                if p.name == "key" and not (p.kind is inspect.Parameter.KEYWORD_ONLY or i == 0):
                    bad.append(f"{qualname} (argument {i + 1})")
    assert not bad, f"key must be keyword-only (or the first argument of a sampler/init): {bad}"


def test_positional_keys_of_the_last_release_still_work_with_a_warning():
    """key became keyword-only in these functions (docs/conventions.md); for one release the old positional
    calls still work, say so with a DeprecationWarning, and give the same numbers as the new calls."""
    import jax
    import jax.numpy as jnp

    from workbench.linalg import operators
    from workbench.linalg.krylov import hutchinson_trace, slq_density, squared_norms
    from workbench.nets import MLP, sample_functions

    key = jax.random.PRNGKey(3)
    a = jnp.diag(jnp.linspace(1.0, 2.0, 12))
    op = (lambda v: a @ v, 12)
    net = MLP(depth=1, width=8, activation="tanh")
    x = jnp.ones((2, 3))
    pairs = [
        (lambda: hutchinson_trace(op, 8, key, method="hutchinson"),
         lambda: hutchinson_trace(op, 8, key=key, method="hutchinson")),
        (lambda: squared_norms(op, 4, key), lambda: squared_norms(op, 4, key=key)),
        (lambda: slq_density(op, 5, 2, key, 16), lambda: slq_density(op, 5, 2, key=key, grid=16)),
        (lambda: sample_functions(net, key, x, 2), lambda: sample_functions(net, x, 2, key=key)),
        (lambda: operators.check_symmetric(operators.as_operator(op), key, "t", "test"),
         lambda: operators.check_symmetric(operators.as_operator(op), "t", "test", key=key)),
    ]
    for old, new in pairs:
        with pytest.warns(DeprecationWarning, match="deprecated"):
            got = old()
        want = new()
        for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    with pytest.raises(TypeError, match="both positionally and as keywords"):
        squared_norms(op, 4, key, key=key)


def test_names_moved_out_of_panels_warn_and_agree():
    """Data and computation helpers moved from panels to studies (issue of the layers); the old panel names keep
    working for one release as deprecated aliases."""
    from workbench.panels import hessian as panel_hessian
    from workbench.panels import symbolic as panel_symbolic
    from workbench.studies.hessian import make_data

    with pytest.warns(DeprecationWarning, match="workbench.studies.hessian.make_data"):
        old = panel_hessian.make_data("synthetic", "mse", 16)
    new = make_data("synthetic", "mse", 16)
    np.testing.assert_array_equal(np.asarray(old[0]), np.asarray(new[0]))
    assert panel_symbolic.dense_curve.__deprecated__ == "workbench.studies.symbolic.dense_curve"
