"""nnctl: train neural networks from YAML specs (Flax + Optax + XLA).

Importing the package is cheap: JAX is imported only by the modules that compute.
"""

__version__ = "0.1.0"

from nnctl import cpucfg as _cpucfg

_cpucfg.set_xla_flags()  # before JAX reads XLA_FLAGS (nnctl.cpucfg)
_cpucfg.keep_heap_top()  # before the process's first large allocations
