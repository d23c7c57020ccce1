"""Studies: experiments that combine building blocks and theories into the results a notebook plots.

One module per notebook topic; import the one you need (``from workbench.studies.ntk import width_convergence``).
"""

__all__ = ["architectures", "dynamics", "hessian", "lr_batch", "ntk", "partial", "symbolic", "tour"]
