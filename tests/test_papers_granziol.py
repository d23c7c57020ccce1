"""granziol_2022_lr_batch, part (c): the batch Hessian's top eigenvalue against the random-matrix prediction.

The helpers (the per-example GOE quadratic, batch weights, Lanczos on the batch loss's Hessian) are checked against
dense linear algebra on a tiny problem (fast tier); the entry's new verdict check and its deliberately wrong
prediction (no 1/B term) in the slow tier, sharing the fast-mode result with tests/test_papers.py through the
per-run cache.
"""

from __future__ import annotations

import os
import tempfile
import uuid

import numpy as np
import pytest

_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.environ.setdefault("WORKBENCH_PAPERS_TEST_RUN", uuid.uuid4().hex)
os.environ.setdefault("WORKBENCH_PAPERS_CACHE", os.path.join(tempfile.gettempdir(), f"workbench-papers-{_run}"))

import jax.numpy as jnp  # noqa: E402

from workbench import config, papers  # noqa: E402
from workbench.papers import granziol_2022_lr_batch as g  # noqa: E402

BATCH_CHECK = "batch Hessian: 1/B term of lambda'(B) - lambda_1 above B* (units of P s^2/lambda_1)"


def test_batch_hessian_top_matches_dense_eigvalsh_and_the_model_is_the_papers():
    with config.precision("float64"):
        p, n = 12, 20
        prob = g.wigner_batch_quadratic(3, p, n, lambda1=2.0, sigma2=0.05)
        a = np.asarray(prob.per_example)
        # the model: symmetric per-example Hessians whose mean is exactly the spike lambda_1 v v^T
        np.testing.assert_allclose(a, np.swapaxes(a, 1, 2), atol=1e-15)
        full = a.mean(axis=0)
        eig_full = np.linalg.eigvalsh(full)
        np.testing.assert_allclose(eig_full[-1], 2.0, rtol=1e-12)
        np.testing.assert_allclose(eig_full[:-1], 0.0, atol=1e-12)
        # sigma2 is the population (1/N) variance of the off-diagonal noise entries, measured independently here
        iu = np.triu_indices(p, 1)
        np.testing.assert_allclose(prob.sigma2, np.mean((a - full)[:, iu[0], iu[1]] ** 2), rtol=1e-12)
        w = g.batch_weights(n, 5, 3, seed=1)
        assert w.shape == (3, n) and np.all((w == 0) | np.isclose(w, 0.2)) and np.allclose(w.sum(axis=1), 1.0)
        assert np.all((w > 0).sum(axis=1) == 5)  # without replacement: 5 distinct examples
        # one call (one compilation): three batches and the full data (weights 1/N, whose top is lambda_1 = 2).
        # Lanczos over the whole Krylov space against dense eigvalsh of H_B = sum_i w_i A_i (float64: agreement to
        # rounding; 1e-10 relative leaves about 10^5 ulps for P = 12 reorthogonalized steps)
        w = np.concatenate([w, np.full((1, n), 1.0 / n)])
        dense = np.asarray(jnp.linalg.eigvalsh(jnp.einsum("dn,nij->dij", jnp.asarray(w), prob.per_example)))[:, -1]
        top, resid = g.batch_hessian_top(prob, w, seed=0)
        np.testing.assert_allclose(top, dense, rtol=1e-10)
        np.testing.assert_allclose(top[-1], 2.0, rtol=1e-10)
        assert np.all(resid < 1e-10)


def test_batch_hessian_helpers_reject_bad_input():
    with config.precision("float64"):
        prob = g.wigner_batch_quadratic(0, 6, 8, lambda1=1.0, sigma2=0.1)
        with pytest.raises(ValueError, match="batch_size must be <= num_data"):
            g.batch_weights(8, 9, 2, seed=0)
        with pytest.raises(ValueError, match="weights must have shape"):
            g.batch_hessian_top(prob, np.ones((2, 7)))
        with pytest.raises(ValueError, match="num_steps must be <= num_params"):
            g.batch_hessian_top(prob, np.ones((1, 8)) / 8, num_steps=7)
        with pytest.raises(TypeError, match="problem must be a WignerBatchQuadratic"):
            g.batch_hessian_top("nope", np.ones((1, 8)))
        with pytest.raises(ValueError, match="sigma2"):
            g.wigner_batch_quadratic(0, 6, 8, lambda1=1.0, sigma2=-1.0)


@pytest.mark.slow  # the whole entry in fast mode: about 35 s on 2 cores (shared with test_papers through the cache)
def test_entry_batch_hessian_check_passes_and_no_1_over_b_term_fails():
    rep = papers.reproduce("granziol_2022_lr_batch", fast=True)
    c = rep.check(BATCH_CHECK)
    assert c.in_verdict and c.resolved and c.passed, rep.summary()
    assert abs(c.measured - 1.0) <= c.tolerance
    h = rep.data["batch_hessian"]
    above = h["batch_sizes"] >= h["fit_from"]
    assert above.sum() >= 3 and np.all(h["measured"][above] > h["lambda1"])  # the outlier sits above lambda_1
    wrong = rep.with_predictions({BATCH_CHECK: 0.0})  # no 1/B term: lambda'(B) = lambda_1
    assert not wrong.check(BATCH_CHECK).passed
    from workbench.plots.papers import figures

    names = [name for name, _ in figures(rep)]
    assert "batch_hessian" in names
