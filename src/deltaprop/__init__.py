"""deltaprop: multilayer perceptrons with backpropagation derived by hand, in NumPy."""

__version__ = "0.1.0"
