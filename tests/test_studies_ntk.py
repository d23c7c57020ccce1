"""NTK studies: the width^-1/2 convergence law, lazy vs muP kernel drift, sphere spectrum, spectra shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench.nets import MLP
from workbench.stats import fit_loglog
from workbench.studies.ntk import (
    drift_init,
    iter_kernel_drift,
    kernel_drift,
    make_inputs,
    spectrum_comparison,
    sphere_spectrum,
    width_convergence,
)


def test_width_convergence_slope_is_minus_half():
    # fixed seeds: the issue asks for the log-log slope -0.5 within 0.1; with 4 seeds x 4 widths the
    # sampling error of the fitted slope is about 0.05
    x = make_inputs("sphere", 8, 3, seed=1)
    res = width_convergence(MLP(depth=2, width=64, activation="relu", w_std=1.4, b_std=0.1), x,
                            [128, 256, 512, 1024], seeds=4, progress=False)
    assert res.frobenius.shape == (4, 4) and res.spectral.shape == (4, 4)
    assert abs(res.slope_frobenius + 0.5) < 0.1
    # the spectral norm of the fluctuation is dominated by few directions: noisier, so a looser check
    assert abs(res.slope_spectral + 0.5) < 0.2


def test_width_convergence_streams_width_by_width():
    """iter_width_convergence: one partial result per width (no fit before two widths), the last one equal to
    width_convergence's (the NTK panel draws the partials as they arrive)."""
    from workbench.studies.ntk import iter_width_convergence

    x = make_inputs("sphere", 4, 3, seed=1)
    net = MLP(depth=1, width=8, activation="erf", w_std=1.3, b_std=0.1)
    steps = list(iter_width_convergence(net, x, [8, 16, 32], seeds=1))
    assert [s.widths.tolist() for s in steps] == [[8], [8, 16], [8, 16, 32]]
    assert np.isnan(steps[0].slope_frobenius) and np.isfinite(steps[1].slope_frobenius)
    whole = width_convergence(net, x, [8, 16, 32], seeds=1, progress=False)
    np.testing.assert_array_equal(steps[-1].frobenius, whole.frobenius)
    assert steps[-1].slope_spectral == whole.slope_spectral
    assert steps[0].frobenius[0, 0] == whole.frobenius[0, 0]  # earlier widths are not recomputed differently
    from workbench.plots.ntk import convergence

    names = [t.name for t in convergence(steps[0]).data]  # a one-width partial draws without a fit line
    assert not any("fit" in n for n in names) and any("fit" in t.name for t in convergence(whole).data)


def test_kernel_drift_lazy_vs_mup():
    from workbench.kernels.empirical import empirical_ntk
    from workbench.training import train

    x = make_inputs("sphere", 8, 3, seed=2)
    y = jnp.sin(3 * x[:, :1])
    net = MLP(depth=1, width=64, activation="relu", w_std=1.4, b_std=0.1)
    parts = list(iter_kernel_drift(net, x, y, [64, 1024], parametrizations=("ntk",), lr=0.5, num_steps=10,
                                   num_kernels=3, seeds=2))
    lazy = parts[-1]
    rich = kernel_drift(net, x, y, [1024], parametrizations=("mup",), lr=0.5, num_steps=10, num_kernels=3,
                        seeds=1, progress=False)
    # streamed run by run: after the first run the second width is still NaN
    assert len(parts) == 2 and np.isfinite(parts[0].drift[0, 0]).all() and np.isnan(parts[0].drift[0, 1]).all()
    assert lazy.drift.shape == (1, 2, 2, 3) and not lazy.diverged.any() and not rich.diverged.any()
    np.testing.assert_array_equal(lazy.drift[..., 0], 0.0)  # Theta_0 against itself
    # the study's own compiled program (GD + structured NTK, w_std/b_std/parametrization as data) against the
    # general path from the same init: train()'s GD on net.apply and the Jacobian-contraction NTK at the same
    # steps; the same float32 arithmetic up to summation order: 1e-4 relative (a difference of O(1) kernels)
    init = drift_init(net, 3, 0, jnp.ones(2), jnp.asarray(1.0), x.dtype)  # ntk: unit init stds

    def loss(p, batch):
        f = net.apply(p, batch[0], check=False)
        return 0.5 * jnp.sum((f - batch[1]) ** 2) / f.size

    ref = train(loss, lambda _key: init, (x, y), optimizer="gd", lrs=[0.5], seeds=[0], num_steps=10,
                snapshot_steps=(0, 5, 10), progress=False)
    k = np.stack([np.asarray(empirical_ntk(net.apply, jax.tree_util.tree_map(lambda a: a[0, 0], ref.snapshots[t]),
                                           x, method="jacobian")) for t in (0, 5, 10)])
    want = np.linalg.norm(k - k[0], axis=(1, 2)) / np.linalg.norm(k[0])
    np.testing.assert_allclose(lazy.drift[0, 0, 0], want, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(lazy.final_loss[0, 0, 0], np.asarray(ref.train_loss)[0, 0, -1], rtol=1e-4)
    ntk, mup = lazy.drift[0, :, :, -1].mean(axis=1), rich.drift[0, 0, 0, -1]
    # NTK parametrization: drift ~ width^-1/2, so 16x the width divides it by ~4 (at least 2 here);
    # muP at the same width: O(1) drift, far above the lazy one (measured: ~1.8 vs ~0.01)
    assert ntk[1] < ntk[0] / 2
    assert mup > 0.3 and mup > 10 * ntk[1]


def test_sphere_spectrum_decay_and_gram():
    res = sphere_spectrum(MLP(depth=1, width=8, activation="relu", w_std=2**0.5, b_std=None), 3, 40,
                          num_points=200)
    # Bietti & Mairal: mu_k ~ k^-d (d = 3) for even k; the fit over k = 2..40 sees the pre-asymptotic bend
    assert -3.5 < res.decay < -2.7
    np.testing.assert_allclose(res.mu[0], 2 / 3 * 0.5, rtol=1e-10)
    # Gram eigenvalues / n approach mu_0 (multiplicity 1) and mu_1 (multiplicity 3, split by sampling noise
    # of relative size ~ 1/sqrt(n) ~ 7% each at n = 200: their mean is within 10%)
    np.testing.assert_allclose(res.gram[0], res.mu[0], rtol=0.1)
    np.testing.assert_allclose(np.mean(res.gram[1:4]), res.mu[1], rtol=0.1)


def test_spectrum_comparison_shapes_and_agreement():
    x = make_inputs("gaussian", 6, 4)
    res = spectrum_comparison(MLP(depth=1, width=2048, activation="erf", w_std=1.3, b_std=0.2), x, seeds=1)
    assert res.empirical.shape == (1, 6) and res.infinite.shape == (6,)
    assert np.all(np.diff(res.infinite) <= 0)
    # top eigenvalue at width 2048 within 5% of the limit (fluctuations ~ 1/sqrt(2048) ~ 2%)
    np.testing.assert_allclose(res.empirical[:, 0], res.infinite[0], rtol=0.05)


def test_bad_inputs():
    x = make_inputs("sphere", 4, 3)
    with pytest.raises(ValueError, match="dataset must be one of"):
        make_inputs("mnist", 4, 3)
    with pytest.raises(ValueError, match="at least two widths"):
        width_convergence(MLP(depth=1, width=4), x, [8], progress=False)
    with pytest.raises(ValueError, match=r"y must have shape \(4, out_dim\)"):
        kernel_drift(MLP(depth=1, width=4), x, jnp.ones(4), [8, 16], progress=False)
    with pytest.raises(ValueError, match="positive"):
        fit_loglog([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(TypeError, match="MLP"):
        spectrum_comparison("net", x)
