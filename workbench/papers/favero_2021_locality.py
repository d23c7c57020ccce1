"""Favero, Cagnetta & Wyart 2021: with local kernels the learning-curve exponent depends on the filter size s,
not on the input dimension d.

Setting (a torus version of the paper's): inputs are d angles theta_j uniform on [0, 2 pi), each embedded as
the pixel (cos theta_j, sin theta_j) (2 channels); patches are s cyclically adjacent pixels. A *local* kernel
sums a patch kernel over the d cyclic patches,

    K_s(x, y) = (1/d) sum_{i=0}^{d-1} k_s(x_i, y_i),   x_i = the pixels i, ..., i + s - 1 (indices mod d),

and the fully connected (FC) kernel is the same with s = d (one patch, the whole input). Two patch kernels,
both functions of u_i = (1/s) sum_{j<s} cos(theta_{i+j} - phi_{i+j}) (``patch``):

* ``"laplace"`` (the entry's; the paper's experiments use Laplace and NTK patch kernels): k(x_i, y_i) =
  exp(-|x_i - y_i|), the Laplace kernel of the patches' Euclidean distance |x_i - y_i| = sqrt(2 s (1 - u_i));
  k(0) = 1;
* ``"relu_ntk"``: kappa(u_i) = u kappa_0(u) + kappa_1(u), the two-layer relu NTK
  (:func:`workbench.kernels.sphere.relu_ntk_two_layer`): the NTK of the one-hidden-layer relu convolution with
  filter size s and a dense readout of every position, :func:`conv_net` on :func:`embed`-ded inputs
  (``tests/test_papers_architecture_entries.py`` checks it against ``Net.kernels``); kappa(1) = 2.

Spectrum: K_s is translation invariant on the torus T^d, so the Fourier modes e^{i n.theta} (n in Z^d) are
its eigenfunctions (uniform measure). A mode whose support fits in a window of s adjacent coordinates, with
values m on that window (first entry nonzero, span r = last nonzero index + 1), lies inside s - r + 1 patches:

    lambda(n) = (s - r + 1) c(m) / d,   c(m) = Fourier coefficient of k(z) = k_s(u = (1/s) sum_j cos z_j) on T^s,

each with multiplicity d (the window's start); the constant mode has lambda = c(0); modes not inside a window
have lambda = 0. c(m) comes from an FFT of k on an M^s grid (:func:`local_spectrum`; the eigenvalues sum to
k(0), the trace identity). Both patch kernels have a |z| cusp at z = 0 (exp(-r) ~ 1 - r; kappa(u) ~
2 - sqrt(2 (1 - u))/pi), so c(m) ~ |m|^{-(s + alpha)} with alpha = 1.

Teacher: a Gaussian process with the local kernel of filter size t = 2 (Laplace patches, alpha_t = 1); students:
the local kernel with s = t (teacher = student) and the FC kernel (s = d). Favero et al. 2021 (Sec. 3, for
t <= s and alpha_t <= 2 (alpha_s + s)) predict E_g ~ P^{-beta} with

    beta = alpha_t / s = 1 / 2          (local student, any d),
    beta = alpha_t / d = 1 / d          (FC student; the curse of dimensionality, Spigler, Geiger & Wyart 2020).

Measured: ridgeless kernel regression on P points, its error averaged over teachers in closed form (no teacher
draws; :func:`regression_errors`): with student Gram A = K_s(X, X) and the teacher's K_t,

    E_g(X) = E_x[K_t(x, x) - 2 K_s(x, X) A^{-1} K_t(X, x) + K_s(x, X) A^{-1} K_t(X, X) A^{-1} K_s(X, x)],

the GP posterior variance E_x[K(x, x) - K(x, X) K(X, X)^{-1} K(X, x)] when student = teacher; averaged over
test points and draws of X. The spectral theory of Bordelon et al. 2020 / Canatar et al. 2021
(:func:`workbench.generalization.kernel_learning_curve`, target powers = eigenvalues) gives the predicted curve
of the local student at the same P.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from workbench.generalization import kernel_learning_curve
from workbench.kernels.sphere import relu_ntk_two_layer
from workbench.papers._common import verification
from workbench.papers.base import SIGMAS, Check, Reproduction, slope_with_stderr
from workbench.validation import check_choice, check_positive_int

REFERENCE = ("Favero, Cagnetta & Wyart 2021, Locality defeats the curse of dimensionality in convolutional "
             "teacher-student scenarios, NeurIPS; Spigler, Geiger & Wyart 2020, Asymptotic learning curves of "
             "kernel methods: empirical data versus teacher-student paradigm, J. Stat. Mech.")
CLAIM = ("Kernel regression with a local (convolutional) kernel of filter size s learns a local Gaussian-process "
         "teacher with an error decaying like P^{-alpha_t/s}, independent of the input dimension d, while a fully "
         "connected kernel suffers the curse of dimensionality, P^{-alpha_t/d}.")
#: the cusp exponent of the patch kernels (Fourier coefficients ~ |m|^{-(s + ALPHA)})
ALPHA = 1.0
#: the entry's patch kernel (teacher and both students); the paper's experiments use Laplace and NTK patches
PATCH = "laplace"
#: the issue's bands: local exponents at two input dimensions within this of each other, and the local
#: exponent more than RATIO times the fully connected one
SAME_BAND = 0.15
RATIO = 2.0


# ----------------------------------------------------------------------------- kernels
def _check_angles(name: str, theta: np.ndarray) -> np.ndarray:
    t = np.asarray(theta, dtype=float)
    if t.ndim != 2 or t.shape[1] < 1 or not np.all(np.isfinite(t)):
        raise ValueError(f"{name} must be a finite (n, d) array of angles, got shape {t.shape}")
    return t


#: patch kernels of :func:`local_kernel` (module docstring), each a function of (u, s) with u the window's mean cosine
PATCHES = ("laplace", "relu_ntk")


def patch_kernel(u: np.ndarray, s: int, patch: str = "laplace") -> np.ndarray:
    """k_s(u): ``"laplace"`` exp(-sqrt(2 s (1 - u))) (the Laplace kernel of the patches' Euclidean distance) or
    ``"relu_ntk"`` kappa(u), the two-layer relu NTK; u = (1/s) sum_j cos(theta_j - phi_j) in [-1, 1]."""
    check_choice("patch", patch, PATCHES)
    s = check_positive_int("s", s)
    u = np.clip(np.asarray(u, float), -1.0, 1.0)
    if patch == "laplace":
        return np.exp(-np.sqrt(2.0 * s * (1.0 - u)))
    return relu_ntk_two_layer(u)


def local_kernel(theta1: np.ndarray, theta2: np.ndarray | None = None, *, s: int, patch: str = "laplace") -> np.ndarray:
    """K_s(x, y) = (1/d) sum_i k_s((1/s) sum_{j<s} cos(theta1_{i+j} - theta2_{i+j})), indices mod d.

    ``theta1`` (n1, d), ``theta2`` (n2, d) angles; ``s = d`` is the fully connected kernel; ``patch`` one of
    :data:`PATCHES` (module docstring). float64 numpy; a few (n1, n2) arrays live at once (the window is slid one
    pixel at a time).
    """
    a = _check_angles("theta1", theta1)
    b = a if theta2 is None else _check_angles("theta2", theta2)
    d = a.shape[1]
    if b.shape[1] != d:
        raise ValueError(f"theta2 must have d = {d} angles per row, got {b.shape[1]}")
    s = check_positive_int("s", s)
    if s > d:
        raise ValueError(f"the filter size s must be <= d = {d}, got {s}")
    check_choice("patch", patch, PATCHES)
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)

    def cos_diff(j: int) -> np.ndarray:
        j %= d
        return np.multiply.outer(ca[:, j], cb[:, j]) + np.multiply.outer(sa[:, j], sb[:, j])

    window = sum(cos_diff(j) for j in range(s))
    starts = 1 if s == d else d
    out = patch_kernel(window / s, s, patch)
    for i in range(1, starts):
        window += cos_diff(i + s - 1) - cos_diff(i - 1)
        out += patch_kernel(window / s, s, patch)
    return out / starts


def embed(theta: np.ndarray, s: int) -> np.ndarray:
    """Angles (n, d) -> pixels (n, d + s - 1, 2) = (cos, sin), wrapped by s - 1 pixels (periodic boundary)."""
    t = _check_angles("theta", theta)
    wrapped = np.concatenate([t, t[:, :s - 1]], axis=1)
    return np.stack([np.cos(wrapped), np.sin(wrapped)], axis=-1)


def conv_net(s: int, channels: int = 64):
    """The network whose NTK is :func:`local_kernel` on :func:`embed`-ded inputs (module docstring)."""
    from workbench.layers import Conv, Dense, Flatten, Relu, serial

    return serial(Conv(channels, (s,), padding="VALID", w_std=math.sqrt(2), b_std=0.0), Relu(), Flatten(),
                  Dense(1, w_std=math.sqrt(2), b_std=0.0))


# ----------------------------------------------------------------------------- spectrum
def patch_coefficients(s: int, grid: int, patch: str = "laplace") -> np.ndarray:
    """Fourier coefficients c(m) of k(z) = k_s((1/s) sum_j cos z_j) on T^s from an FFT on grid^s points.

    Returns an array of shape (grid,)*s indexed by m mod grid (aliasing folds |m| > grid/2 onto the grid;
    the coefficients still sum to k(0) exactly: 1 for ``"laplace"``, kappa(1) = 2 for ``"relu_ntk"``).
    """
    s = check_positive_int("s", s)
    grid = check_positive_int("grid", grid, minimum=4)
    z = 2 * np.pi * np.arange(grid) / grid
    cos_sum = np.zeros((grid,) * s)
    for j in range(s):
        shape = [1] * s
        shape[j] = grid
        cos_sum = cos_sum + np.cos(z).reshape(shape)
    c = np.fft.fftn(patch_kernel(cos_sum / s, s, patch)).real / grid ** s
    return np.clip(c, 0.0, None)  # a PSD kernel: negative entries are round-off (|c| < 1e-15)


def local_spectrum(s: int, d: int, grid: int, patch: str = "laplace") -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues, multiplicities) of the local kernel K_s on T^d (module docstring), from an FFT grid.

    The constant mode (multiplicity 1) and, for each window pattern m with m_0 != 0, lambda = (s - r + 1) c(m)/d
    with multiplicity d. Needs d >= 2 s - 1 (each mode then has a unique first nonzero coordinate) or s = d.
    """
    s, d = check_positive_int("s", s), check_positive_int("d", d)
    if s == d:  # one patch: every Fourier mode of T^d, multiplicity 1
        c = patch_coefficients(s, grid, patch).ravel()
        return c, np.ones_like(c)
    if d < 2 * s - 1:
        raise ValueError(f"d must be >= 2 s - 1 = {2 * s - 1} for the window bookkeeping (or s = d), got d = {d}")
    c = patch_coefficients(s, grid, patch)
    idx = np.indices(c.shape).reshape(s, -1).T  # (grid^s, s) frequencies mod grid
    vals = c.reshape(-1)
    nonzero = idx != 0
    first = nonzero[:, 0]
    span = s - np.argmax(nonzero[:, ::-1], axis=1)  # last nonzero index + 1
    eta = np.concatenate([[vals[0]], (s - span[first] + 1) * vals[first] / d])
    mult = np.concatenate([[1.0], np.full(int(first.sum()), float(d))])
    return eta, mult


# ----------------------------------------------------------------------------- learning curves
def regression_errors(k_student: np.ndarray, k_teacher: np.ndarray, ps: list[int], num_test: int,
                      jitter: float = 1e-10) -> np.ndarray:
    """E_g at each P in ``ps``: ridgeless regression with the student's Gram ``k_student`` of a GP teacher with
    ``k_teacher`` (both (n, n) on the same points), averaged over teachers in closed form (module docstring), on
    the last ``num_test`` points given the first P (nested training sets). ``k_teacher is k_student``: the
    posterior variance. ``jitter`` times the mean prior variance is added to the student's training Gram."""
    ks, kt = np.asarray(k_student, float), np.asarray(k_teacher, float)
    n = ks.shape[0]
    if ks.ndim != 2 or ks.shape != (n, n) or kt.shape != ks.shape:
        raise ValueError(f"k_student and k_teacher must be square and of the same shape, got {ks.shape} and {kt.shape}")
    ps = [check_positive_int("P", p) for p in ps]
    num_test = check_positive_int("num_test", num_test)
    if not ps:
        raise ValueError("ps must hold at least one training-set size P")
    if max(ps) + num_test > n:
        raise ValueError(f"the kernels have {n} rows; need max(ps) + num_test = {max(ps) + num_test}")
    same = k_teacher is k_student
    test = slice(n - num_test, n)
    prior_t = np.diag(kt)[test]
    scale = float(np.mean(np.diag(ks)[test]))
    out = []
    for p in ps:
        a = scipy.linalg.cho_solve(scipy.linalg.cho_factor(ks[:p, :p] + jitter * scale * np.eye(p), lower=True),
                                   ks[:p, test])  # A^{-1} K_s(X, x), (p, num_test)
        if same:
            err = prior_t - np.sum(ks[:p, test] * a, axis=0)
        else:
            err = prior_t - 2 * np.sum(kt[:p, test] * a, axis=0) + np.sum(a * (kt[:p, :p] @ a), axis=0)
        out.append(float(np.mean(err)))
    return np.array(out)


def _exponent_check(name: str, measured: float, se: float, predicted: float, resolution: float) -> Check:
    tol = max(SAME_BAND, SIGMAS * se)
    return Check(name, measured, predicted, tol, f"max of {SAME_BAND:g} (the issue's band for an exponent; the "
                 f"deterministic-equivalent theory itself is exact only as P grows) and {SIGMAS:g} standard errors of "
                 f"the fitted exponent (se {se:.2g}: scatter over input draws and curvature of the log-log curve); "
                 f"resolved when {SIGMAS:g} se <= {resolution:.3g}, half the gap between alpha/s and alpha/d",
                 stderr=se, resolution=resolution)


def run(*, fast: bool, key: int) -> Reproduction:
    s = 2
    dims = (8, 16)
    # P from 256: the spectral theory's local slope of the Laplace-patch curve still grows with P (d = 8: 0.13 over
    # P = 16-32, 0.30 over 128-256, 0.41 over 512-1024), so the fit takes the largest P a CPU run affords and the
    # verdict compares it with the theory's slope over the same P
    ps = [256, 512, 1024] if fast else [256, 512, 1024, 2048]
    num_test = 256 if fast else 512
    trials = 3 if fast else 6
    grid = 256 if fast else 512
    rng = np.random.default_rng(key)
    with verification() as (device, precision), threadpool_limits(limits=1, user_api="blas"):
        errors = {}
        for d in dims:
            local, fc = np.zeros((len(ps), trials)), np.zeros((len(ps), trials))
            for r in range(trials):  # both students see the same inputs and the same (local) teacher
                theta = rng.uniform(0, 2 * np.pi, (max(ps) + num_test, d))
                k_local = local_kernel(theta, s=s, patch=PATCH)
                local[:, r] = regression_errors(k_local, k_local, ps, num_test)
                fc[:, r] = regression_errors(local_kernel(theta, s=d, patch=PATCH), k_local, ps, num_test)
            errors[("local", d)], errors[("fc", d)] = local, fc
        theory = {}
        for d in dims:
            eta, mult = local_spectrum(s, d, grid, PATCH)
            theory[d] = kernel_learning_curve(eta, eta, np.array(ps, float), degeneracies=mult).E_g
    checks, notes = [], []
    fit = {k: slope_with_stderr(ps, v) for k, v in errors.items()}
    beta = {k: (-sl, se) for k, (sl, se) in fit.items()}
    th_beta = {d: -np.polyfit(np.log(ps), np.log(theory[d]), 1)[0] for d in dims}
    for d in dims:
        b, se = beta[("local", d)]
        checks.append(_exponent_check(f"local exponent d={d} (vs spectral theory)", b, se, th_beta[d],
                                      (ALPHA / s - ALPHA / d) / 2))
    (b8, se8), (b16, se16) = beta[("local", dims[0])], beta[("local", dims[1])]
    se_diff = math.hypot(se8, se16)
    checks.append(Check(f"local exponent d={dims[1]} minus d={dims[0]}", b16 - b8, 0.0,
                        max(SAME_BAND, SIGMAS * se_diff),
                        f"the issue's band {SAME_BAND} (exponents equal up to pre-asymptotic drift) or {SIGMAS:g} "
                        f"standard errors of the difference (se {se_diff:.2g}); resolved when {SIGMAS:g} se <= "
                        f"{SAME_BAND}", stderr=se_diff, resolution=SAME_BAND))
    for d in dims:
        bl, sel = beta[("local", d)]
        bf, sef = beta[("fc", d)]
        ratio = bl / bf if bf > 0 else math.inf
        se_r = abs(ratio) * math.hypot(sel / bl, sef / bf) if bf > 0 and bl > 0 else math.inf
        checks.append(Check(f"local / FC exponent ratio d={d}", ratio, RATIO, 0.0,
                            f"the issue's bound: more than {RATIO:g}x (predicted d/s = {d / s:g}); resolved when "
                            f"{SIGMAS:g} se (delta method, se {se_r:.2g}, the two fits taken as independent though both "
                            f"students see the same input draws) <= d/s - {RATIO:g}, the gap between the predicted "
                            f"ratio and the bound", kind="at_least", stderr=se_r, resolution=d / s - RATIO))
    for d in dims:
        b, se = beta[("local", d)]
        checks.append(Check(f"local exponent d={d} (asymptotic alpha/s)", b, ALPHA / s, max(0.15, SIGMAS * se),
                            "reported: the asymptotic exponent alpha_t/s of Favero et al.; at these P the curve is "
                            "pre-asymptotic (the spectral-theory check above is the verdict)", stderr=se,
                            in_verdict=False))
        b, se = beta[("fc", d)]
        checks.append(Check(f"FC exponent d={d} (asymptotic alpha/d)", b, ALPHA / d, max(0.15, SIGMAS * se),
                            "reported: the asymptotic FC exponent alpha_t/d (Spigler et al. 2020); the FC spectrum "
                            "on T^d is not computed here, so no finite-P theory", stderr=se, in_verdict=False))
    for c in checks:
        if c.in_verdict and not c.resolved:
            notes.append(f"'{c.name}' is not resolved by {trials} input draws: its verdict is 'unresolved'.")
    for d in dims:
        c = next(c for c in checks if c.name == f"local / FC exponent ratio d={d}")
        if not c.passed:
            notes.append(f"At d = {d} the local/FC exponent ratio over P = {ps[0]}-{ps[-1]} is {c.measured:.2f}, not "
                         f"above {RATIO:g} (FC exponent {beta[('fc', d)][0]:.3f} against its asymptotic alpha/d = "
                         f"{ALPHA / d:.3g}).")
    notes.append("At these sample sizes the learning curves are pre-asymptotic: the local exponents measured over "
                 f"P = {ps[0]}-{ps[-1]} ({beta[('local', dims[0])][0]:.2f} at d = {dims[0]}, "
                 f"{beta[('local', dims[1])][0]:.2f} at d = {dims[1]}) are below the asymptotic alpha_t/s = "
                 f"{ALPHA / s:g} and equal to the spectral theory's at the same P (the verdict); the FC exponents "
                 f"({beta[('fc', dims[0])][0]:.3f}, {beta[('fc', dims[1])][0]:.3f}) are above alpha_t/d "
                 f"({ALPHA / dims[0]:.3g}, {ALPHA / dims[1]:.3g}) and have no finite-P theory here (the FC spectrum "
                 "on T^d would need an FFT on grid^d points).")
    setting = (f"Inputs on the torus T^d (d = {dims[0]}, {dims[1]}; each angle a 2-channel pixel (cos, sin)); "
               f"teacher: a GP with the local kernel of filter size t = {s} built from Laplace patch kernels "
               f"exp(-|x_i - y_i|) (alpha_t = 1); students: ridgeless regression with the same local kernel and "
               f"with the fully connected Laplace kernel exp(-|x - y|) (one patch of size d), on the same inputs. "
               f"E_g is averaged over teachers in closed form on {num_test} test points, {trials} draws of the "
               f"inputs, P = {ps[0]}-{ps[-1]}. The paper uses inputs on the hypercube [0, 1]^d (the torus here "
               f"makes the local kernel's spectrum exact), Laplace and NTK patch kernels, and P up to ~10^4 with "
               f"128 realizations. The relu-NTK patch (the NTK of a one-hidden-layer convolution, patch='relu_ntk') "
               f"is in the module but not used here: its FC version's spectrum comes in shells of 2d and ~2d^2 modes, "
               f"and over P = 256-1,024 its exponent on the local relu-NTK teacher (0.40 at d = 8, 0.59 at d = 16, "
               f"one run of 3 draws) is far above alpha/d, so the local/FC ratio was 1.45 and 1.14.")
    data = {"curves": {"p": np.array(ps), "dims": list(dims), "s": s,
                       **{f"{k}_{d}": v for (k, d), v in errors.items()},
                       **{f"theory_local_{d}": theory[d] for d in dims}},
            "exponents": {"dims": list(dims), "local": [beta[("local", d)][0] for d in dims],
                          "local_se": [beta[("local", d)][1] for d in dims],
                          "fc": [beta[("fc", d)][0] for d in dims], "fc_se": [beta[("fc", d)][1] for d in dims],
                          "theory_local": [th_beta[d] for d in dims], "asymptotic_local": ALPHA / s,
                          "asymptotic_fc": [ALPHA / d for d in dims]}}
    return Reproduction("favero_2021_locality", REFERENCE, CLAIM, setting, checks, data, device, precision, fast, key,
                        {"s": s, "dims": list(dims), "p": ps, "num_test": num_test, "trials": trials, "grid": grid},
                        notes)
