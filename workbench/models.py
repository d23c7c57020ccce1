"""Your own model in every study: one place that knows the frameworks.

:func:`functional` turns a model written in Flax (NNX or Linen), Equinox, the workbench's own nets, or a
plain ``(apply_fn, params)`` pair into a :class:`Model` ``(apply_fn, params, describe)``:

* ``apply_fn(params, x)`` maps a batch ``x`` of shape (n, ...) to outputs of shape (n, k);
* ``params`` is the pytree of *trainable* arrays, the only thing every study differentiates;
* ``describe`` says in one line what was converted and what is held fixed.

Every study (:mod:`workbench.studies.model`) takes a :class:`Model`, and the lower layers
(:func:`workbench.kernels.empirical.empirical_ntk`, :mod:`workbench.hessian`, :mod:`workbench.lr_batch`,
:func:`workbench.training.train`) take its ``apply_fn`` or the loss of :func:`make_loss`.

Frameworks (imported only when a model of theirs is given):

* Flax NNX module: ``nnx.split(module, nnx.Param, ...)`` / ``nnx.merge``. The module is copied and put in
  inference mode (``.eval()``: BatchNorm uses its running averages, Dropout is off); every non-``Param``
  variable (``BatchStat``, RNG state, ...) is held fixed. The module you passed is not changed.
* Flax Linen: ``(module, variables)`` or ``(module, variables, apply_kwargs)``; ``variables["params"]`` is
  trained, every other collection (``batch_stats``, ...) held fixed, so the module must be built in inference
  mode (``BatchNorm(use_running_average=True)``, ``Dropout(deterministic=True)``) or get it from
  ``apply_kwargs`` (e.g. ``{"train": False}``). A bare Linen module with ``example_input`` is initialized
  with ``PRNGKey(0)``.
* Equinox module: ``eqx.partition(module, eqx.is_inexact_array)`` / ``eqx.combine``: every floating array is
  trained, everything else static. Equinox layers act on one example, so the module is ``vmap``-ed over the
  batch (as ``eqx.nn.MLP`` needs).
* workbench :class:`~workbench.nets.MLP` (or any net with ``init`` and ``apply``): ``(net, params)``, or the
  net alone with ``example_input`` (initialized with ``PRNGKey(0)``). An ``MLP`` on flat inputs keeps its
  bound ``net.apply``, so :func:`~workbench.kernels.empirical.empirical_ntk` uses its structured method.
* a pair ``(apply_fn, params)`` with ``apply_fn(params, x) -> (n, k)``.

``example_input`` (one batch, shape (n, ...)) checks that the outputs have shape (n, k) before any study runs.

Losses (:func:`make_loss`, a :class:`workbench.hessian.ComposedLoss`, so the Gauss-Newton matrix is available):
mean squared error (1/n) sum_i 1/2 |f(x_i) - y_i|^2 (integer labels become one-hot targets) and softmax
cross-entropy -(1/n) sum_i log softmax(f(x_i))_{y_i} with integer labels (optax), both means over the batch
as :mod:`workbench.hessian` and :mod:`workbench.lr_batch` expect.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from workbench import losses
from workbench.hessian import ComposedLoss, num_params
from workbench.validation import check_choice, check_finite, check_number_array, check_positive_int

LOSSES = losses.LOSSES
BUILTINS = ("mlp", "cnn")
_SPEC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


class Model(NamedTuple):
    """A model as the studies see it: ``apply_fn(params, x) -> (n, k)``, trainable ``params``, a description."""

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    params: Any
    describe: str


# ----------------------------------------------------------------------------- framework detection
def _module_of(name: str) -> Any:
    """A framework module if it is importable (imported lazily: flax and equinox are optional extras)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _is_nnx(obj: Any) -> bool:
    # an object can only be an instance of a framework's class if that framework is imported already
    nnx = sys.modules.get("flax.nnx")
    return nnx is not None and isinstance(obj, nnx.Module)


def _is_linen(obj: Any) -> bool:
    linen = sys.modules.get("flax.linen")
    return linen is not None and isinstance(obj, linen.Module)


def _is_equinox(obj: Any) -> bool:
    eqx = sys.modules.get("equinox")
    return eqx is not None and isinstance(obj, eqx.Module)


def _count(tree: Any) -> int:
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(tree)))


# ----------------------------------------------------------------------------- converters
def _from_nnx(module: Any) -> Model:
    from flax import nnx

    copy = nnx.merge(*nnx.split(module))  # a copy: the user's module keeps its mode and state
    copy.eval()
    graphdef, params, rest = nnx.split(copy, nnx.Param, ...)

    def apply_fn(p: Any, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, p, rest)(x)

    fixed = sorted({type(v).__name__ for _, v in nnx.to_flat_state(rest)}) if _count(rest) else []
    held = f"held fixed: {', '.join(fixed)} ({_count(rest)} values)" if fixed else "no other state"
    return Model(apply_fn, params, f"Flax NNX {type(module).__name__} in inference mode (.eval()): "
                                   f"{_count(params)} trainable parameters (nnx.Param); {held}")


def _from_linen(module: Any, variables: Any, kwargs: dict[str, Any]) -> Model:
    if not isinstance(variables, dict) or "params" not in variables:
        raise ValueError("a Flax Linen model must come with its variables {'params': ..., ...} as returned by "
                         f"module.init(key, x); got {type(variables).__name__}"
                         + (f" with keys {sorted(variables)}" if isinstance(variables, dict) else ""))
    if not isinstance(kwargs, dict):
        raise TypeError(f"the third entry of (module, variables, apply_kwargs) must be a dict, got {type(kwargs).__name__}")
    params = variables["params"]
    fixed = {k: v for k, v in variables.items() if k != "params"}

    def apply_fn(p: Any, x: jax.Array) -> jax.Array:
        return module.apply({"params": p, **fixed}, x, **kwargs)

    held = (f"held fixed: {', '.join(f'{k} ({_count(v)} values)' for k, v in sorted(fixed.items()))} "
            "(inference mode)") if fixed else "no other collections"
    call = f", called with {kwargs}" if kwargs else ""
    return Model(apply_fn, params, f"Flax Linen {type(module).__name__}{call}: {_count(params)} trainable "
                                   f"parameters ('params'); {held}")


def _from_equinox(module: Any) -> Model:
    import equinox as eqx

    params, static = eqx.partition(module, eqx.is_inexact_array)

    def apply_fn(p: Any, x: jax.Array) -> jax.Array:
        net = eqx.combine(p, static)
        return jax.vmap(net)(x)

    return Model(apply_fn, params, f"Equinox {type(module).__name__}: {_count(params)} trainable parameters "
                                   "(inexact arrays; the rest static), applied per example (vmapped)")


@functools.lru_cache(maxsize=64)
def _flattening(apply: Callable) -> Callable:
    """``apply`` on inputs flattened to (n, features): an MLP fed images. Cached: one function per net."""
    def apply_fn(p: Any, x: jax.Array) -> jax.Array:
        return apply(p, x.reshape(x.shape[0], -1))

    return apply_fn


def _from_net(net: Any, params: Any, example_input: Any) -> Model:
    from workbench.nets import MLP

    describe = net.describe() if callable(getattr(net, "describe", None)) else type(net).__name__
    how = ""
    if params is None:
        if example_input is None:
            raise ValueError(f"{type(net).__name__} needs parameters: pass (net, params), or example_input to "
                             "initialize it with PRNGKey(0)")
        x = jnp.asarray(example_input)
        key = jax.random.PRNGKey(0)
        if isinstance(net, MLP):
            params = net.init(key, int(np.prod(x.shape[1:])), dtype=x.dtype)
        else:
            try:
                params = net.init(key, tuple(x.shape[1:]))
            except Exception as exc:
                raise TypeError(f"could not initialize {type(net).__name__} with init(key, {tuple(x.shape[1:])}) "
                                f"({type(exc).__name__}: {exc}); pass (net, params) instead") from exc
        how = " (initialized with PRNGKey(0))"
    apply = net.apply
    if isinstance(net, MLP) and example_input is not None and np.ndim(example_input) > 2:
        apply = _flattening(net.apply)
        how += ", inputs flattened"
    return Model(apply, params, f"workbench {describe}: {num_params(params)} trainable parameters{how}")


def _convert(model: Any, example_input: Any) -> Model:
    if isinstance(model, Model):
        return model
    if _is_nnx(model):
        return _from_nnx(model)
    if _is_equinox(model):
        return _from_equinox(model)
    if isinstance(model, (tuple, list)) and len(model) in (2, 3) and _is_linen(model[0]):
        return _from_linen(model[0], model[1], dict(model[2]) if len(model) == 3 else {})
    if _is_linen(model):
        if example_input is None:
            raise ValueError(f"a Flax Linen module ({type(model).__name__}) needs its variables: pass "
                             "(module, variables) from module.init(key, x), or example_input to initialize it "
                             "with PRNGKey(0)")
        return _from_linen(model, model.init(jax.random.PRNGKey(0), jnp.asarray(example_input)), {})
    if hasattr(model, "apply") and hasattr(model, "init") and not isinstance(model, (tuple, list)):
        return _from_net(model, None, example_input)
    if isinstance(model, (tuple, list)) and len(model) == 2:
        first, params = model
        if hasattr(first, "apply") and hasattr(first, "init"):
            return _from_net(first, params, example_input)
        if callable(first):
            name = getattr(first, "__qualname__", type(first).__name__)
            return Model(first, params, f"apply_fn {name}: {num_params(params)} trainable parameters")
    raise TypeError(
        "model must be a Flax NNX module, (Flax Linen module, variables), an Equinox module, a workbench net "
        "(MLP or any object with init/apply, alone with example_input or as (net, params)), a pair "
        f"(apply_fn, params), or a Model; got {type(model).__name__}")


def _check_params(params: Any) -> None:
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("the model has no trainable parameters (its params pytree holds no arrays)")
    for leaf in leaves:
        if not jnp.issubdtype(jnp.result_type(leaf), jnp.inexact):
            raise TypeError(f"trainable parameters must be float arrays, got a leaf of dtype {jnp.result_type(leaf)}")


def check_outputs(model: Model, example_input: Any) -> tuple[int, ...]:
    """Shape of ``model.apply_fn(params, example_input)``: (n, k) or a ValueError saying what came back."""
    x = jnp.asarray(example_input)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"example_input must be a batch of shape (n, ...) with n >= 1, got shape {x.shape}")
    try:
        out = jax.eval_shape(model.apply_fn, model.params, x)
    except Exception as exc:
        text = " ".join(str(exc).split())[:400]
        hint = ""
        if "immutable" in text.lower() or "mutable" in text.lower() or "batch_stats" in text:
            hint = ("; the module tries to update its state: build it in inference mode "
                    "(BatchNorm(use_running_average=True)) or pass (module, variables, {'train': False})")
        raise ValueError(f"the model failed on example_input of shape {x.shape}: {type(exc).__name__}: {text}{hint}") from exc
    shape = tuple(getattr(out, "shape", ()))
    if len(shape) != 2 or shape[0] != x.shape[0]:
        raise ValueError(f"the model must map a batch of shape (n, ...) to outputs of shape (n, k); for "
                         f"example_input of shape {x.shape} it returned shape {shape}")
    return shape


def functional(model: Any, *, example_input: Any = None) -> Model:
    """``model`` as a :class:`Model` ``(apply_fn, params, describe)`` (see the module docstring for what is accepted).

    Args:
      model: a Flax NNX module; ``(linen_module, variables)`` or ``(linen_module, variables, apply_kwargs)``;
        an Equinox module; a workbench net alone (with ``example_input``) or ``(net, params)``;
        ``(apply_fn, params)``; or a :class:`Model` (checked and returned).
      example_input: one batch (n, ...): the outputs are checked to have shape (n, k).

    Raises:
      TypeError: an unsupported kind of model, or non-float parameters.
      ValueError: a model that fails on ``example_input`` or does not return (n, k) outputs.

    Example:
      >>> from workbench.nets import MLP
      >>> m = functional(MLP(depth=1, width=8), example_input=jnp.ones((4, 3)))
      >>> m.apply_fn(m.params, jnp.ones((4, 3))).shape
      (4, 1)
    """
    m = _convert(model, example_input)
    if not callable(m.apply_fn):
        raise TypeError(f"apply_fn must be callable as apply_fn(params, x), got {type(m.apply_fn).__name__}")
    _check_params(m.params)
    if example_input is not None:
        check_outputs(m, example_input)
    return m


def with_dtype(model: Model, dtype: Any) -> Model:
    """The model with its parameters cast to ``dtype`` (e.g. float64 for verification)."""
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:  # numpy's "data type 'float7' not understood" does not say which argument
        raise TypeError(f"dtype must be a float dtype such as 'float32' or 'float64', got {dtype!r}") from None
    if not jnp.issubdtype(dtype, jnp.inexact):
        raise ValueError(f"dtype must be a float dtype, got {dtype}")
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), model.params)
    return Model(model.apply_fn, params, model.describe)


def num_outputs(model: Model, example_input: Any) -> int:
    """k, the number of outputs of the model on ``example_input``."""
    return int(check_outputs(model, example_input)[1])


# ----------------------------------------------------------------------------- losses
# The loss math lives in workbench.losses; these adapters only take a model's label formats: integer labels of
# shape (n,) as well as targets (n, k).
def mse_loss(f: jax.Array, y: jax.Array) -> jax.Array:
    """(1/n) sum_i 1/2 |f_i - y_i|^2 (:func:`workbench.losses.mse`, mean over examples); integer labels ``y`` (n,)
    become one-hot targets of the k outputs."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        y = jax.nn.one_hot(y.reshape(-1), f.shape[-1], dtype=f.dtype)
    return losses.mse(f, y.reshape(f.shape), reduction="mean")


def softmax_cross_entropy(f: jax.Array, y: jax.Array) -> jax.Array:
    """-(1/n) sum_i log softmax(f_i)_{y_i} for integer labels ``y`` (n,) (float rows (n, k): target probabilities);
    :func:`workbench.losses.cross_entropy`, mean over examples."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        y = y.reshape(-1, 1)  # losses' integer-label form: one column of class indices
    return losses.cross_entropy(f, y, reduction="mean")


_OUTPUT_LOSSES = {"mse": mse_loss, "cross_entropy": softmax_cross_entropy}


@functools.lru_cache(maxsize=128)
def _loss_for(apply_fn: Callable, loss: str) -> ComposedLoss:
    return ComposedLoss(apply_fn, _OUTPUT_LOSSES[loss])


def make_loss(model: Model, loss: str = "mse") -> ComposedLoss:
    """``loss_fn(params, (x, y))``: the mean ``"mse"`` or ``"cross_entropy"`` loss of the model (cached per model,
    so compiled code is reused). A :class:`~workbench.hessian.ComposedLoss`: usable for the Hessian and the GGN."""
    if not isinstance(model, Model):
        raise TypeError(f"model must be a Model (from functional(...)), got {type(model).__name__}")
    check_choice("loss", loss, LOSSES)
    return _loss_for(model.apply_fn, loss)


def check_labels(model: Model, x: Any, y: Any, loss: str) -> int:
    """Check that labels ``y`` fit the model's outputs on ``x``; returns k. Integer labels need 0 <= y < k."""
    k = num_outputs(model, x[:1] if np.shape(x)[0] > 1 else x)
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.integer):
        if y.ndim != 1:
            raise ValueError(f"integer labels must have shape (n,), got {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels lie in [{y.min()}, {y.max()}] but the model has {k} output(s): a classifier "
                             f"of these data needs {int(y.max()) + 1} outputs")
        if k < 2 and loss == "cross_entropy":
            raise ValueError(f"softmax cross-entropy needs at least 2 outputs, the model has {k}")
    else:
        if loss == "cross_entropy" and (y.ndim != 2 or y.shape[1] != k):
            raise ValueError(f"cross-entropy targets must be integer labels (n,) or probabilities (n, {k}), got {y.shape}")
        if loss == "mse" and y.reshape(y.shape[0], -1).shape[1] != k:
            raise ValueError(f"targets of shape {y.shape} do not fit the model's {k} output(s)")
    return k


# ----------------------------------------------------------------------------- built-in small models
@functools.lru_cache(maxsize=1)
def _small_cnn_class() -> type:
    from flax import nnx

    class SmallCNN(nnx.Module):
        """conv 3x3 -> relu -> conv 3x3 -> relu -> global average pool -> dense (as examples/flax_cnn.py)."""

        def __init__(self, in_channels: int, channels: int, num_classes: int, seed: int) -> None:
            rngs = nnx.Rngs(seed)
            self.conv1 = nnx.Conv(in_channels, channels, (3, 3), rngs=rngs)
            self.conv2 = nnx.Conv(channels, channels, (3, 3), rngs=rngs)
            self.head = nnx.Linear(channels, num_classes, rngs=rngs)

        def __call__(self, x: jax.Array) -> jax.Array:
            h = nnx.relu(self.conv1(x))
            h = nnx.relu(self.conv2(h))
            return self.head(jnp.mean(h, axis=(1, 2)))

    return SmallCNN


def small_cnn(*, in_channels: int = 1, channels: int = 8, num_classes: int = 10, seed: int = 0) -> Any:
    """The built-in Flax NNX CNN of the panel and the command line (needs ``pip install workbench[flax]``)."""
    in_channels = check_positive_int("in_channels", in_channels)
    channels = check_positive_int("channels", channels)
    num_classes = check_positive_int("num_classes", num_classes)
    seed = check_positive_int("seed", seed, minimum=0)
    if _module_of("flax.nnx") is None:
        raise ImportError("the built-in CNN needs flax: pip install 'workbench[flax]'")
    return _small_cnn_class()(in_channels, channels, num_classes, seed)


# ----------------------------------------------------------------------------- models named by text, built-in models
def resolve_factory(spec: str) -> Any:
    """Import ``module:factory`` (the current folder first on ``sys.path``) and call the factory.

    The text is checked against a dotted-name pattern and imported, never evaluated. An unknown module or function,
    or a factory that raises, is a ValueError naming ``spec`` (the command line's ``--model``)."""
    if not isinstance(spec, str) or not _SPEC.match(spec.strip()):
        raise ValueError(f"model must look like module:factory (e.g. examples.flax_cnn:make), got {spec!r}")
    module_name, factory_name = spec.strip().split(":")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ValueError(f"model {spec}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise ValueError(f"model {spec}: module {module_name!r} has no function {factory_name!r}")
    try:
        return factory()
    except Exception as exc:
        raise ValueError(f"model {spec}: the factory raised {type(exc).__name__}: {exc}") from None


def builtin_model(name: str, image_shape: tuple[int, ...], num_classes: int, *, seed: int = 0, width: int = 64) -> Any:
    """The built-in models: ``"mlp"`` (workbench MLP, 2 hidden tanh layers of ``width``, on flattened images) or ``"cnn"``
    (:func:`workbench.models.small_cnn`, a small Flax NNX CNN, needs flax)."""
    check_choice("name", name, BUILTINS)
    num_classes = check_positive_int("num_classes", num_classes)
    if name == "mlp":
        from workbench.nets import MLP

        return MLP(depth=2, width=width, activation="tanh", w_std=1.0, b_std=0.1, out_dim=num_classes)
    if name == "cnn":
        return small_cnn(in_channels=int(image_shape[-1]), num_classes=num_classes, seed=seed)
    raise ValueError(f"built-in model must be one of {BUILTINS}, got {name!r}")


def prepare(model: Any, x: Any, y: Any, loss: str = "mse"):
    """(:class:`workbench.models.Model`, inputs): the model on images as given or, if it fails there and works on
    flattened rows (an MLP), on flattened inputs; the labels are checked against its outputs."""
    check_choice("loss", loss, LOSSES)
    if check_number_array("x", x).ndim < 2:  # checked (text, NaN, empty), the caller's array and dtype kept
        raise ValueError(f"x must be a batch of inputs of shape (n, ...), got shape {np.shape(x)}")
    if np.ndim(y) == 0 or np.shape(y)[0] != x.shape[0]:
        raise ValueError(f"y must have one label or target row per input: x has {x.shape[0]} inputs, "
                         f"y has shape {np.shape(y)}")
    check_finite("y", np.asarray(y))
    first_error = None
    for inputs in (x, x.reshape(x.shape[0], -1)):
        try:
            m = functional(model, example_input=inputs[:2])
        except ValueError as exc:
            first_error = first_error or exc
            continue
        check_labels(m, inputs, y, loss)
        return m, inputs
    raise first_error  # type: ignore[misc]


__all__ = ["BUILTINS", "LOSSES", "Model", "builtin_model", "check_labels", "check_outputs", "functional", "make_loss",
           "mse_loss", "num_outputs", "prepare", "resolve_factory", "small_cnn", "softmax_cross_entropy", "with_dtype"]
