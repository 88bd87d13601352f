"""nnctl: train neural networks from YAML specs (Flax + Optax + XLA).

Importing the package is cheap: JAX is imported only by the modules that compute.
"""

__version__ = "0.1.0"
