"""Linear algebra shared by kernels and Hessians.

``linalg.dense``: symmetric eigendecomposition with input checks and kernel diagnostics.
``linalg.krylov``: matrix-free Lanczos eigenpairs, trace estimators, spectral densities.
"""
