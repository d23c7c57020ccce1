"""Linear algebra shared by kernels and Hessians.

``linalg.dense``: symmetric eigendecomposition with input checks and kernel diagnostics.
``linalg.krylov``: matrix-free Lanczos eigenpairs, trace estimators, spectral densities.
Eigenpairs from either come as the one :class:`Eigenpairs` type, eigenvectors as rows (docs/conventions.md).
"""

from workbench.linalg.dense import check_psd as check_psd
from workbench.linalg.dense import condition_number as condition_number
from workbench.linalg.dense import effective_rank as effective_rank
from workbench.linalg.dense import eigenpairs as eigenpairs
from workbench.linalg.dense import eigh as eigh
from workbench.linalg.dense import eigvalsh as eigvalsh
from workbench.linalg.dense import kernel_target_alignment as kernel_target_alignment
from workbench.linalg.dense import top_eigenpairs as top_eigenpairs
from workbench.linalg.krylov import Eigenpairs as Eigenpairs
from workbench.linalg.krylov import SpectralDensity as SpectralDensity
from workbench.linalg.krylov import TraceEstimate as TraceEstimate
from workbench.linalg.krylov import bottom_eigenvalues as bottom_eigenvalues
from workbench.linalg.krylov import hutchinson_trace as hutchinson_trace
from workbench.linalg.krylov import slq_density as slq_density
from workbench.linalg.krylov import top_eigenvalues as top_eigenvalues

__all__ = ["Eigenpairs", "SpectralDensity", "TraceEstimate", "bottom_eigenvalues", "check_psd", "condition_number",
           "effective_rank", "eigenpairs", "eigh", "eigvalsh", "hutchinson_trace", "kernel_target_alignment",
           "slq_density", "top_eigenpairs", "top_eigenvalues"]
