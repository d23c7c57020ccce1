"""Architecture studies against theory: the MLP spectrum equals the MLP kernel's, locality slows the
eigenvalue decay, and the empirical NTK of the CNN and residual CNN approaches its limit like channels^-1/2."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import pick
from workbench.kernels.analytic import infinite_kernels
from workbench.nets import MLP
from workbench.plots.architectures import convergence_figure, spectra_figure
from workbench.studies.architectures import (ARCHITECTURES, build, channel_convergence, digit_images, image_inputs,
                                             limit_net, spectra)


def test_spectra_mlp_matches_mlp_kernel_and_locality_slows_decay():
    x = digit_images(pick(32, 64))
    res = spectra(x, ("mlp", "cnn_flatten"), progress=False)
    # Flatten + Dense sees x.x'/64: the workbench.nets.MLP kernel on the flattened images (exact identity)
    k = np.asarray(infinite_kernels(MLP(depth=2, width=1, activation="relu", w_std=2**0.5, b_std=0.0),
                                    x.reshape(x.shape[0], -1)).ntk)
    ev = np.sort(np.linalg.eigvalsh(k))[::-1]
    # Weyl: eigenvalues move by at most ||dK||_2; the two kernels agree to ~1e-10 relative (different flop order)
    np.testing.assert_allclose(res.eigenvalues[0], ev / ev.sum(), rtol=0, atol=1e-8)
    # locality (Favero et al. 2021): the local CNN's spectrum decays faster than the MLP's (exponent set by
    # the patch size, not the input dimension); measured slopes over ranks 2..n/2: -0.95 vs -0.84 at n = 64
    assert res.decay[1] < res.decay[0] - 0.04, res.decay
    assert len(spectra_figure(res).data) == 2


@pytest.mark.slow  # channels 32..512 with 4 seeds: minutes on 2 cores
@pytest.mark.parametrize("name", ["cnn_gap", "resnet"])
def test_channel_convergence_slope_is_minus_one_half(name):
    x = digit_images(3)[:, 1:7, 1:7]  # 6x6 crops keep the Jacobians small
    # channels 32..512, seeds 0..3: measured slopes -0.557 (resnet) and -0.531 (cnn_gap); at 16 channels the
    # distance is still in the pre-asymptotic regime (O(1/channels) terms), so the fit starts at 32
    res = channel_convergence(name, x, [32, 64, 128, 256, 512], seeds=4, progress=False)
    assert abs(res.slope + 0.5) <= 0.15, (res.slope, res.distance.mean(axis=1))
    assert len(convergence_figure(res).data) == 3  # mean line, seed dots, channels^-1/2 reference


def test_every_architecture_builds_and_has_a_psd_kernel():
    x = digit_images(4)
    for name in ARCHITECTURES:
        k = np.asarray(build(name).kernels(x).ntk)
        assert k.shape == (4, 4) and np.linalg.eigvalsh(k).min() > 0, name
    with pytest.raises(ValueError, match="name must be one of"):
        build("transformer")


def test_build_options_mlp_equals_nets_mlp_and_image_inputs():
    """``build("mlp", c, depth, activation, w_std, b_std, "standard")`` is workbench.nets.MLP of width c on the
    flattened images: the same formulas (docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net)
    by a different code path, so they agree to rounding (float32 here: 1e-5 relative). The standard
    parametrization is the case where the limit depends on the channels (the NTK one is checked above)."""
    x = image_inputs("sphere", 6)
    # every spherical image has norm 8 (unit mean square pixel)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(x).reshape(6, -1), axis=1), 8.0, rtol=1e-5)
    assert image_inputs("gaussian", 6).shape == (6, 8, 8, 1) and image_inputs("digits", 6).shape == (6, 8, 8, 1)
    opts = dict(depth=3, activation="erf", w_std=1.3, b_std=0.2, parametrization="standard")
    got = build("mlp", 32, **opts).kernels(x)
    assert limit_net("mlp", 32, **opts) is build("mlp", 32, **opts)  # one Net per setting (shared compilations)
    ntk = {**opts, "parametrization": "ntk"}
    assert limit_net("mlp", 32, **ntk) is build("mlp", **ntk)  # the NTK limit does not depend on the channels
    want = infinite_kernels(MLP(width=32, **opts), x.reshape(6, -1))
    for a, b in ((got.nngp, want.nngp), (got.ntk, want.ntk)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6 * float(np.max(np.abs(b))))
    with pytest.raises(ValueError, match="depth must be"):
        build("cnn_gap", depth=0)
    with pytest.raises(ValueError, match="parametrization must be one of"):
        build("resnet", parametrization="mup")


def test_channel_convergence_every_seed_streams_the_same_numbers():
    """``every_seed=True`` adds a partial after each seed of a count (NaN for the seeds not done, the fit over the
    finished counts only); its per-count results are exactly those of the per-count stream, and the figure draws
    a partial (mean over the seeds done)."""
    from workbench.studies.architectures import iter_channel_convergence

    x = digit_images(3)[:, 2:6, 2:6]
    per_count = list(iter_channel_convergence("mlp", x, [4, 8], seeds=2))  # the logic, not the net: the cheapest
    every = list(iter_channel_convergence("mlp", x, [4, 8], seeds=2, every_seed=True))
    assert len(per_count) == 2 and len(every) == 4
    first, second = every[0], every[2]
    assert np.isnan(first.distance[0, 1]) and np.isfinite(first.distance[0, 0]) and np.isnan(first.slope)
    np.testing.assert_array_equal(first.distance[0, 0], per_count[0].distance[0, 0])
    assert np.isnan(second.distance[1, 1]) and np.isnan(second.slope)  # one finished count: no fit yet
    np.testing.assert_array_equal(second.distance[0], per_count[0].distance[0])
    for a, b in ((every[1], per_count[0]), (every[3], per_count[1])):
        np.testing.assert_array_equal(a.distance, b.distance)
        assert a.slope == b.slope or (np.isnan(a.slope) and np.isnan(b.slope))
    mean = convergence_figure(second).data[0].y
    assert np.isfinite(mean).all() and mean[1] == pytest.approx(second.distance[1, 0])
