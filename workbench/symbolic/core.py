"""The machinery of the symbolic registry: a derivation, its numerical counterparts, and the check.

A :class:`Derivation` holds

* the assumptions (sympy symbols with their domains) and the closed form (a tuple of sympy
  expressions, one per named output, in the symbols ``params``);
* ``derive``: a function that runs sympy (integrate, dsolve, solve, rsolve, residue...) and
  returns a :class:`Derived`: the steps, each a sympy expression renderable with ``sympy.latex``,
  and the derived result, which the tests compare with the closed form;
* ``numerics``: independent numerical computations (Monte Carlo with its standard error,
  quadrature with its error estimate, dense linear algebra, ODE solves, simulated networks),
  each returning an :class:`Estimate` with a computed tolerance and the reason for it.

:func:`check` evaluates the closed form (lambdified to JAX) and one numerical counterpart at the
same points, on a chosen device and matmul precision, and returns a :class:`CheckResult`.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from workbench import config
from workbench.validation import check_choice, check_positive_int

#: Monte-Carlo tolerances are this many computed standard errors.
MC_SIGMAS = 5.0
#: Exact methods (quadrature, ODE solves, linear algebra) also allow this many ulps of the
#: dtype of the JAX side times the size of the value, for rounding in the closed form.
FP_ULPS = 200.0


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of a derivation: a sentence and a sympy expression (often an ``Eq``)."""

    text: str
    expr: Any

    def latex(self) -> str:
        return sp.latex(self.expr)


@dataclasses.dataclass(frozen=True)
class Derived:
    """What sympy produced: the steps and the derived expressions (one per output).

    ``numeric_identity`` names an identity sympy could not finish symbolically and that the tests
    check at random points instead (empty when the derivation is fully symbolic).
    """

    steps: tuple[Step, ...]
    result: tuple[Any, ...]
    numeric_identity: str = ""


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A numerical counterpart's values at the check points, with pointwise tolerances.

    Attributes:
      values: shape (points, outputs).
      tolerance: shape (points, outputs), the allowed |closed form - values|.
      reason: why the tolerance has that size (computed how).
      backend: where the numerics ran ("jax on <device>" or "numpy/scipy on the host").
      closed_inputs: extra keyword arguments for the derivation's ``evaluate`` (for methods
        that build their own problem, e.g. the NTK of the network they trained).
      info: method-specific numbers worth reporting (sizes, seeds).
    """

    values: np.ndarray
    tolerance: np.ndarray
    reason: str
    backend: str
    closed_inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


NumericFn = Callable[..., Estimate]


@dataclasses.dataclass(frozen=True)
class Method:
    """A numerical counterpart: ``fn(points, *, samples, seed, closed, device) -> Estimate``.

    ``samples`` is the method's size knob (Monte-Carlo draws, width, ...): ``default_samples``
    gives (fast, full) values. ``available()`` is False when the method needs a module of the
    workbench that is not installed (the check is then skipped by :func:`check_all`).
    """

    name: str
    fn: NumericFn
    description: str
    default_samples: tuple[int, int] = (0, 0)
    available: Callable[[], bool] = lambda: True


@dataclasses.dataclass(frozen=True)
class Derivation:
    """A derivation in sympy and its numerical counterparts (see the module docstring).

    ``evaluate(closed_fn, points, **closed_inputs)`` maps the lambdified closed form over the check
    points (default: call it on the columns of ``points``); ``sweep`` = (parameter, lo, hi) is the
    parameter swept in checks and plots, ``defaults`` the values of the others (``point_params`` names
    the point columns when they differ from the closed form's arguments, e.g. a recursion's depth); ``sweep_decimals``
    rounds the grid (0: integers, e.g. depths; 2: ratios p/m that must give whole matrix sizes).
    """

    name: str
    title: str
    references: str
    summary: str
    assumptions: tuple[tuple[sp.Symbol, str], ...]
    params: tuple[sp.Symbol, ...]
    outputs: tuple[str, ...]
    closed_form: tuple[Any, ...]
    derive: Callable[[], Derived]
    methods: tuple[Method, ...]
    defaults: dict[str, float]
    sweep: tuple[str, float, float]
    num_points: tuple[int, int] = (4, 9)
    sweep_decimals: int | None = None
    evaluate: Callable[..., np.ndarray] | None = None
    point_params: tuple[str, ...] | None = None

    def method(self, name: str | None = None) -> Method:
        """The named numerical counterpart (the first one when ``name`` is None)."""
        if name is None:
            return self.methods[0]
        names = [m.name for m in self.methods]
        check_choice("method", name, names)
        return self.methods[names.index(name)]

    def points(self, num: int | None = None) -> np.ndarray:
        """Check points, shape (num, len(params)): the swept parameter on a grid, the others at defaults."""
        num = config.pick(*self.num_points) if num is None else check_positive_int("num", num)
        name, lo, hi = self.sweep
        grid = np.linspace(lo, hi, num)
        if self.sweep_decimals is not None:
            grid = np.unique(np.round(grid, self.sweep_decimals)).astype(float)
        cols = []
        for p in self.point_names:
            cols.append(grid if p == name else np.full(grid.shape, float(self.defaults[p])))
        return np.stack(cols, axis=1)

    @property
    def point_names(self) -> tuple[str, ...]:
        """Names of the columns of :meth:`points` (``point_params``, else the closed form's ``params``)."""
        return self.point_params if self.point_params is not None else tuple(str(p) for p in self.params)

    def jax_function(self, closed_form: Sequence[Any] | None = None) -> Callable[..., Any]:
        """The closed form lambdified to JAX: ``f(*params) -> tuple of outputs``."""
        return _lambdify(self.params, tuple(self.closed_form if closed_form is None else closed_form))

    def closed_values(self, points: np.ndarray, closed_form: Sequence[Any] | None = None,
                      **closed_inputs: Any) -> np.ndarray:
        """The closed form at ``points``, shape (points, outputs)."""
        fn = self.jax_function(closed_form)
        if self.evaluate is not None:
            return np.asarray(self.evaluate(fn, np.asarray(points, dtype=float), **closed_inputs), dtype=float)
        pts = jnp.asarray(points)
        outs = fn(*[pts[:, i] for i in range(pts.shape[1])])
        cols = [jnp.broadcast_to(jnp.asarray(o, dtype=pts.dtype), pts.shape[:1]) for o in outs]
        return np.asarray(jnp.stack(cols, axis=1), dtype=float)

    def derivation(self) -> Derived:
        """Run (once, then cached) the sympy derivation."""
        return _derive_cached(self.name, self.derive)

    def latex_closed_form(self) -> list[str]:
        return [f"{o} = {sp.latex(e)}" for o, e in zip(self.outputs, self.closed_form)]


def eq(lhs: Any, rhs: Any) -> sp.Eq:
    """An unevaluated ``Eq`` for a step (sympy would otherwise try to decide it, e.g. evaluate integrals)."""
    return sp.Eq(lhs, rhs, evaluate=False)


_DERIVE_CACHE: dict[str, Derived] = {}


def _derive_cached(name: str, derive: Callable[[], Derived]) -> Derived:
    if name not in _DERIVE_CACHE:
        _DERIVE_CACHE[name] = derive()
    return _DERIVE_CACHE[name]


#: lambdify's modules: sympy's JAX printer plus special functions it does not map itself
JAX_MODULES = [{"erf": jax.scipy.special.erf, "erfc": jax.scipy.special.erfc,
                "Heaviside": lambda x, h0=0.5: jnp.heaviside(x, h0)}, "jax"]


@functools.lru_cache(maxsize=128)
def _lambdify_cached(params: tuple[sp.Symbol, ...], exprs: tuple[Any, ...]) -> Callable[..., Any]:
    return sp.lambdify(params, list(exprs), modules=JAX_MODULES)


def _lambdify(params: tuple[sp.Symbol, ...], exprs: tuple[Any, ...]) -> Callable[..., Any]:
    try:
        return _lambdify_cached(params, exprs)
    except TypeError:  # unhashable expression (e.g. a Matrix): no cache
        return sp.lambdify(params, list(exprs), modules=JAX_MODULES)


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: closed form vs one numerical counterpart at several points."""

    name: str
    method: str
    outputs: tuple[str, ...]
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    worst_ratio: float
    tolerance_reason: str
    passed: bool
    device: str
    precision: str
    dtype: str
    backend: str
    samples: int
    seconds: float
    points: np.ndarray
    closed: np.ndarray
    numeric: np.ndarray
    tolerances: np.ndarray
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    closed_inputs: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{verdict} {self.name} [{self.method}]: max abs err {self.max_abs_err:.3g} "
                f"(rel {self.max_rel_err:.3g}), worst err/tol {self.worst_ratio:.3g}; "
                f"tolerance: {self.tolerance_reason}; {self.device}, {self.dtype}, matmul {self.precision}, "
                f"{self.seconds:.2f} s")


_COLUMNS = ("derivation", "method", "max abs err", "max rel err", "tolerance", "err/tol", "passed",
            "device", "dtype", "matmul", "seconds")


class CheckTable(list):
    """A list of :class:`CheckResult` with a plain-text and an HTML rendering."""

    def rows(self) -> list[tuple[str, ...]]:
        return [(r.name, r.method, f"{r.max_abs_err:.2e}", f"{r.max_rel_err:.2e}", f"{r.tolerance:.2e}",
                 f"{r.worst_ratio:.2f}", "yes" if r.passed else "NO", r.device, r.dtype, r.precision,
                 f"{r.seconds:.2f}") for r in self]

    @property
    def all_passed(self) -> bool:
        return all(r.passed for r in self)

    def format(self) -> str:
        """A fixed-width text table, one row per check, and a final line with the verdict."""
        rows = [_COLUMNS, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        n_fail = sum(not r.passed for r in self)
        info = config.device_info()
        lines.append(f"{len(self)} checks, {len(self) - n_fail} passed, {n_fail} failed; jax {info['jax_version']}, "
                     f"{info['device_count']} {info['platform']} device(s) ({info['device_kind']}); "
                     "each row names its device, dtype and matmul precision")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
        body = []
        for r, row in zip(self, self.rows()):
            color = "" if r.passed else " style='color:#b00;font-weight:bold'"
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
            body.append(f"<tr{color} title='{html.escape(r.tolerance_reason)}'>{cells}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def _repr_html_(self) -> str:
        return self.to_html()


# ----------------------------------------------------------------------------- check
def fp_floor(values: np.ndarray) -> np.ndarray:
    """Rounding allowance: :data:`FP_ULPS` ulps of JAX's current float type times max(|value|, 1)."""
    eps = float(jnp.finfo(config.default_dtype()).eps)
    return FP_ULPS * eps * np.maximum(np.abs(values), 1.0)


def resolve_device(device: Any = None) -> jax.Device:
    """``None`` -> ``jax.devices()[0]``; a string -> the first device of that platform; a Device as is."""
    if device is None:
        return jax.devices()[0]
    if isinstance(device, str):
        try:
            return jax.devices(device)[0]
        except RuntimeError as exc:
            raise ValueError(f"device {device!r} is not available: {exc}") from None
    if isinstance(device, jax.Device):
        return device
    raise TypeError(f"device must be None, a platform name or a jax.Device, got {device!r}")


def describe_device(device: jax.Device) -> str:
    return f"{device.platform}:{device.id} ({device.device_kind})"


def closed_form_expressions(deriv: Derivation, closed_form: Any) -> tuple[sp.Expr, ...]:
    """``closed_form`` checked: one entry per output, each a sympy expression, a real number, or text.

    Text goes through the safe parser (:func:`~workbench.symbolic.expressions.parse_expression`, never
    ``sympify``) with the derivation's own symbols; names that are not Python identifiers (``K^{l+1}``,
    ``lambda``) are typed with their non-word characters replaced by ``_`` (``K_l_1_``, ``lambda_``).
    """
    from workbench.symbolic.expressions import parse_expression

    if isinstance(closed_form, (str, sp.Basic)) or not isinstance(closed_form, Sequence):
        raise TypeError(f"closed_form must be a tuple with one expression per output {deriv.outputs}, "
                        f"got {type(closed_form).__name__}")
    if len(closed_form) != len(deriv.closed_form):
        raise ValueError(f"closed_form must have {len(deriv.closed_form)} expression(s), like {deriv.closed_form}, "
                         f"got {len(closed_form)}")
    names = {typed_name(str(p)): p for p in deriv.params}
    out = []
    for i, e in enumerate(closed_form):
        if isinstance(e, str):
            try:
                out.append(parse_expression(e, names))
            except ValueError as exc:
                raise type(exc)(f"closed_form[{i}]: {exc}") from None
        elif isinstance(e, sp.Expr):
            out.append(e)
        elif isinstance(e, (int, float, np.integer, np.floating)) and not isinstance(e, bool):
            if not np.isfinite(e):
                raise ValueError(f"closed_form[{i}] must be finite, got {e}")
            out.append(sp.Integer(int(e)) if isinstance(e, (int, np.integer)) else sp.Float(float(e)))
        else:
            raise TypeError(f"closed_form[{i}] must be a sympy expression, a real number or text for the safe "
                            f"parser, got {type(e).__name__}")
    return tuple(out)


def typed_name(name: str) -> str:
    """How a parameter is typed in a closed form given as text (a Python identifier, never a keyword)."""
    import keyword
    import re

    out = re.sub(r"\W", "_", name)
    if not out or out[0].isdigit():
        out = "p_" + out
    return out + "_" if keyword.iskeyword(out) else out


def run_check(deriv: Derivation, *, method: str | None = None, device: Any = None, precision: str = "highest",
              samples: int | None = None, num_points: int | None = None, seed: int = 0,
              closed_form: Sequence[Any] | None = None) -> CheckResult:
    """Run the closed form and one numerical counterpart of ``deriv`` and compare them (see :func:`check`)."""
    m = deriv.method(method)
    dev = resolve_device(device)
    if samples is not None:
        samples = check_positive_int("samples", samples)
    n_samples = samples if samples is not None else config.pick(*m.default_samples)
    if closed_form is not None:
        closed_form = closed_form_expressions(deriv, closed_form)
    points = deriv.points(num_points)
    start = time.perf_counter()
    with config.matmul_precision(precision), jax.default_device(dev):
        closed_fn = deriv.jax_function(closed_form)
        est = m.fn(points, samples=n_samples, seed=seed, closed=closed_fn, device=dev)
        closed = deriv.closed_values(points, closed_form, **est.closed_inputs)
    seconds = time.perf_counter() - start
    numeric = np.asarray(est.values, dtype=float)
    tol = np.broadcast_to(np.asarray(est.tolerance, dtype=float), numeric.shape)
    if closed.shape != numeric.shape:
        raise RuntimeError(f"{deriv.name}/{m.name}: closed form has shape {closed.shape}, numerics {numeric.shape}")
    err = np.abs(closed - numeric)
    err = np.where(np.isfinite(err), err, np.inf)
    # relative to max(|value|, tolerance): a value that is 0 within its tolerance has no relative error scale
    rel = err / np.maximum(np.maximum(np.abs(numeric), tol), np.finfo(float).tiny)
    ratio = err / np.maximum(tol, np.finfo(float).tiny)
    return CheckResult(
        name=deriv.name, method=m.name, outputs=deriv.outputs,
        max_abs_err=float(err.max()), max_rel_err=float(rel.max()), tolerance=float(tol.max()),
        worst_ratio=float(ratio.max()), tolerance_reason=est.reason, passed=bool(np.all(err <= tol)),
        device=describe_device(dev), precision=precision, dtype=config.get_precision(), backend=est.backend,
        samples=int(n_samples), seconds=seconds, points=points, closed=closed, numeric=numeric,
        tolerances=np.array(tol), info=dict(est.info), closed_inputs=dict(est.closed_inputs),
    )
