"""The layer base class and the graph module that wires layers together.

A layer type is one class: its fields are the spec keys, `out_shape` threads shapes (and turns shape
mistakes into spec errors), and `apply` builds the Flax (linen) submodules inside the network's compact
`__call__`. Shapes never include the batch dimension.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Optional, get_args

from pydantic import ConfigDict, Field

from nnctl.activations import ActivationRef
from nnctl.initializers import InitRef
from nnctl.registry import Registry, Strict

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """A layer cannot take the shape it is given; the message says why and how to fix it."""


class LayerSpec(Strict):
    """Keys every layer accepts."""

    # Each layer class builds its pydantic schema when first used (see nnctl.layers._ByType).
    model_config = ConfigDict(defer_build=True)

    name: Optional[str] = Field(None, description="layer name (default <type>_<index>); used in parameter paths")
    inputs: Optional[list[str]] = Field(
        None,
        min_length=1,
        description="names of the layers feeding this one (default: the previous layer; the model input is `input`)",
    )
    activation: Optional[ActivationRef] = Field(None, description="activation applied to the layer's output")
    trainable: bool = Field(True, description="false: the layer's parameters are not updated (frozen)")

    if TYPE_CHECKING:
        # Every registered layer class declares `type` as a pydantic field (a Literal of its names); the
        # base class must not, or pydantic would add it here too.
        type: str

    n_inputs: ClassVar[int | None] = 1  # None: any number >= 2 (merge layers)
    has_params: ClassVar[bool] = False
    # True for layers whose backward pass runs several times slower inside `lax.scan` on XLA:CPU
    # (convolutions, windowed pooling): a model with one trains with a per-step loop (`needs_step_loop`).
    slow_in_scan: ClassVar[bool] = False
    # Masks of padded sequence steps (`masking`, `embedding` with `mask_zero`): a layer that keeps the steps
    # one for one passes its input's mask on (`keeps_mask`); a layer with `takes_mask` receives it in
    # `apply_masked`; any other layer drops it. See `nnctl.layers.graph.mask_flow`.
    keeps_mask: ClassVar[bool] = False
    takes_mask: ClassVar[bool] = False
    # Fractions read as inputs of the compiled programs (`nnctl.app.hyper`), as `nnctl.rate.Rate` inside a
    # trace: changing them reuses the compiled program. A zero stays compiled in (it removes the layer's work).
    runtime: ClassVar[tuple[str, ...]] = ()

    # --- shape threading ---------------------------------------------------------------------------
    def out_shape(self, shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def warnings(self, shapes: list[Shape]) -> list[str]:
        """Shape remarks that are legal but probably unintended (e.g. a conv that drops a row)."""
        return []

    # --- building ----------------------------------------------------------------------------------
    def apply(self, xs: list[Any], train: bool) -> Any:
        """Output before `activation`, computed inside the parent module's compact call."""
        raise NotImplementedError

    def children(self) -> list[LayerSpec]:
        return []

    # --- masks of padded steps -----------------------------------------------------------------------
    def makes_mask(self) -> bool:
        """True for a layer that computes a mask (1: a real step, 0: padding) from its input."""
        return False

    def passes_mask(self) -> bool:
        """True when the output's steps are the input's, so the input's mask holds for the output too."""
        return self.keeps_mask

    def mask_of(self, x: Any) -> Any:
        """The (batch, steps) boolean mask this layer makes from its input (`makes_mask` layers only)."""
        raise NotImplementedError

    def apply_masked(self, xs: list[Any], train: bool, mask: Any) -> Any:
        """`apply` with the input's (batch, steps) mask (`takes_mask` layers only)."""
        raise NotImplementedError


class WindowMixin:
    """For layers whose `_geometry(shape)` returns (output shape, warnings, ...): convolutions, pooling."""

    if TYPE_CHECKING:

        def _geometry(self, shape: Shape) -> tuple[Any, ...]: ...

    def out_shape(self, shapes):
        return self._geometry(shapes[0])[0]

    def warnings(self, shapes):
        return self._geometry(shapes[0])[1]


LAYERS: Registry[type[LayerSpec]] = Registry("layer type")


def register_layer(cls: type[LayerSpec]) -> type[LayerSpec]:
    (name, *aliases) = get_args(cls.model_fields["type"].annotation)  # the names in `type: Literal[...]`
    LAYERS.register(name, *aliases)(cls)
    return cls


class KernelMixin(Strict):
    """Keys of layers with a weight kernel and a bias."""

    kernel_init: InitRef = Field("glorot_uniform", description="initializer of the kernel")
    bias_init: InitRef = Field("zeros", description="initializer of the bias")
    use_bias: bool = True
    kernel_regularizer: Optional[Regularizer] = Field(
        None, description="L1/L2 penalty on the kernel, added to the loss"
    )

    has_params: ClassVar[bool] = True


class Regularizer(Strict):
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)


KernelMixin.model_rebuild()


def vector_in(layer: LayerSpec, shape: Shape, what: str = "a vector") -> int:
    if len(shape) != 1:
        raise ShapeError(f"({layer.type}) expects {what}, got {shape}: add a flatten layer before it")
    return shape[0]


def frozen_layer_names(layers: list, prefix: str = "") -> list[str]:
    """Paths of the layers (and nested layers) with `trainable: false`, as parameter-path prefixes."""
    out = []
    for layer in layers:
        path = f"{prefix}{layer.name}"
        if not layer.trainable:
            out.append(path)
        out += frozen_layer_names(layer.children(), prefix=f"{path}/")
    return out


def kernel_regularizers(layers: list, prefix: str = "") -> list[tuple[str, float, float]]:
    """(layer path, l1, l2) of every layer (and nested layer) with a non-zero `kernel_regularizer`."""
    out = []
    for layer in layers:
        reg = getattr(layer, "kernel_regularizer", None)
        if reg is not None and (reg.l1 or reg.l2):
            out.append((f"{prefix}{layer.name}", reg.l1, reg.l2))
        out += kernel_regularizers(layer.children(), f"{prefix}{layer.name}/")
    return out


def needs_step_loop(layers) -> bool:
    """True when any layer (or nested layer) has `slow_in_scan`: on XLA:CPU such a model trains with one
    compiled step per batch rather than a whole epoch fused into `lax.scan`."""
    return any(layer.slow_in_scan or needs_step_loop(layer.children()) for layer in layers)
