"""Fully connected networks in plain JAX, with an explicit parametrization.

``MLP(depth, width, activation, w_std, b_std, parametrization, out_dim)`` has ``depth``
hidden layers of ``width`` units and a linear readout. Parameters are a list of
``{"W": (fan_in, fan_out), "b": (fan_out,)}`` dicts, one per layer (a pytree); with
``b_std=None`` there are no biases at all (as in neural-tangents).

Parametrizations (layer l maps a^{l-1} of size fan_in to the pre-activation h^l):

* ``"ntk"`` (Jacot et al. 2018; neural-tangents' ``Dense(W_std, b_std, parameterization="ntk")``):
  W, b ~ N(0, 1) and h^l = (w_std / sqrt(fan_in)) a^{l-1} W + b_std b.
* ``"standard"``: W ~ N(0, w_std^2 / fan_in), b ~ N(0, b_std^2) and h^l = a^{l-1} W + b.
  Same function distribution as "ntk"; different gradients (so a different NTK).
* ``"mup"`` (maximal update parametrization, Yang & Hu 2021; Yang et al. 2022, Table 3):
  h^l = a^{l-1} W + b with input and hidden weights ~ N(0, w_std^2 / fan_in), readout
  weights ~ N(0, w_std^2 / fan_in^2), biases ~ N(0, b_std^2); the width dependence of the
  learning rate sits in :meth:`MLP.lr_multipliers` (SGD: fan_out for input weights and all
  biases, 1 for hidden weights, 1/fan_in for the readout; Adam: 1, 1/fan_in, 1/fan_in).

The input layer's fan_in is the data dimension d; every pre-activation of layer 1 has
variance w_std^2 |x|^2 / d + b_std^2 at initialization in all three parametrizations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from workbench.validation import (
    check_choice,
    check_finite,
    check_matrix_rank2,
    check_positive_int,
    check_real,
)
from workbench.validation import check_allocation, check_params_finite
from workbench._compat import is_prng_key, keyword_only_since

__all__ = ["ACTIVATIONS", "MLP", "PARAMETRIZATIONS", "activation_name", "get_activation", "sample_functions"]

Params = list[dict[str, jax.Array]]
Activation = Callable[[jax.Array], jax.Array]

PARAMETRIZATIONS = ("ntk", "standard", "mup")


def _relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, 0.0)


def _erf(x: jax.Array) -> jax.Array:
    return jax.scipy.special.erf(x)


def _gelu(x: jax.Array) -> jax.Array:
    # Exact GELU x * Phi(x) (not the tanh approximation): the analytic kernels integrate this form.
    return jax.nn.gelu(x, approximate=False)


def _identity(x: jax.Array) -> jax.Array:
    return x


ACTIVATIONS: dict[str, Activation] = {
    "relu": _relu,
    "erf": _erf,
    "tanh": jnp.tanh,
    "gelu": _gelu,
    "identity": _identity,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
    "sin": jnp.sin,
}


def get_activation(activation: str | Activation) -> Activation:
    """The elementwise function for a name in :data:`ACTIVATIONS`, or a user callable as is."""
    if callable(activation):
        return activation
    if isinstance(activation, str):
        check_choice("activation", activation, tuple(ACTIVATIONS))
        return ACTIVATIONS[activation]
    raise TypeError(
        f"activation must be one of {tuple(ACTIVATIONS)} or an elementwise JAX function, got {activation!r}"
    )


def activation_name(activation: str | Activation) -> str:
    """A printable name: the registry key, or the callable's ``__name__``."""
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", repr(activation))


@dataclasses.dataclass(frozen=True)
class MLP:
    """A fully connected network: ``depth`` hidden layers of ``width`` units and a linear readout.

    Args:
      depth: number of hidden layers (>= 0; depth 0 is a linear model).
      width: hidden-layer width (>= 1).
      activation: a name in :data:`ACTIVATIONS` or any elementwise JAX function.
      w_std: weight standard deviation scale sigma_w (the kernel's w_std^2 = sigma_w^2).
      b_std: bias standard deviation sigma_b, or ``None`` for no bias parameters.
      parametrization: ``"ntk"``, ``"standard"`` or ``"mup"`` (see the module docstring).
      out_dim: number of outputs (>= 1).

    Example:
      >>> import jax
      >>> net = MLP(depth=2, width=64, activation="relu", w_std=2**0.5)
      >>> params = net.init(jax.random.PRNGKey(0), in_dim=3)
      >>> net.apply(params, jax.numpy.ones((5, 3))).shape
      (5, 1)
    """

    depth: int
    width: int
    activation: str | Activation = "relu"
    w_std: float = 1.0
    b_std: float | None = 0.0
    parametrization: str = "ntk"
    out_dim: int = 1

    def __post_init__(self) -> None:
        check_positive_int("depth", self.depth, minimum=0)
        check_positive_int("width", self.width, minimum=1)
        check_positive_int("out_dim", self.out_dim, minimum=1)
        get_activation(self.activation)
        check_real("w_std", self.w_std, nonnegative=True)
        if self.b_std is not None:
            check_real("b_std", self.b_std, nonnegative=True)
        check_choice("parametrization", self.parametrization, PARAMETRIZATIONS)

    # ------------------------------------------------------------------ structure
    @property
    def phi(self) -> Activation:
        """The activation function."""
        return get_activation(self.activation)

    @property
    def has_bias(self) -> bool:
        return self.b_std is not None

    def layer_sizes(self, in_dim: int) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of each layer, input layer first, readout last."""
        sizes = [in_dim] + [self.width] * self.depth + [self.out_dim]
        return list(zip(sizes[:-1], sizes[1:]))

    def num_params(self, in_dim: int) -> int:
        """Number of trainable scalars."""
        return sum(fi * fo + (fo if self.has_bias else 0) for fi, fo in self.layer_sizes(in_dim))

    def describe(self) -> str:
        b = "no bias" if self.b_std is None else f"b_std={self.b_std:g}"
        return (
            f"MLP(depth={self.depth}, width={self.width}, {activation_name(self.activation)}, "
            f"w_std={self.w_std:g}, {b}, {self.parametrization}, out_dim={self.out_dim})"
        )

    # ------------------------------------------------------------------ init
    def _weight_init_std(self, layer: int, fan_in: int) -> float:
        """Standard deviation of the stored weight W of ``layer`` (0-based)."""
        if self.parametrization == "ntk":
            return 1.0
        readout = layer == self.depth
        if self.parametrization == "mup" and readout:
            return self.w_std / fan_in
        return self.w_std / math.sqrt(fan_in)

    def _bias_init_std(self) -> float:
        return 1.0 if self.parametrization == "ntk" else float(self.b_std or 0.0)

    def init(self, key: jax.Array, in_dim: int, dtype: Any = None) -> Params:
        """Draw the parameters for inputs of dimension ``in_dim`` (deterministic in ``key``)."""
        check_positive_int("in_dim", in_dim, minimum=1)
        if dtype is None:
            dtype = jnp.result_type(float)
        check_allocation("width/in_dim", self.num_params(in_dim) * jnp.dtype(dtype).itemsize,
                         f"the {self.num_params(in_dim):,} parameters of {self.describe()} for in_dim={in_dim}")
        keys = jax.random.split(key, 2 * (self.depth + 1))
        params: Params = []
        for layer, (fan_in, fan_out) in enumerate(self.layer_sizes(in_dim)):
            w = self._weight_init_std(layer, fan_in) * jax.random.normal(keys[2 * layer], (fan_in, fan_out), dtype)
            p = {"W": w}
            if self.has_bias:
                p["b"] = self._bias_init_std() * jax.random.normal(keys[2 * layer + 1], (fan_out,), dtype)
            params.append(p)
        return params

    # ------------------------------------------------------------------ forward
    def _check_params(self, params: Params) -> int:
        if not isinstance(params, (list, tuple)) or len(params) != self.depth + 1:
            raise ValueError(
                f"params must be a list of {self.depth + 1} layer dicts for this {self.describe()}, "
                f"got {type(params).__name__} of length {len(params) if hasattr(params, '__len__') else '?'}"
            )
        return int(np.shape(params[0]["W"])[0])

    def _layer(self, p: dict[str, jax.Array], a: jax.Array) -> jax.Array:
        fan_in = a.shape[-1]
        if self.parametrization == "ntk":
            h = (self.w_std / math.sqrt(fan_in)) * (a @ p["W"])
            if self.has_bias:
                h = h + self.b_std * p["b"][None, :]
        else:
            h = a @ p["W"]
            if self.has_bias:
                h = h + p["b"][None, :]
        return h

    def preactivations(self, params: Params, x: jax.Array) -> list[jax.Array]:
        """Pre-activations h^1, ..., h^depth and the output h^{depth+1}, each of shape (n, fan_out)."""
        in_dim = self._check_params(params)
        check_matrix_rank2("x", x, features=in_dim)
        check_finite("x", x)
        hs = []
        a = x
        for layer, p in enumerate(params):
            h = self._layer(p, a)
            hs.append(h)
            if layer < self.depth:
                a = self.phi(h)
        return hs

    def apply(self, params: Params, x: jax.Array, *, check: bool = True) -> jax.Array:
        """Network output of shape (n, out_dim) for inputs ``x`` of shape (n, in_dim).

        ``check=True`` (default): parameters holding concrete values (outside ``jit``) are refused if any entry
        is NaN or inf, naming the layer (a NaN weight would otherwise make every output NaN silently). Inside
        ``jit``/``grad`` the parameters are tracers and the check is skipped; ``check=False`` skips it outside
        too (it copies the parameters to the host once per call).
        """
        if check:
            check_params_finite("params", params)
        return self.preactivations(params, x)[-1]

    def apply_single(self, params: Params, x: jax.Array) -> jax.Array:
        """Output of shape (out_dim,) for one input of shape (in_dim,); batch it with ``jax.vmap``."""
        if np.ndim(x) != 1:
            raise ValueError(f"x must be a single input of shape (in_dim,), got shape {np.shape(x)}")
        return self.apply(params, x[None, :])[0]

    # ------------------------------------------------------------------ training
    def lr_multipliers(self, in_dim: int, optimizer: str = "sgd") -> Params:
        """Per-parameter learning-rate multipliers, a pytree shaped like ``params`` (scalars).

        All ones for ``"ntk"`` and ``"standard"``. For ``"mup"`` (Yang et al. 2022, Table 3,
        biases treated as input weights of fan_in 1): SGD: fan_out for input weights and all
        biases, 1 for hidden weights, 1/fan_in for readout weights; Adam: 1 for input
        weights and biases, 1/fan_in for hidden and readout weights.
        """
        check_positive_int("in_dim", in_dim, minimum=1)
        check_choice("optimizer", optimizer, ("sgd", "adam"))
        out: Params = []
        for layer, (fan_in, fan_out) in enumerate(self.layer_sizes(in_dim)):
            if self.parametrization != "mup":
                mw, mb = 1.0, 1.0
            elif optimizer == "sgd":
                mw = float(fan_out) if layer == 0 else (1.0 / fan_in if layer == self.depth else 1.0)
                mb = float(fan_out)
            else:
                mw = 1.0 if layer == 0 else 1.0 / fan_in
                mb = 1.0
            m = {"W": jnp.asarray(mw)}
            if self.has_bias:
                m["b"] = jnp.asarray(mb)
            out.append(m)
        return out


def _old_sample_functions_call(a: tuple) -> tuple | None:
    """The order before this release, (net, key, x, num_draws), mapped to the current one."""
    return ((a[0], a[2], a[3]), {"key": a[1]}) if len(a) == 4 and is_prng_key(a[1]) else None


@keyword_only_since(legacy_order=_old_sample_functions_call)
def sample_functions(net: MLP, x: jax.Array, num_draws: int, *, key: jax.Array) -> jax.Array:
    """Outputs of ``num_draws`` independent initializations of ``net`` at ``x``, shape (num_draws, n, out_dim).

    Draw i uses ``jax.random.split(key, num_draws)[i]``; the draws are batched with ``jax.vmap``.
    """
    check_positive_int("num_draws", num_draws)
    check_matrix_rank2("x", x)
    check_finite("x", x)
    keys = jax.random.split(key, num_draws)
    in_dim = int(np.shape(x)[1])
    return jax.vmap(lambda k: net.apply(net.init(k, in_dim), x))(keys)
