"""Linearized (kernel) training dynamics in closed form (Jacot et al. 2018; Lee et al. 2019).

In the infinite-width limit (or for the linearized network) with the NTK Theta fixed, training on the
squared loss is a linear ODE in function space. Conventions (docs/theory.md#2-linearized-kernel-training-dynamics):

* ``loss="sum"``: L = 1/2 ||f(X) - y||^2 and gradient flow with rate lr, so
  df/dt = -lr Theta (f - y):  f_t(X) = y + exp(-lr Theta t) (f_0(X) - y) and
  f_t(x*) = f_0(x*) + Theta(x*, X) Theta^{-1} (I - exp(-lr Theta t)) (y - f_0(X)).
* ``loss="mean"`` (neural-tangents' ``predict.gradient_descent_mse`` convention): L is divided by the
  number of training targets n * k (n examples, k outputs), so every formula holds with t replaced by
  t / (n k): neural-tangents' time is n k times ours.
* ``ridge`` adds ridge * I to the training kernel (neural-tangents' ``diag_reg`` with
  ``diag_reg_absolute_scale=True``): at t = inf the test prediction is kernel ridge regression
  Theta(x*, X) (Theta + ridge I)^{-1} (y - f_0(X)) + f_0(x*).
* Discrete gradient descent (:func:`gradient_descent`): f_{j+1}(X) - y = (I - lr' Theta)(f_j(X) - y) with
  lr' = lr (``"sum"``) or lr / (n k) (``"mean"``); it is stable iff lr' < 2 / lambda_max.
* Outputs: y of shape (n,) or (n, k); one kernel is shared by the k outputs (Theta ⊗ I_k).
* Eigenmodes Theta = sum_k lambda_k v_k v_k^T (descending): v_k^T (f_t - y) = exp(-lr lambda_k t) v_k^T (f_0 - y).
  Modes with lambda_k <= n * eps * lambda_max (and no ridge) are treated as exactly zero (the pseudo-inverse
  convention): they never move, and contribute nothing to test predictions, which is exact when the joint
  kernel on (X, x*) is positive semi-definite.

The kernel is decomposed once (``numpy.linalg.eigh``, float64) when the predictor is built, so evaluating
at many times (a slider) costs two small matrix products per time. Times may be scalars or 1-d arrays
(a leading time axis is added) and may include ``numpy.inf``.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from workbench import config
from workbench._compat import deprecated_alias
from workbench.linalg.dense import eigenpairs
from workbench.validation import check_choice, check_finite, check_positive_int, check_real, check_square_symmetric
from workbench.validation import check_number_array

__all__ = ["LOSSES", "Ensemble", "gd_stability_limit", "gradient_descent", "gradient_flow", "LinearizedPredictor",
           "max_lr_from_ntk", "UnstableLearningRateWarning"]

LOSSES = ("sum", "mean")


class UnstableLearningRateWarning(UserWarning):
    """Discrete gradient descent with lr above the stability limit 2 / lambda_max: some modes grow."""


class Ensemble(NamedTuple):
    """Mean and covariance of the infinite-ensemble prediction (f_0 ~ GP(0, K), dynamics by the NTK).

    Means have the shape of the targets (with a leading time axis for array t); covariances are
    (n, n) / (m, m) per time, shared by all outputs (outputs are independent).
    """

    mean_train: np.ndarray
    cov_train: np.ndarray
    mean_test: np.ndarray | None
    cov_test: np.ndarray | None


# --------------------------------------------------------------------------- input checks
def _check_kernel(name: str, k: Any) -> np.ndarray:
    arr = check_number_array(name, k, ndim=2, finite=False)
    check_square_symmetric(name, arr, rtol=1e-6 if np.asarray(k).dtype == np.float32 else 1e-9)
    return 0.5 * (arr + arr.T)


def _check_targets(name: str, y: Any, n: int) -> np.ndarray:
    arr = check_number_array(name, y, finite=False)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, k) to match the kernel, got {arr.shape}")
    check_finite(name, arr)
    return arr


def _check_times(t: Any, *, integer: bool = False) -> tuple[np.ndarray, bool]:
    arr = np.asarray(t, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"t must be a scalar or a 1-d array of times, got shape {arr.shape}")
    if np.any(np.isnan(arr)):
        raise ValueError("t must not contain NaN")
    if np.any(arr < 0):
        raise ValueError(f"t must be >= 0 (times or step counts), got min {arr.min()}")
    if integer and np.any((arr != np.round(arr)) & np.isfinite(arr)):
        raise ValueError(f"steps must be non-negative integers (or inf), got {arr}")
    return np.atleast_1d(arr), arr.ndim == 0


class LinearizedPredictor:
    """Closed-form predictions of linearized training; built by :func:`gradient_flow` or :func:`gradient_descent`.

    Call it as ``predict(t, *, f0_train=None, f0_test=None, ntk_test_train=None) -> (f_train, f_test)``.

    Attributes:
      eigenvalues: (n,) eigenvalues of Theta + ridge I, descending.
      eigenvectors: (n, n) matching eigenvectors (columns).
      lr, ridge, loss: the settings; ``time_scale`` is 1 (``"sum"``) or 1 / (n k) (``"mean"``).
      discrete: True for gradient descent (t counts steps).
      lr_max: the stability limit of discrete GD in the units of ``lr``: 2 / (time_scale * lambda_max).
      stable: ``lr < lr_max`` (always True for gradient flow).
      info: the settings and :func:`workbench.config.device_report` (numpy float64 algebra).
    """

    def __init__(self, ntk_train: Any, y_train: Any, *, lr: float, ridge: float, loss: str, discrete: bool,
                 ntk_test_train: Any = None) -> None:
        k = _check_kernel("ntk_train", ntk_train)
        self.y = _check_targets("y_train", y_train, k.shape[0])
        self.lr = check_real("lr", lr, positive=True)
        self.ridge = check_real("ridge", ridge, nonnegative=True)
        self.loss = check_choice("loss", loss, LOSSES)
        self.discrete = discrete
        n = k.shape[0]
        self.time_scale = 1.0 if loss == "sum" else 1.0 / self.y.size
        pairs = eigenpairs(k, psd=True, name="ntk_train")
        lam, vec = pairs.eigenvalues, pairs.eigenvectors.T
        self.eigenvalues = lam + self.ridge
        self.eigenvectors = vec
        self._null = self.eigenvalues <= n * np.finfo(float).eps * max(float(lam[0]), np.finfo(float).tiny)
        lam_max = float(self.eigenvalues[0])
        self.lr_max = np.inf if lam_max <= 0 else 2.0 / (self.time_scale * lam_max)
        self.stable = (not discrete) or self.lr < self.lr_max
        self._ntk_test_train = None
        self._test_proj = None
        if ntk_test_train is not None:
            self._ntk_test_train = self._check_cross(ntk_test_train)
            self._test_proj = self._ntk_test_train @ vec
        kind = "gradient descent (t = steps)" if discrete else "gradient flow"
        self.info = (f"linearized {kind}, lr={self.lr:g}, ridge={self.ridge:g}, loss={loss}, n={n}, "
                     f"lambda_max={lam_max:.4g}, lr_max={self.lr_max:.4g}; numpy float64; {config.device_report()}")
        if discrete and not self.stable:
            warnings.warn(
                f"lr={self.lr:g} is above the gradient-descent stability limit 2/lambda_max = {self.lr_max:.4g} "
                f"(loss={loss}): {int(np.sum(np.abs(1 - self.lr * self.time_scale * self.eigenvalues) > 1))} "
                "mode(s) grow geometrically", UnstableLearningRateWarning, stacklevel=3)

    # ------------------------------------------------------------------ helpers
    def _check_cross(self, ntk_test_train: Any) -> np.ndarray:
        arr = np.asarray(ntk_test_train, dtype=float)
        n = self.y.shape[0]
        if arr.ndim != 2 or arr.shape[1] != n:
            raise ValueError(f"ntk_test_train must have shape (m, {n}), got {arr.shape}")
        check_finite("ntk_test_train", arr)
        return arr

    def _f0(self, name: str, f0: Any, m: int) -> np.ndarray:
        shape = (m,) + self.y.shape[1:]
        if f0 is None:
            return np.zeros(shape)
        arr = np.asarray(f0, dtype=float)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (like the targets), got {arr.shape}")
        check_finite(name, arr)
        return arr

    def decay(self, t: Any) -> np.ndarray:
        """Per-mode residual factors, shape (T, n): exp(-lr' lambda_k t) (flow) or (1 - lr' lambda_k)^t (GD)."""
        ts, _ = _check_times(t, integer=self.discrete)
        a = self.lr * self.time_scale * self.eigenvalues[None, :]
        tt = ts[:, None]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.discrete:
                base = 1.0 - a
                out = np.where(np.isinf(tt), np.where(np.abs(base) < 1, 0.0, np.where(base == 1, 1.0, np.inf)),
                               np.power(base, np.where(np.isinf(tt), 0.0, tt)))
            else:
                out = np.where(np.isinf(tt), np.where(a > 0, 0.0, 1.0), np.exp(-a * np.where(np.isinf(tt), 0.0, tt)))
        return np.where(self._null[None, :], 1.0, out)

    def _gain(self, decay: np.ndarray) -> np.ndarray:
        """(1 - decay) / lambda per mode, 0 on null modes (pseudo-inverse convention)."""
        lam = np.where(self._null, 1.0, self.eigenvalues)
        return np.where(self._null[None, :], 0.0, (1.0 - decay) / lam[None, :])

    def _gain_flow(self, t: Any) -> np.ndarray:
        # -expm1 avoids cancellation at small lambda t
        ts, _ = _check_times(t)
        a = self.lr * self.time_scale
        lam = np.where(self._null, 1.0, self.eigenvalues)
        tt = ts[:, None]
        finite = np.where(np.isinf(tt), 0.0, tt)
        g = np.where(np.isinf(tt), 1.0 / lam[None, :], -np.expm1(-a * lam[None, :] * finite) / lam[None, :])
        return np.where(self._null[None, :], 0.0, g)

    # ------------------------------------------------------------------ predictions
    def __call__(self, t: Any, *, f0_train: Any = None, f0_test: Any = None,
                 ntk_test_train: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (f_train, f_test) at time(s) t; f_test is None without a test kernel.

        Shapes: targets' shape, with a leading time axis when t is an array.
        """
        ts, scalar = _check_times(t, integer=self.discrete)
        n = self.y.shape[0]
        f0 = self._f0("f0_train", f0_train, n)
        v = self.eigenvectors
        r0 = v.T @ (f0 - self.y)  # (n,) or (n, k): mode residuals at t = 0
        d = self.decay(ts)
        extra = (slice(None),) * 2 + (None,) * (self.y.ndim - 1)
        f_train = self.y[None] + np.einsum("ij,tj...->ti...", v, d[extra] * r0[None])
        f_test = None
        if ntk_test_train is not None or self._test_proj is not None:
            proj = self._test_proj if ntk_test_train is None else self._check_cross(ntk_test_train) @ v
            m = proj.shape[0]
            f0t = self._f0("f0_test", f0_test, m)
            g = self._gain(d) if self.discrete else self._gain_flow(ts)
            f_test = f0t[None] + np.einsum("ij,tj...->ti...", proj, g[extra] * (-r0)[None])
        elif f0_test is not None:
            raise ValueError("f0_test needs ntk_test_train (here or when the predictor was built)")
        if scalar:
            return f_train[0], (None if f_test is None else f_test[0])
        return f_train, f_test

    def mode_residuals(self, t: Any, *, f0_train: Any = None) -> np.ndarray:
        """Residuals along the eigenvectors, v_k^T (f_t(X) - y), shape (T, n[, k]) (modes in descending order).

        They decay as exp(-lr' lambda_k t): fastest along the top modes.
        """
        ts, scalar = _check_times(t, integer=self.discrete)
        f0 = self._f0("f0_train", f0_train, self.y.shape[0])
        r0 = self.eigenvectors.T @ (f0 - self.y)
        d = self.decay(ts)
        out = d[(slice(None),) * 2 + (None,) * (self.y.ndim - 1)] * r0[None]
        return out[0] if scalar else out

    def train_loss(self, t: Any, *, f0_train: Any = None) -> np.ndarray:
        """Training loss in the predictor's convention: 1/2 ||f_t(X) - y||^2 (``"sum"``) or that / (n k) (``"mean"``)."""
        r = self.mode_residuals(t, f0_train=f0_train)
        axes = tuple(range(r.ndim - self.y.ndim, r.ndim))
        return 0.5 * np.sum(r * r, axis=axes) * (1.0 if self.loss == "sum" else 1.0 / self.y.size)

    def test_loss(self, t: Any, y_test: Any, *, f0_train: Any = None, f0_test: Any = None,
                  ntk_test_train: Any = None) -> np.ndarray:
        """Test loss in the same convention: 1/2 ||f_t(x*) - y*||^2 (``"sum"``) or that / (m k) (``"mean"``)."""
        _, f_test = self(t, f0_train=f0_train, f0_test=f0_test, ntk_test_train=ntk_test_train)
        if f_test is None:
            raise ValueError("test_loss needs ntk_test_train (here or when the predictor was built)")
        yt = np.asarray(y_test, dtype=float)
        expected = f_test.shape[-self.y.ndim:]
        if yt.shape != expected:
            raise ValueError(f"y_test must have shape {expected} (test points, like the targets), got {yt.shape}")
        check_finite("y_test", yt)
        r = f_test - yt
        axes = tuple(range(r.ndim - self.y.ndim, r.ndim))
        return 0.5 * np.sum(r * r, axis=axes) * (1.0 if self.loss == "sum" else 1.0 / yt.size)

    def ensemble(self, t: Any, nngp_train: Any, *, ntk_test_train: Any = None, nngp_test_train: Any = None,
                 nngp_test_test: Any = None) -> Ensemble:
        """Mean and covariance over initializations f_0 ~ GP(0, K) (K = NNGP), dynamics by the NTK.

        With A = Theta(x*, X) Theta^{-1} (I - exp(-lr Theta t)) (docs/theory.md#2-linearized-kernel-training-dynamics; Lee et al. 2019 eq. 16):
        mean mu_t(x*) = A y, covariance Sigma_t = K** + A K_XX A^T - (A K_X* + (A K_X*)^T). On the training
        set A = I - exp(-lr Theta t), so Sigma = exp(-lr Theta t) K_XX exp(-lr Theta t).
        The test part needs ``ntk_test_train`` (or the one given at construction), ``nngp_test_train`` (m, n)
        and ``nngp_test_test`` (m, m).
        """
        ts, scalar = _check_times(t, integer=self.discrete)
        n = self.y.shape[0]
        kxx = _check_kernel("nngp_train", nngp_train)
        if kxx.shape != (n, n):
            raise ValueError(f"nngp_train must have shape ({n}, {n}), got {kxx.shape}")
        v = self.eigenvectors
        d = self.decay(ts)
        extra = (slice(None),) * 2 + (None,) * (self.y.ndim - 1)
        r0 = v.T @ (-self.y)
        mean_train = self.y[None] + np.einsum("ij,tj...->ti...", v, d[extra] * r0[None])
        kv = v.T @ kxx @ v
        cov_train = np.einsum("ij,tj,jl,tl,kl->tik", v, d, kv, d, v)
        mean_test = cov_test = None
        have_test = ntk_test_train is not None or self._test_proj is not None
        if have_test:
            proj = self._test_proj if ntk_test_train is None else self._check_cross(ntk_test_train) @ v
            m = proj.shape[0]
            if nngp_test_train is None or nngp_test_test is None:
                raise ValueError("the test ensemble needs nngp_test_train (m, n) and nngp_test_test (m, m)")
            kxs = np.asarray(nngp_test_train, dtype=float)
            if kxs.shape != (m, n):
                raise ValueError(f"nngp_test_train must have shape ({m}, {n}), got {kxs.shape}")
            check_finite("nngp_test_train", kxs)
            kss = _check_kernel("nngp_test_test", nngp_test_test)
            if kss.shape != (m, m):
                raise ValueError(f"nngp_test_test must have shape ({m}, {m}), got {kss.shape}")
            g = self._gain(d) if self.discrete else self._gain_flow(ts)
            a = np.einsum("ij,tj,kj->tik", proj, g, v)  # (T, m, n)
            mean_test = np.einsum("tik,k...->ti...", a, self.y)
            akx = np.einsum("tik,jk->tij", a, kxs)  # A K_X*  (T, m, m)
            cov_test = kss[None] + np.einsum("tik,kl,tjl->tij", a, kxx, a) - akx - np.swapaxes(akx, 1, 2)
        elif nngp_test_train is not None or nngp_test_test is not None:
            raise ValueError("the test ensemble also needs ntk_test_train")
        if scalar:
            return Ensemble(mean_train[0], cov_train[0], None if mean_test is None else mean_test[0],
                            None if cov_test is None else cov_test[0])
        return Ensemble(mean_train, cov_train, mean_test, cov_test)


def gradient_flow(ntk_train: Any, y_train: Any, *, lr: float = 1.0, ridge: float = 0.0, loss: str = "sum",
                  ntk_test_train: Any = None) -> LinearizedPredictor:
    """Closed-form gradient flow of the linearized model: returns ``predict(t, *, f0_train, f0_test, ntk_test_train)``.

    ``loss="sum"``: L = 1/2 ||f - y||^2, df/dt = -lr Theta (f - y); ``loss="mean"`` divides L by the number
    of training targets n k (neural-tangents' convention: its time is n k times ours). See the module
    docstring for ``ridge`` and the pseudo-inverse convention.

    Example:
      >>> import numpy as np
      >>> predict = gradient_flow(np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([1.0, -1.0]))
      >>> f_train, _ = predict(np.inf)
      >>> np.allclose(f_train, [1.0, -1.0])
      True
    """
    return LinearizedPredictor(ntk_train, y_train, lr=lr, ridge=ridge, loss=loss, discrete=False,
                               ntk_test_train=ntk_test_train)


def gradient_descent(ntk_train: Any, y_train: Any, *, lr: float, ridge: float = 0.0, loss: str = "sum",
                     ntk_test_train: Any = None) -> LinearizedPredictor:
    """Closed-form discrete gradient descent of the linearized model; ``predict(steps, ...)``.

    f_{j+1}(X) - y = (I - lr' Theta)(f_j(X) - y), lr' = lr (``"sum"``) or lr / (n k) (``"mean"``), so mode k
    scales by (1 - lr' lambda_k)^j. Stable iff lr' < 2 / lambda_max: above it the predictor is still
    returned (``stable=False``, ``lr_max`` says the limit) and an :class:`UnstableLearningRateWarning` is
    issued, so the divergence is reported, not silent.
    """
    return LinearizedPredictor(ntk_train, y_train, lr=lr, ridge=ridge, loss=loss, discrete=True,
                               ntk_test_train=ntk_test_train)


def max_lr_from_ntk(ntk_train: Any, *, loss: str = "sum", num_outputs: int = 1) -> float:
    """Largest stable GD learning rate of the linearized network, 2 / lambda_max(Theta) (``"sum"``), times n k
    for ``"mean"`` (Lee et al. 2019, sec. 2.4)."""
    k = _check_kernel("ntk_train", ntk_train)
    check_choice("loss", loss, LOSSES)
    num_outputs = check_positive_int("num_outputs", num_outputs)
    lam = eigenpairs(k, psd=True, name="ntk_train").eigenvalues
    scale = 1.0 if loss == "sum" else 1.0 / (k.shape[0] * num_outputs)
    return np.inf if lam[0] <= 0 else 2.0 / (scale * float(lam[0]))


gd_stability_limit = deprecated_alias(max_lr_from_ntk, "workbench.dynamics.gd_stability_limit",
                                      "workbench.dynamics.max_lr_from_ntk")
