"""Matrix-free spectral tools for symmetric operators: Lanczos eigenpairs, trace estimators, SLQ densities.

Every function takes ``operator``, one of
* an object with ``.matvec(v)`` and ``.dim`` (e.g. :class:`workbench.hessian.CurvatureOperator`);
  if it also has ``.pure_matvec(v, *operands)`` and ``.operands``, the data travel as arguments of
  the compiled loop rather than as closure constants (no constant folding, compiled code reused);
* a pair ``(matvec, dim)`` with ``matvec`` a JAX-traceable function of a flat vector.

This module is the public face; the parts live in
* :mod:`workbench.linalg.operators`: normalization, batched products, shape and symmetry checks;
* :mod:`workbench.linalg.lanczos`: :func:`top_eigenvalues` / :func:`bottom_eigenvalues`, Lanczos with full
  reorthogonalization that stops as soon as the Ritz error bound min(r, r^2/gap) meets ``rtol``
  (Parlett, *The Symmetric Eigenvalue Problem*, 11.7), each result carrying its bounds and product count;
* :mod:`workbench.linalg.trace`: :func:`hutchinson_trace` (Hutchinson 1989, Hutch++ of Meyer, Musco,
  Musco & Woodruff 2021, XTrace of Epperly, Tropp & Webber 2024, or an automatic choice), batched
  through ``vmap``, with a standard error and an optional target standard error;
* :mod:`workbench.linalg.slq`: :func:`slq_density`, stochastic Lanczos quadrature (Golub & Meurant 2009;
  Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019 for Hessians): the spectral density
  (1/P) sum_i delta(x - lambda_i) as an average over probes of Gauss quadrature rules, broadened by a
  Gaussian of width ``sigma``, at a fixed Lanczos depth or one chosen adaptively (``rtol``).
"""

from __future__ import annotations

from workbench.linalg.lanczos import EIG_METHODS, Eigenpairs, bottom_eigenvalues, default_rtol, top_eigenvalues
from workbench.linalg.operators import LinearOperator, as_operator, difference
from workbench.linalg.slq import SpectralDensity, gaussian_broadening, slq_density
from workbench.linalg.trace import TRACE_METHODS, TraceEstimate, hutchinson_trace, squared_norms

__all__ = ["EIG_METHODS", "TRACE_METHODS", "Eigenpairs", "LinearOperator", "SpectralDensity", "TraceEstimate",
           "as_operator", "bottom_eigenvalues", "default_rtol", "difference", "gaussian_broadening",
           "hutchinson_trace", "slq_density", "squared_norms", "top_eigenvalues"]
