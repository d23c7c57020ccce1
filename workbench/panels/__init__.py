"""One ipywidgets panel per notebook: each wires widgets to the computing layers and to ``plots``."""

__all__ = ["base", "dynamics", "figure", "hessian", "lr_batch", "ntk", "symbolic", "tour"]
