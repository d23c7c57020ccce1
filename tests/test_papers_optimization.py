"""Fast-tier checks of the helpers of three paper entries whose verdicts run in the slow tier (tests/test_papers.py):
mok_2022_lga (label-gradient alignment, Kendall tau, bootstrap), li_2018_intrinsic_dimension (random projection,
intrinsic-dimension read-off, the masked-subspace trick) and rosenfeld_2023_opposing_signals (data, loss-change
correlation, edge-of-stability phase, tracked sharpness against a dense Hessian); and their figures."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from workbench import config
from workbench.nets import MLP
from workbench.papers import Check, Reproduction
from workbench.papers import li_2018_intrinsic_dimension as li
from workbench.papers import mok_2022_lga as mok
from workbench.papers import rosenfeld_2023_opposing_signals as ros
from workbench.plots.papers import figures


# ----------------------------------------------------------------------------- mok_2022_lga
def test_lga_is_the_pearson_correlation_of_kernel_and_label_entries():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((12, 30))
    k = g @ g.T
    labels = rng.integers(0, 3, 12)
    lk = np.array([[1.0 if a == b else -1.0 for b in labels] for a in labels])
    # independent computation: numpy's Pearson correlation of the flattened matrices (agree to rounding, 1e-12)
    assert mok.label_gradient_alignment(k, labels) == pytest.approx(np.corrcoef(k.ravel(), lk.ravel())[0, 1],
                                                                    abs=1e-12)
    # invariant under K -> a K + b (a > 0), exactly 1 for the label kernel itself, -1 for its negative
    assert mok.label_gradient_alignment(3.0 * k + 7.0, labels) == pytest.approx(
        mok.label_gradient_alignment(k, labels), abs=1e-12)
    assert mok.label_gradient_alignment(lk, labels) == pytest.approx(1.0, abs=1e-12)
    assert mok.label_gradient_alignment(-lk, labels) == pytest.approx(-1.0, abs=1e-12)
    with pytest.raises(ValueError, match="two classes"):
        mok.label_gradient_alignment(k, np.zeros(12))
    with pytest.raises(ValueError, match="ntk must be"):
        mok.label_gradient_alignment(k[:5], labels)


def test_family_draws_distinct_networks_from_the_axes_and_is_fixed():
    nets = mok.family(30)
    assert len(nets) == 30 and len(set(nets)) == 30 and nets == mok.family(30)  # fixed: part of the benchmark
    for depth, width, act, w_std, par in nets:
        assert depth in mok.DEPTHS and width in mok.WIDTHS and act in mok.ACTIVATIONS and par in mok.PARAMETRIZATIONS
        assert w_std == (2 ** 0.5 if act in ("relu", "gelu") else 1.0)
    assert mok.family(30, seed=1) != nets
    # every axis is visited by a 30-network draw (each value of an axis with k values is missed by 30 uniform draws
    # from 375 combinations with probability < (1 - 1/5)^30 ~ 1e-3; the draw is fixed, so this is a fact, not a risk)
    for i, axis in enumerate((mok.DEPTHS, mok.WIDTHS, mok.ACTIVATIONS)):
        assert {n[i] for n in nets} == set(axis)
    assert {n[4] for n in nets} == set(mok.PARAMETRIZATIONS)
    size = len(mok.DEPTHS) * len(mok.WIDTHS) * len(mok.ACTIVATIONS) * len(mok.PARAMETRIZATIONS)
    assert len(set(mok.family(size))) == size
    with pytest.raises(ValueError, match="size must be <="):
        mok.family(size + 1)


def test_kendall_tau_against_pair_counting_and_bootstrap_spread():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(15), rng.standard_normal(15)
    y = y + x  # no ties: tau-b = tau-a = (concordant - discordant) / C(n, 2), counted over all pairs
    pairs = list(itertools.combinations(range(15), 2))
    direct = sum(np.sign((x[i] - x[j]) * (y[i] - y[j])) for i, j in pairs) / len(pairs)
    assert mok.kendall_tau(x, y) == pytest.approx(direct, abs=1e-12)
    assert mok.kendall_tau(x, -x) == pytest.approx(-1.0)
    assert np.isnan(mok.kendall_tau([1.0, np.nan, 2.0], [np.nan, 1.0, 3.0]))
    # -inf (a float32-singular NTK's -log cond) ranks last, it is not dropped: 3 concordant pairs of 3
    assert mok.kendall_tau([-np.inf, 0.0, 1.0], [0.1, 0.5, 0.9]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same length"):
        mok.kendall_tau([1, 2, 3], [1, 2])
    # the paired bootstrap of a sample mean has standard deviation s / sqrt(n) (plug-in s, ddof=0); 4000 draws
    # estimate it to about 1/sqrt(2 * 4000) = 1.1% relative, so 5% is > 4 standard errors of the estimate
    z = rng.standard_normal(40)
    draws = mok.bootstrap(lambda idx: float(z[idx].mean()), 40, resamples=4000, seed=3)
    assert np.std(draws) == pytest.approx(np.std(z) / np.sqrt(40), rel=0.05)
    with pytest.raises(ValueError, match="n must be"):
        mok.bootstrap(lambda idx: 0.0, 1)


# ----------------------------------------------------------------------------- li_2018_intrinsic_dimension
def test_random_projection_has_unit_columns_and_is_nearly_orthonormal():
    with config.precision("float64"):
        p = np.asarray(li.random_projection(jax.random.PRNGKey(0), 4000, 50))
    assert p.shape == (4000, 50)
    np.testing.assert_allclose(np.linalg.norm(p, axis=0), 1.0, rtol=1e-12)
    # off-diagonal entries of P^T P are inner products of independent unit vectors: sd 1/sqrt(D) = 0.016; the
    # largest of 1225 such is below 5 sd with probability > 1 - 1225 * 6e-7
    off = p.T @ p - np.eye(50)
    assert np.abs(off).max() < 5 / np.sqrt(4000)
    with pytest.raises(ValueError, match="dim"):
        li.random_projection(jax.random.PRNGKey(0), 10, 0)


def test_intrinsic_dimension_interpolates_in_log2_d():
    dims = np.array([4, 8, 16, 32])
    acc = np.array([0.2, 0.4, 0.6, 0.9])
    # 0.5 is halfway between 0.4 (d = 8) and 0.6 (d = 16) -> log2 d = 3.5
    assert li.intrinsic_dimension(dims, acc, 0.5) == pytest.approx(2 ** 3.5)
    assert li.intrinsic_dimension(dims, acc, 0.1) == 4.0
    assert li.intrinsic_dimension(dims, acc, 0.95) == np.inf
    with pytest.raises(ValueError, match="increasing"):
        li.intrinsic_dimension(dims[::-1], acc, 0.5)


@pytest.mark.slow  # two compiled training programs: about 5 s on 2 cores
def test_masked_subspace_training_equals_training_on_the_first_columns():
    # the entry trains every d in one vmap with a d_max-column P and a column mask; the masked coordinates get
    # zero gradients, so Adam never moves them and the result equals training with P[:, :d] alone
    import optax

    with config.precision("float64"):
        net = MLP(depth=1, width=4, activation="relu", w_std=1.0, b_std=0.0, parametrization="standard",
                  out_dim=3)
        x = jax.random.normal(jax.random.PRNGKey(1), (20, 5))
        labels = jnp.arange(20) % 3
        fn = li._subspace_fn(net, 5, 8, 0.05, 6)
        masks = jnp.asarray((np.arange(6)[None, :] < np.array([2, 6])[:, None]).astype(float))
        keys = jax.random.split(jax.random.PRNGKey(2), 1)
        acc, _ = fn(keys, masks, x, labels, x, labels)
        # the same run by hand for d = 2, rebuilding theta_0 and P from the same key split
        k_init, k_proj = jax.random.split(keys[0])
        theta0, unravel = ravel_pytree(net.init(k_init, 5))
        proj = jax.random.normal(k_proj, (theta0.size, 6), theta0.dtype)
        proj = (proj / jnp.linalg.norm(proj, axis=0, keepdims=True))[:, :2]
        tx, z = optax.adam(0.05), jnp.zeros(2)
        state = tx.init(z)

        def loss(z):
            logits = net.apply(unravel(theta0 + proj @ z), x, check=False)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        for _ in range(8):
            upd, state = tx.update(jax.grad(loss)(z), state, z)
            z = optax.apply_updates(z, upd)
        logits = net.apply(unravel(theta0 + proj @ z), x)
        assert float(acc[0, 0]) == pytest.approx(float(jnp.mean(jnp.argmax(logits, 1) == labels)))


# ----------------------------------------------------------------------------- rosenfeld_2023_opposing_signals
def test_opposing_data_loss_change_correlation_and_phase():
    data = ros.opposing_signals_data(jax.random.PRNGKey(0), n=20, m=3, dim=5, alpha=4.0)
    assert data.x.shape == (26, 5) and data.y.shape == (26, 1)
    np.testing.assert_allclose(np.asarray(data.x)[data.group_a, -1], 4.0)
    np.testing.assert_allclose(np.asarray(data.x)[data.group_b, -1], 4.0)
    assert np.all(np.asarray(data.y)[data.group_a] == 1) and np.all(np.asarray(data.y)[data.group_b] == -1)
    assert np.all(np.asarray(data.x)[:20, -1] == 0)  # the bulk does not carry the shared feature
    t = np.arange(50)
    saw = 1 + 0.1 * (-1.0) ** t
    assert ros.loss_change_correlation(saw, 2 - saw) == pytest.approx(-1.0)  # anti-phase period-2 oscillation
    assert ros.loss_change_correlation(saw, saw) == pytest.approx(1.0)
    sharp = np.r_[np.linspace(1, 8.5, 20), np.full(80, 8.0)]
    t_star, phase = ros.edge_of_stability_phase(sharp, eta=0.25, settle=10, window=30)
    assert t_star == 18 and (phase.start, phase.stop) == (28, 58)
    assert ros.edge_of_stability_phase(sharp, eta=0.25, settle=10, window=80) == (18, slice(0, 0))  # too short
    assert ros.edge_of_stability_phase(np.full(10, 1.0), eta=0.25) == (None, slice(0, 0))
    assert ros.alternation(saw) == 1.0 and ros.alternation(np.linspace(1, 0, 20)) == 0.0
    with pytest.raises(ValueError, match="alpha"):
        ros.opposing_signals_data(jax.random.PRNGKey(0), alpha=-1.0)


@pytest.mark.slow  # a compiled GD scan and a dense Hessian: about 5 s on 2 cores
def test_tracked_sharpness_matches_a_dense_hessian():
    # the warm-started power iteration (POWER_ITERS products per GD step) against eigvalsh of jax.hessian at the
    # final point: after 150 steps the tracked vector has converged (relative error well below the 2% the entry
    # allows, which is a fifth of its 10% band)
    with config.precision("float64"):
        data = ros.opposing_signals_data(jax.random.PRNGKey(3), n=16, m=3, dim=5)
        net = MLP(depth=1, width=6, activation="tanh", w_std=1.0, b_std=0.0, parametrization="standard")
        params = net.init(jax.random.PRNGKey(4), 5)
        flat, unravel = ravel_pytree(params)
        u0 = jnp.ones_like(flat) / np.sqrt(flat.size)
        fn = ros._gd_fn(net, 150, tuple(data.group_a.tolist()), tuple(data.group_b.tolist()))
        final, (loss, la, lb, sharp) = fn(flat[None], params, data.x, data.y, jnp.array([0.1]), u0[None])
        h = jax.hessian(lambda v: 0.5 * jnp.mean(jnp.sum((net.apply(unravel(v), data.x) - data.y) ** 2, 1)))(final[0])
        lam = np.linalg.eigvalsh(np.asarray(h))[-1]
    assert float(sharp[0, -1]) == pytest.approx(lam, rel=1e-3)
    assert float(loss[0, -1]) < float(loss[0, 0])


# ----------------------------------------------------------------------------- figures
def _rep(name, data):
    return Reproduction(name, "ref", "claim", "setting", [Check("c", 1.0, 1.0, 0.1, "why")], data, "cpu",
                        "float32", True, 0)


def test_figures_of_the_three_entries():
    rng = np.random.default_rng(0)
    names = ["-log cond", "log tr", "LGA at init", "LGA after 10 steps"]
    mok_data = {"ranking": {"accuracy": rng.random(5), "scores": {m: rng.random(5) for m in names},
                            "tau": dict.fromkeys(names, 0.1), "tau_ci": {m: np.array([-0.2, 0.4]) for m in names},
                            "labels": [f"net {i}" for i in range(5)]}}
    li_data = {"curves": {"dims": np.array([4, 8, 16]), "widths": [8, 16], "fraction": 0.9,
                          "accuracy": {8: rng.random((2, 3)), 16: rng.random((2, 3))}, "full": {8: [0.9], 16: [0.9]},
                          "d90": {8: 10.0, 16: np.inf}, "num_params": {8: 100, 16: 200}}}
    seq = rng.random((2, 40))
    ros_data = {"dynamics": {"loss": seq, "loss_a": seq, "loss_b": seq, "sharpness": 8 * seq, "eta": 0.25,
                             "t_star": [3, 4], "stable": {"loss_a": seq[0], "loss_b": seq[0],
                                                          "sharpness": seq[0], "eta": 0.02}}}
    for name, data, count in (("mok_2022_lga", mok_data, 1 + len(names)), ("li_2018_intrinsic_dimension", li_data, 2),
                              ("rosenfeld_2023_opposing_signals", ros_data, 3)):
        figs = figures(_rep(name, data))
        assert len(figs) == count + 1 and figs[-1][0] == "verdict"
        for _, fig in figs:
            assert len(fig.data) >= 1
