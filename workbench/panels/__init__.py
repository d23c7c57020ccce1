"""One ipywidgets panel per notebook: each wires widgets to the computing layers and to ``plots``."""
