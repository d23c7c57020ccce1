"""One test per defect the bad-input probes (tests/probe_api.py, issue 20) found; each was a silent wrong
result, an error that did not name its argument, or an exception type that is no sentence."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import layers as L
from workbench.dynamics import max_lr_from_ntk
from workbench.hessian import ggn_vp, hvp, mlp_loss, num_params
from workbench.linalg import condition_number
from workbench.nets import MLP
from workbench.rmt import marchenko_pastur_moment
from workbench.validation import check_array, check_lrs

_NET = MLP(depth=1, width=3, activation="tanh")
_PARAMS = _NET.init(jax.random.PRNGKey(0), 2)


def test_text_is_not_a_learning_rate():
    # np.asarray("0.1", dtype=float) parses text: train(lrs="0.1") used to run a training
    with pytest.raises(TypeError, match="lrs must be .* got the text '0.1'"):
        check_lrs("0.1")
    with pytest.raises(TypeError, match="t must be"):
        check_array("t", np.array(["1", "2"]))
    np.testing.assert_array_equal(check_lrs([0.1, 0.2]), [0.1, 0.2])


def test_layer_net_apply_names_a_non_finite_parameter():
    net = L.serial(L.Dense(3), L.Relu(), L.Dense(1))
    params = net.init(jax.random.PRNGKey(0), (2, 2))
    leaves, tree = jax.tree_util.tree_flatten(params)
    leaves[0] = leaves[0].at[(0,) * leaves[0].ndim].set(jnp.nan)
    bad = jax.tree_util.tree_unflatten(tree, leaves)
    with pytest.raises(ValueError, match=r"params: layer 0 .*non-finite"):
        net.apply(bad, np.ones((2, 2)))
    assert np.isnan(np.asarray(net.apply(bad, np.ones((2, 2)), check=False))).all()  # opt-out: NaN propagates


def test_huge_mlp_init_is_refused_before_allocating():
    net = MLP(depth=1, width=10 ** 7)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"width/in_dim: the .* parameters .* needs about \d.* GiB"):
        net.init(jax.random.PRNGKey(0), 10 ** 5)  # 1e12 parameters, 4 TB
    assert time.perf_counter() - start < 1.0  # an estimate, no allocation attempt


def test_hvp_and_ggn_vp_check_the_vector():
    loss = mlp_loss(_NET, "mse")
    batch = (jnp.ones((4, 2)), jnp.ones((4, 1)))
    p = num_params(_PARAMS)
    for fn in (hvp, ggn_vp):
        with pytest.raises(ValueError, match=rf"v must be a flat vector of shape \({p},\)"):
            fn(loss, _PARAMS, batch, jnp.ones(p + 1))
        with pytest.raises(ValueError, match="v contains 1 non-finite value"):
            fn(loss, _PARAMS, batch, jnp.ones(p).at[2].set(jnp.nan))
    # (the product itself is checked against dense Hessians in tests/test_hessian.py; the refusals above come
    # before any compilation, so this test costs no jit)


def test_max_lr_from_ntk_checks_num_outputs():
    k = np.array([[2.0, 0.5], [0.5, 1.0]])
    with pytest.raises(ValueError, match="num_outputs must be an integer >= 1"):
        max_lr_from_ntk(k, loss="mean", num_outputs=0)
    with pytest.raises(TypeError, match="num_outputs"):
        max_lr_from_ntk(k, loss="mean", num_outputs=1.5)
    lam = np.linalg.eigvalsh(k)[-1]
    assert max_lr_from_ntk(k, loss="mean", num_outputs=3) == pytest.approx(2.0 * 2 * 3 / lam, rel=1e-12)


def test_marchenko_pastur_moment_large_k_is_a_number_or_a_sentence():
    with pytest.raises(ValueError, match="k must be an integer <= 100000"):
        marchenko_pastur_moment(10 ** 6, 0.5)  # was OverflowError: int too large to convert to float
    with pytest.raises(ValueError, match="beyond the float64 range"):
        marchenko_pastur_moment(3000, 4.0)  # (1 + 2)^6000: about 10^2863
    # k = 600, ratio 1/4: the terms overflow a float (the log-space path), the moment (<= 1.5^1200) does not;
    # against the exact rational sum. Tolerance 1e-9: lgamma carries ~1e-13 relative error per term and the
    # exponent (~480 in natural log) amplifies an absolute log error of ~1e-13 * 480 ~ 5e-11.
    k = 600
    exact = sum(Fraction(1, 4) ** r / (r + 1) * math.comb(k, r) * math.comb(k - 1, r) for r in range(k))
    assert marchenko_pastur_moment(k, 0.25) == pytest.approx(float(exact), rel=1e-9)
    assert marchenko_pastur_moment(2, 0.5) == pytest.approx(1.5, rel=1e-15)  # m2 = 1 + ratio, exact path


def test_condition_number_of_an_empty_matrix_names_k():
    with pytest.raises(ValueError, match=r"k must be a non-empty square matrix, got shape \(0, 0\)"):
        condition_number(np.zeros((0, 0)))
    assert condition_number(np.diag([4.0, 2.0])) == pytest.approx(2.0)


def test_huge_grids_matrices_and_inputs_are_refused_before_allocating():
    from workbench.data import gaussian_inputs
    from workbench.lr_batch import lr_grid, random_noisy_quadratic

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"num: a grid of .* learning rates needs about .* GiB"):
        lr_grid(1e-3, 1.0, 10 ** 13)  # was MemoryError from numpy
    with pytest.raises(ValueError, match=r"dim: a noisy quadratic .* GiB"):
        random_noisy_quadratic(jax.random.PRNGKey(0), 10 ** 7)  # was accepted, then an 800 TB QR
    with pytest.raises(ValueError, match=r"n/dim: .* inputs needs about .* GiB"):
        gaussian_inputs(jax.random.PRNGKey(0), 10 ** 9, 10 ** 6)
    assert time.perf_counter() - start < 1.0
    assert lr_grid(1e-3, 1.0, 4)[-1] == pytest.approx(1.0)


def test_fit_loglog_refuses_text_and_booleans_for_y():
    from workbench.stats import fit_loglog

    with pytest.raises(TypeError, match="y must be a number or an array of numbers, got the string 'abc'"):
        fit_loglog([1, 2, 3], "abc")  # was numpy's "could not convert string to float"
    with pytest.raises(TypeError, match="y must hold real numbers, got booleans"):
        fit_loglog([1, 2, 3], [True, False, True])
    assert fit_loglog([1, 2, 4], [1.0, np.nan, 4.0]).num_points == 2  # NaN/inf still dropped, as documented


def test_sweep_results_dir_that_is_a_file_names_it(tmp_path):
    from workbench.experiments.sweep import sweep

    f = tmp_path / "results"
    f.write_text("")
    with pytest.raises(OSError, match=r"results_dir '.*results' cannot be used as a directory"):
        sweep(lambda p, b: 0.0, lambda k: {"w": jnp.zeros(1)}, (np.ones((4, 1)), np.ones((4, 1))),
              batch_sizes=[2], lrs=[0.1], num_steps=1, results_dir=str(f), progress=False)


def test_a_callback_does_not_change_the_sweep_fingerprint():
    # a sweep stopped from a callback (KeyboardInterrupt inside it) must resume from its finished points when
    # rerun without the callback: the callback's repr (an address) used to enter the fingerprint
    from workbench.experiments.sweep import _point_fingerprint

    x, y = np.ones((4, 1)), np.ones((4, 1))
    kw = dict(tag="t", num_steps=5, record_every=1, momentum=0.9, sampling="iid", divergence_threshold=1e4)
    args = (x, y, np.array([0.1]), np.array([0]), "sgd", 2)
    plain = _point_fingerprint(*args, {}, **kw)
    assert _point_fingerprint(*args, {"callback": lambda s: None}, **kw) == plain
    assert _point_fingerprint(*args, {"adam_eps": 1e-6}, **kw) != plain  # result-changing arguments still count


def test_unknown_dtypes_name_the_dtype_argument():
    from workbench import datasets
    from workbench.models import functional, with_dtype

    with pytest.raises(TypeError, match="dtype must be a float dtype .* got 'float7'"):
        datasets.load("digits", n=8, dtype="float7")
    m = functional((lambda p, x: x @ p, jnp.ones((2, 1))), example_input=np.ones((3, 2)))
    with pytest.raises(TypeError, match="dtype must be a float dtype .* got 'float7'"):
        with_dtype(m, "float7")


def test_builtin_model_sizes_are_checked():
    from workbench.models import builtin_model, small_cnn

    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        builtin_model("cnn", (8, 8, 1), 0)  # was ZeroDivisionError inside flax
    with pytest.raises(ValueError, match="channels must be an integer >= 1"):
        small_cnn(channels=0)
    with pytest.raises(ValueError, match="name must be one of"):
        builtin_model("resnet", (8, 8, 1), 10)


def test_prepare_checks_labels_inputs_and_loss():
    from workbench.models import prepare

    net = MLP(depth=1, width=3, out_dim=2)
    x, y = np.ones((4, 3)), np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match=r"y must have one label .* x has 4 inputs, y has shape \(3, 2\)"):
        prepare(net, x, y[:3])  # was accepted
    x_nan = x.copy()
    x_nan[1, 2] = np.nan
    with pytest.raises(ValueError, match="x contains 1 non-finite"):
        prepare(net, x_nan, y)
    with pytest.raises(ValueError, match="loss must be one of"):
        prepare(net, x, y, loss="hinge")
    m, inputs = prepare(net, x, y)
    assert m.apply_fn(m.params, inputs).shape == (4, 2)


def test_losses_refuse_shapes_that_would_broadcast():
    from workbench.losses import cross_entropy, mse

    with pytest.raises(ValueError, match=r"cross_entropy: outputs f and targets y must have shapes \(n, k\)"):
        cross_entropy(jnp.ones(4), jnp.ones(4), reduction="mean")  # was one 4-class example, silently
    with pytest.raises(ValueError, match=r"mse: outputs f and targets y must have shapes .* got f \(4, 1\) and y \(4,\)"):
        mse(jnp.ones((4, 1)), jnp.ones(4), reduction="sum")  # would broadcast to a (4, 4) loss
    f, y = jnp.arange(4.0).reshape(4, 1), jnp.zeros((4, 1))
    assert float(mse(f, y, reduction="sum")) == pytest.approx(0.5 * (0 + 1 + 4 + 9))
    # under jit the shapes are checked at trace time
    with pytest.raises(ValueError, match="same shape"):
        jax.jit(lambda a, b: mse(a, b, reduction="mean"))(jnp.ones((3, 2)), jnp.ones((3, 1)))


def test_price_check_refuses_poles_off_the_nodes_and_bounds_nodes():
    from workbench.symbolic.expressions import ExpressionError
    from workbench.symbolic.price import MAX_NODES, price_check

    for text, where in (("1/x", "x = 0;"), ("1/(x - 0.3)", "x = 0.3;"), ("tan(x)", r"x = -?\d\.\d+;")):
        with pytest.raises(ExpressionError, match=rf"unbounded near {where}"):
            price_check(text, num=2, nodes=8)  # 1/x used to return a verdict on a divergent expectation
    with pytest.raises(ValueError, match=rf"nodes must be an integer in \[4, {MAX_NODES}\]"):
        price_check("tanh(x)", nodes=10 ** 8)  # used to hang in hermegauss
    with pytest.raises(TypeError, match="activation must be text"):
        price_check(None)
    with pytest.raises(ExpressionError, match="text .* must be a string"):
        from workbench.symbolic.expressions import parse_expression

        parse_expression(3)


def test_cli_reproduce_key_is_a_bounded_seed(capsys):
    from workbench import cli

    for bad in ("99999999999999999999999", "-5", "1.5"):
        with pytest.raises(SystemExit) as exit_info:  # argparse's own exit, through the one-line error
            cli.main(["reproduce", "yang_hu_2021_mup", "--fast", "--key", bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--key" in err and "seed" in err, err


def test_one_asymmetric_entry_is_caught_whatever_the_key():
    # float64, dim 3, A[0, 1] = 5 but A[1, 0] = 0: sign probes alone missed it for some keys (converged=True)
    from workbench import config
    from workbench.linalg import top_eigenvalues

    with config.precision("float64"):
        a = jnp.array([[1.0, 5.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
        op = (lambda v: a @ v, 3)
        for seed in range(8):
            with pytest.raises(ValueError, match="not symmetric"):
                top_eigenvalues(op, 1, key=jax.random.PRNGKey(seed))


def test_extend_sphere_spectrum_refuses_a_huge_max_degree_before_allocating():
    from workbench.generalization import extend_sphere_spectrum

    mu = 1.0 / np.arange(1, 51) ** 2
    with pytest.raises(ValueError, match=r"max_degree: a spectrum extended to degree .* GiB"):
        extend_sphere_spectrum(mu, 3, max_degree=10 ** 12)  # was MemoryError: 7.28 TiB
    k, ext = extend_sphere_spectrum(mu, 3, max_degree=200)
    assert len(ext) == len(k) == 201 and np.all(np.isfinite(ext))


def test_cli_activation_is_checked_at_parse_time(tmp_path, capsys):
    # was "activation must be one of (...)" from inside the study, naming no option
    from workbench import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", "ntk", "--activation", "swishy", "--out", str(tmp_path / "r.html")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "argument --activation: invalid choice: 'swishy'" in err, err
    assert not list(tmp_path.iterdir())
