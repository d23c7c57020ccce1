"""Linear algebra shared by kernels and Hessians.

``linalg.dense``: symmetric eigendecomposition with input checks and kernel diagnostics.
``linalg.krylov``: matrix-free Lanczos eigenpairs, trace estimators, spectral densities.
"""

from workbench.linalg.krylov import bottom_eigenvalues as bottom_eigenvalues
from workbench.linalg.krylov import hutchinson_trace as hutchinson_trace
from workbench.linalg.krylov import slq_density as slq_density
from workbench.linalg.krylov import top_eigenvalues as top_eigenvalues
from workbench.linalg.dense import condition_number as condition_number
from workbench.linalg.dense import effective_rank as effective_rank
from workbench.linalg.dense import eigh as eigh
from workbench.linalg.dense import kernel_target_alignment as kernel_target_alignment
from workbench.linalg.dense import top_eigenpairs as top_eigenpairs
