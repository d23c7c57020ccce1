"""Scale mixtures of NNGPs (Lee, Yun, Yang, Lee, Lee & Ko 2022): an inverse-gamma prior on the last-layer
variance turns the infinite-width network into a Student-t process.

Network: a one-hidden-layer relu :class:`~workbench.nets.MLP` (NTK parametrization) whose readout layer
(weights and bias) is multiplied by sigma, with sigma^2 ~ InvGamma(alpha, beta) drawn once per network.
Given sigma the output is, at infinite width, GP(0, sigma^2 K) with K the NNGP
(:func:`workbench.kernels.analytic.infinite_kernels`); integrating sigma^2 out,

* the marginal at x is Student-t with nu = 2 alpha degrees of freedom and scale sqrt(beta K(x, x) / alpha);
* the joint on m inputs is multivariate t_nu(0, (beta/alpha) K), so the quadratic form
  Q = (alpha / beta) f^T K^{-1} f / m follows the F(m, nu) distribution (chi^2_m / m without the prior).

Finite width: given the first layer, the output is exactly Gaussian with variance
q = w_std^2 (1/n) sum_i phi_i^2 + b_std^2, which fluctuates over initializations with relative variance
v = Var q / (E q)^2 <= Var(phi^2) / (n E[phi^2]^2) = 5 / n for relu (E relu(z)^4 / E relu(z)^2 squared = 6).
A Gaussian scale mixture with relative variance v has a CDF within 0.069 v of the Gaussian's
(second-order expansion of E Phi(x / sqrt q) about q = E q: half of max_x |x (3 - x^2) phi(x) / 4|), so the
finite-width bias of a marginal's Kolmogorov-Smirnov distance is at most 0.35 / n. For the quadratic form
over m inputs the conditional covariance fluctuates in each of the m whitened directions; the allowance used
is m times the one-dimensional bound (one scale mixture per direction, perturbing one of m chi^2 terms moves
the CDF less than perturbing a single one; the covariances between directions are neglected, so this is an
estimate, not a proof; at width 512 and 20,000 draws the plain network's distance was 0.008 and 0.013 for two
seeds against a 99% threshold of 0.0115, at width 4096 0.005 for both: full mode uses width 1024).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from workbench.kernels.analytic import infinite_kernels
from workbench.nets import MLP
from workbench.papers._common import verification
from workbench.papers.base import SIGMAS, Check, Reproduction
from workbench.validation import check_positive_int, check_real

REFERENCE = ("Lee, Yun, Yang, Lee, Lee & Ko 2022, Scale Mixtures of Neural Network Gaussian Processes, ICLR "
             "(arXiv:2107.01408)")
CLAIM = ("Putting an inverse-gamma prior on the variance of the last layer turns the NNGP of a wide network "
         "into a Student-t process (heavy-tailed outputs with 2 alpha degrees of freedom), while the plain "
         "network stays Gaussian.")

#: the CDF bound of a Gaussian scale mixture per unit relative variance (module docstring)
MIXTURE_CDF_CONSTANT = 0.069
#: Var(relu(z)^2) / E[relu(z)^2]^2 for Gaussian z (E relu^4 = 3 s^4 / 2, E relu^2 = s^2 / 2)
RELU_FOURTH_RATIO = 5.0
#: networks drawn at once by :func:`sample_outputs`
DRAW_CHUNK = 2500
#: significance level of the Kolmogorov-Smirnov thresholds
KS_LEVEL = 0.01


def student_t_marginal(k_xx: float, alpha: float, beta: float) -> scipy.stats.rv_continuous:
    """The marginal of the scale mixture at one input: t with 2 alpha dof, scale sqrt(beta k_xx / alpha)."""
    k_xx = check_real("k_xx", k_xx, positive=True)
    alpha = check_real("alpha", alpha, positive=True)
    beta = check_real("beta", beta, positive=True)
    return scipy.stats.t(df=2 * alpha, scale=math.sqrt(beta * k_xx / alpha))


def quadratic_form(f: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """f^T K^{-1} f / m for each row of ``f`` (draws, m): chi^2_m / m for GP(0, K) draws."""
    f = np.asarray(f, float)
    chol = np.linalg.cholesky(kernel)
    z = np.linalg.solve(chol, f.T)
    return np.sum(z * z, axis=0) / f.shape[1]


def quadratic_form_law(m: int, alpha: float | None = None, beta: float | None = None):
    """Law of Q = f^T K^{-1} f / m: chi^2_m / m for the plain network; with the prior, Q alpha / beta ~ F(m, 2
    alpha), i.e. Q ~ (beta / alpha) F(m, 2 alpha)."""
    m = check_positive_int("m", m)
    if alpha is None:
        return scipy.stats.chi2(df=m, scale=1.0 / m)
    return scipy.stats.f(dfn=m, dfd=2 * alpha, scale=beta / alpha)


def ks_threshold(n: int, level: float = KS_LEVEL) -> float:
    """The (1 - level)-quantile of the exact one-sample Kolmogorov-Smirnov statistic for n draws."""
    return float(scipy.stats.kstwo.ppf(1 - level, check_positive_int("n", n)))


def finite_width_allowance(width: int) -> float:
    """Bound on the CDF distance between a width-``width`` relu network's output and its Gaussian limit."""
    return MIXTURE_CDF_CONSTANT * RELU_FOURTH_RATIO / check_positive_int("width", width)


def _batched_params(net: MLP, in_dim: int, num_draws: int, rng: np.random.Generator, scale: np.ndarray) -> list:
    """``num_draws`` parameter sets of an NTK-parametrized ``net`` (every stored weight and bias N(0, 1), as
    ``net.init`` draws them), stacked on a leading axis; the readout layer multiplied by ``scale`` per draw.
    Drawn with numpy: compiling JAX's threefry sampler under vmap costs seconds, the draws themselves do not."""
    params = []
    for layer, (fan_in, fan_out) in enumerate(net.layer_sizes(in_dim)):
        s = scale[:, None, None] if layer == net.depth else 1.0
        p = {"W": rng.standard_normal((num_draws, fan_in, fan_out)) * s}
        if net.has_bias:
            p["b"] = rng.standard_normal((num_draws, fan_out)) * (s[:, :, 0] if layer == net.depth else 1.0)
        params.append(p)
    return params


def sample_outputs(net: MLP, x, num_draws: int, *, key: int, alpha: float | None = None,
                   beta: float | None = None) -> np.ndarray:
    """Outputs (num_draws, m) of independently initialized networks; with ``alpha, beta`` each network's readout
    (weights and bias) is scaled by sigma, sigma^2 ~ InvGamma(alpha, beta) (scipy's invgamma(alpha, scale=beta)).
    ``net`` must use the NTK parametrization (N(0, 1) parameters, scales in the forward pass)."""
    if not isinstance(net, MLP) or net.parametrization != "ntk" or net.out_dim != 1:
        raise ValueError("net must be a workbench.nets.MLP with parametrization='ntk' and out_dim=1")
    num_draws = check_positive_int("num_draws", num_draws)
    x = np.asarray(x, float)
    rng = np.random.default_rng(key)
    if alpha is None:
        scale = np.ones(num_draws)
    else:
        alpha = check_real("alpha", alpha, positive=True)
        beta = check_real("beta", beta, positive=True)
        scale = np.sqrt(scipy.stats.invgamma(alpha, scale=beta).rvs(num_draws, random_state=rng))
    out = []
    for start in range(0, num_draws, DRAW_CHUNK):  # chunks keep the stacked parameters near 100 MB
        params = _batched_params(net, x.shape[1], min(DRAW_CHUNK, num_draws - start), rng,
                                 scale[start:start + DRAW_CHUNK])
        out.append(np.asarray(jax.vmap(lambda p: net.apply(p, jnp.asarray(x), check=False)[:, 0])(params)))
    return np.concatenate(out)


def _fit_dof(draws: np.ndarray, scale: float) -> tuple[float, float]:
    """Maximum-likelihood degrees of freedom of a centred t with known scale, and its standard error from
    the observed Fisher information (numerical second derivative of the log-likelihood in nu)."""
    import scipy.optimize

    def nll(nu: float) -> float:
        return -float(np.sum(scipy.stats.t.logpdf(draws, df=nu, scale=scale)))

    res = scipy.optimize.minimize_scalar(lambda u: nll(math.exp(u)), bounds=(math.log(0.3), math.log(300.0)),
                                         method="bounded")
    nu = math.exp(res.x)
    h = 1e-3 * nu
    info = (nll(nu + h) - 2 * nll(nu) + nll(nu - h)) / h ** 2
    return nu, (1.0 / math.sqrt(info) if info > 0 else math.inf)


def run(*, fast: bool, key: int) -> Reproduction:
    alpha, beta = 1.5, 1.5  # nu = 3: finite variance, heavy tails; scale^2 = K
    width = 512 if fast else 1024
    n = 2000 if fast else 20000
    m = 4
    net = MLP(depth=1, width=width, activation="relu", w_std=math.sqrt(2.0), b_std=0.1)
    with verification() as (device, precision):
        x = jax.random.normal(jax.random.PRNGKey(key + 1), (m, 3))
        x = x / jnp.linalg.norm(x, axis=1, keepdims=True)
        kernel = np.asarray(infinite_kernels(net, x).nngp)
        mixed = sample_outputs(net, x, n, key=key, alpha=alpha, beta=beta)
        plain = sample_outputs(net, x, n, key=key + 7)
    t_law = student_t_marginal(kernel[0, 0], alpha, beta)
    nu = 2 * alpha
    gauss_matched = scipy.stats.norm(scale=math.sqrt(t_law.var()))
    crit = ks_threshold(n)
    allow = finite_width_allowance(width)
    tol, tol_q = crit + allow, crit + m * allow
    why = (f"the {1 - KS_LEVEL:g}-quantile {crit:.3g} of the exact KS statistic for {n} draws plus the finite-width "
           f"bound {allow:.1g} (0.069 x 5 / width, module docstring)")
    why_q = (f"the {1 - KS_LEVEL:g}-quantile {crit:.3g} of the exact KS statistic for {n} draws plus {m} times the "
             f"one-dimensional finite-width bound, {m * allow:.1g} (an estimate, module docstring)")
    ks_t = scipy.stats.kstest(mixed[:, 0], t_law.cdf).statistic
    ks_f = scipy.stats.kstest(quadratic_form(mixed, kernel), quadratic_form_law(m, alpha, beta).cdf).statistic
    ks_g = scipy.stats.kstest(plain[:, 0], scipy.stats.norm(scale=math.sqrt(kernel[0, 0])).cdf).statistic
    ks_chi = scipy.stats.kstest(quadratic_form(plain, kernel), quadratic_form_law(m).cdf).statistic
    ks_power = scipy.stats.kstest(mixed[:, 0], gauss_matched.cdf).statistic
    dof, dof_se = _fit_dof(mixed[:, 0], float(t_law.kwds["scale"]))
    checks = [
        Check("KS(prior network output, Student-t)", ks_t, 0.0, tol, why, kind="at_most"),
        Check(f"KS(prior network f^T K^-1 f / {m}, scaled F({m}, {nu:g}))", ks_f, 0.0, tol_q, why_q, kind="at_most"),
        Check("KS(plain network output, Gaussian NNGP)", ks_g, 0.0, tol, why, kind="at_most"),
        Check(f"KS(plain network f^T K^-1 f / {m}, chi^2_{m} / {m})", ks_chi, 0.0, tol_q, why_q, kind="at_most"),
        Check("KS(prior network output, Gaussian of equal variance)", ks_power, crit, 0.0, kind="at_least",
              reason=f"power: the heavy tails must be visible at this sample size, i.e. the distance to the Gaussian "
                     f"with the t's variance must exceed the KS threshold {crit:.3g} (population distance 0.087)"),
        Check("fitted degrees of freedom of the prior network's output", dof, nu, SIGMAS * dof_se, stderr=dof_se,
              resolution=nu / 2,
              reason=f"{SIGMAS:g} standard errors of the maximum-likelihood nu (observed Fisher information, {n} "
                     f"draws, scale fixed at its prediction); resolved when 3 se <= nu/2 (tells nu = 3 from "
                     "nu >= 4.5, i.e. from the near-Gaussian)"),
    ]
    grid = np.linspace(-6, 6, 241) * math.sqrt(kernel[0, 0])
    data = {"marginal": {"mixed": mixed[:, 0], "plain": plain[:, 0], "grid": grid, "t_pdf": t_law.pdf(grid),
                         "gauss_pdf": scipy.stats.norm(scale=math.sqrt(kernel[0, 0])).pdf(grid),
                         "nu": nu, "scale": float(t_law.kwds["scale"]), "k_xx": float(kernel[0, 0])}}
    setting = (f"One-hidden-layer relu MLP of width {width} (NTK parametrization, w_std^2 = 2, b_std = 0.1) on {m} "
               f"points of the sphere S^2; {n} independent initializations with and without the prior "
               f"sigma^2 ~ InvGamma({alpha:g}, {beta:g}) on the readout layer. The paper also treats deep and "
               "convolutional architectures, posterior inference and other mixing laws; here the prior's output "
               "law only, at finite width (the bound on the finite-width bias enters every tolerance).")
    return Reproduction("scale_mixtures_nngp", REFERENCE, CLAIM, setting, checks, data, device, precision, fast, key,
                        {"width": width, "draws": n, "alpha": alpha, "beta": beta, "inputs": m})
