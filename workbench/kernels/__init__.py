"""Kernels of neural networks: empirical (finite-width) NTK, infinite-width NNGP/NTK, sphere eigenvalues.

``kernels.empirical``: :func:`empirical_ntk` of any ``apply_fn(params, x)`` (Jacobian contraction,
NTK-vector products, structured MLP method), blocked and sharded.
``kernels.analytic``: :func:`infinite_kernels` of an :class:`~workbench.nets.MLP` (docs/theory.md#1-infinite-width-nngp-and-ntk-of-a-fully-connected-net).
``kernels.sphere``: Mercer eigenvalues of dot-product kernels on the sphere (Funk-Hecke).
"""

from workbench.kernels.analytic import Kernels as Kernels
from workbench.kernels.analytic import infinite_kernels as infinite_kernels
from workbench.kernels.empirical import empirical_ntk as empirical_ntk
from workbench.kernels.sphere import sphere_eigenvalues as sphere_eigenvalues
from workbench.kernels.sphere import sphere_multiplicities as sphere_multiplicities

__all__ = ["Kernels", "empirical_ntk", "infinite_kernels", "sphere_eigenvalues", "sphere_multiplicities"]
