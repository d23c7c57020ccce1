"""Safe parsing of user-typed expressions (an activation phi(x), a closed form...) into sympy.

Nothing the user types is executed, and no text reaches ``eval``, ``exec``, ``sympify`` or ``parse_expr``:

1. the text is parsed by Python's ``ast`` (a parser, never executed) and every node is checked against a
   whitelist: numbers, the allowed variable names and constants, + - * / ** ^ and unary minus, and calls of
   whitelisted functions with positional arguments only (no attributes, subscripts, keywords, lambdas,
   comprehensions, strings);
2. the sympy expression is then *built* node by node from the checked tree (``sp.Add``, ``sp.Pow``...), with
   bounds on everything that could make sympy's automatic evaluation run away:

   * at most :data:`MAX_LENGTH` characters, :data:`MAX_NODES` tree nodes, nesting depth :data:`MAX_DEPTH`;
   * every number built (a literal, or the exact value of a constant sub-expression such as ``9**9**9``) has
     magnitude below ``10**MAX_DIGITS`` (and numerator and denominator of a fraction too). Constant powers are
     sized by logarithms *before* sympy evaluates them, so a power tower is refused at once instead of
     computing a number with billions of digits (Python's big integers cannot be interrupted);
   * the exponent of a power of a non-constant base is at most :data:`MAX_EXPONENT` in magnitude.

3. :func:`run_with_time_limit` runs sympy work (the parse, the derivative, lambdify) under a wall-clock limit.
   A worker thread cannot be stopped and a subprocess costs a second of sympy import per call, so the limit is
   a ``SIGALRM`` timer in the main thread (where Jupyter kernels run cell code and widget callbacks): the
   handler raises inside sympy's pure-Python loops. It is the second line of defence: the bounds above
   already keep every accepted expression small (its derivative is polynomial in its size), and a C-level
   big-integer operation, which a signal cannot interrupt, can no longer be reached. Off the main thread (or
   on a platform without ``setitimer``) only the bounds apply.

Bad text raises :class:`ExpressionError` (a ``ValueError``) saying what is wrong and what is allowed.
"""

from __future__ import annotations

import ast
import gc
import math
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import mpmath
import sympy as sp

MAX_LENGTH = 200
#: most sub-expressions (numbers, names, operations, calls) an expression may have
MAX_NODES = 200
#: deepest nesting of calls / operators (sympy's printers and lambdify's generated code recurse per level)
MAX_DEPTH = 40
#: every exact number built is below 10**MAX_DIGITS in magnitude (float64 ends near 1.8e308)
MAX_DIGITS = 300
#: |exponent| of a power of a non-constant base. 100 keeps phi(x)^2 of degree <= 200, which the default
#: Gauss-Hermite rule of price_check (2 x 60 nodes, exact to degree 239) still integrates exactly.
MAX_EXPONENT = 100
#: default wall-clock limit (seconds) for the sympy side of a typed expression: a notebook user waits this
#: long at most before getting a sentence instead of a frozen kernel.
TIME_LIMIT = 5.0

T = TypeVar("T")


class ExpressionError(ValueError):
    """A user-typed expression that cannot be accepted (with the reason)."""


def _relu(a: sp.Expr) -> sp.Expr:
    return sp.Max(a, 0)


def _sigmoid(a: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-a))


def _gelu(a: sp.Expr) -> sp.Expr:
    return a / 2 * (1 + sp.erf(a / sp.sqrt(2)))


def _softplus(a: sp.Expr) -> sp.Expr:
    return sp.log(1 + sp.exp(a))


#: function names a user may call, and what they mean
FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
    "atan": sp.atan, "arctan": sp.atan, "asin": sp.asin, "arcsin": sp.asin, "acos": sp.acos, "arccos": sp.acos,
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "erf": sp.erf,
    "abs": sp.Abs, "Abs": sp.Abs, "max": sp.Max, "Max": sp.Max, "min": sp.Min, "Min": sp.Min,
    "relu": _relu, "sigmoid": _sigmoid, "gelu": _gelu, "softplus": _softplus,
}
#: how many positional arguments each function takes (None: two or more)
_ARITY: dict[str, int | None] = {name: (None if name.lower() in ("max", "min") else 1) for name in FUNCTIONS}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

_UNARY = (ast.UAdd, ast.USub)


# ----------------------------------------------------------------------------- time limit
class _Timeout(BaseException):
    """Raised by the alarm handler (a BaseException so sympy's broad ``except Exception`` cannot swallow it)."""


def run_with_time_limit(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()``, or :class:`ExpressionError` naming ``what`` and the limit if it runs longer than ``seconds``.

    Uses a ``SIGALRM`` interval timer when called from the main thread (see the module docstring); elsewhere
    ``fn`` runs unguarded, protected only by the size bounds of :func:`parse_expression`.
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"time_limit must be a positive number of seconds, got {seconds!r}")
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return fn()

    armed = [True]

    def _alarm(_signum: int, _frame: Any) -> None:
        if armed[0]:
            # fire again shortly in case this exception lands somewhere that swallows it (a gc callback)
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            raise _Timeout

    # no cyclic garbage collection meanwhile: an alarm raised inside a gc callback would be swallowed there
    # (reference counting still frees memory; the collector runs again right after)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        try:
            result = fn()
        finally:
            armed[0] = False  # from here on a late alarm does nothing
            if gc_was_enabled:
                gc.enable()
    except _Timeout:
        raise ExpressionError(f"{what} took longer than the time limit of {seconds:g} s and was stopped; "
                              "simplify the expression") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay > 0:  # someone else's timer (e.g. pytest-timeout) was running: give it back, less our time
            signal.setitimer(signal.ITIMER_REAL, max(old_delay - (time.monotonic() - started), 1e-3), old_interval)
    return result


# ----------------------------------------------------------------------------- number bounds
def _log10_abs(n: sp.Number) -> float:
    """log10 |n| of a nonzero sympy number without converting huge integers to text."""
    if isinstance(n, sp.Float):
        return float(mpmath.log10(abs(mpmath.mpf(n)))) if n != 0 else -math.inf
    p, q = int(n.p), int(n.q)
    return (abs(p).bit_length() - q.bit_length()) * math.log10(2)


def _check_number(n: sp.Expr, text: str) -> None:
    if isinstance(n, sp.Rational):
        for part in (int(n.p), int(n.q)):
            if abs(part).bit_length() > MAX_DIGITS * math.log2(10) + 1:
                raise ExpressionError(f"{text!r} builds a number with more than {MAX_DIGITS} digits; "
                                      f"numbers are limited to magnitude 10**{MAX_DIGITS}")
    elif isinstance(n, sp.Float) and n != 0 and abs(_log10_abs(n)) > MAX_DIGITS:
        raise ExpressionError(f"{text!r} builds the number {sp.Float(n, 5)}, beyond the limit of magnitude "
                              f"10**{MAX_DIGITS} (and 10**-{MAX_DIGITS})")


def _check_built(expr: sp.Expr, text: str) -> None:
    """Every number inside ``expr`` within bounds; every power of a non-constant base has a bounded exponent."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Number):
            _check_number(node, text)
        elif isinstance(node, sp.Pow) and not node.base.is_number and node.exp.is_number:
            e = node.exp
            if e.is_real is not False and abs(float(e)) > MAX_EXPONENT:
                raise ExpressionError(f"{text!r}: the exponent {e} of {node.base} is beyond the limit "
                                      f"|exponent| <= {MAX_EXPONENT}")


def _safe_pow(base: sp.Expr, exp: sp.Expr, text: str) -> sp.Expr:
    if base.is_number and exp.is_number:
        b, e = base, exp
        if isinstance(b, sp.Number) and isinstance(e, sp.Number) and b != 0 and abs(b) != 1:
            size = float(e) * _log10_abs(b)  # log10 |b**e|, computed before b**e is
            if abs(size) > MAX_DIGITS:
                raise ExpressionError(f"{text!r}: the power {b}**{e} has about 10**{abs(size):.3g} in magnitude, "
                                      f"beyond the limit of 10**{MAX_DIGITS}; power towers such as 9**9**9 are "
                                      "not evaluated")
    elif exp.is_number and exp.is_real is not False:
        if abs(float(exp)) > MAX_EXPONENT:
            raise ExpressionError(f"{text!r}: the exponent {exp} is beyond the limit |exponent| <= {MAX_EXPONENT}")
    return sp.Pow(base, exp)


# ----------------------------------------------------------------------------- the builder
class _Builder:
    def __init__(self, text: str, symbols: Mapping[str, sp.Symbol]):
        self.text = text
        self.symbols = symbols

    def _names(self) -> str:
        return (f"allowed variables are {tuple(self.symbols)}, constants {tuple(CONSTANTS)}, "
                f"functions {tuple(sorted(FUNCTIONS))}")

    def build(self, node: ast.AST, depth: int = 0) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"{self.text!r} is nested more than {MAX_DEPTH} levels deep")
        out = self._build(node, depth + 1)
        if not isinstance(out, sp.Expr):
            raise ExpressionError(f"{self.text!r} is not an expression")
        _check_built(out, self.text)
        if out.is_number and out.is_real is False:
            raise ExpressionError(f"{self.text!r} is not real: {out} (e.g. a root of a negative number)")
        return out

    def _build(self, node: ast.AST, depth: int) -> sp.Expr:
        if isinstance(node, ast.Expression):
            return self.build(node.body, depth)
        if isinstance(node, ast.BinOp):
            op = node.op
            if not isinstance(op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)):
                raise ExpressionError(f"operator {type(op).__name__} is not allowed; use + - * / ** (or ^)")
            a = self.build(node.left, depth)
            b = self.build(node.right, depth)
            if isinstance(op, ast.Pow):
                return _safe_pow(a, b, self.text)
            # a sum or product of two numbers below 10**MAX_DIGITS is cheap; build() then checks its size
            if isinstance(op, ast.Add):
                return sp.Add(a, b)
            if isinstance(op, ast.Sub):
                return sp.Add(a, sp.Mul(-1, b))
            if isinstance(op, ast.Mult):
                return sp.Mul(a, b)
            if b == 0:
                raise ExpressionError(f"{self.text!r} divides by zero, so it is not finite")
            return sp.Mul(a, sp.Pow(b, -1))
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                raise ExpressionError(f"unary operator {type(node.op).__name__} is not allowed")
            a = self.build(node.operand, depth)
            return -a if isinstance(node.op, ast.USub) else a
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ExpressionError(f"only numbers are allowed as constants, got {v!r}")
            if isinstance(v, int):
                if v.bit_length() > MAX_DIGITS * math.log2(10) + 1:
                    raise ExpressionError(f"the number {str(v)[:20]}... has more than {MAX_DIGITS} digits")
                return sp.Integer(v)
            if not math.isfinite(v):
                raise ExpressionError(f"the number {v!r} is not finite")
            return sp.Float(v)
        if isinstance(node, ast.Name):
            if node.id in self.symbols:
                return self.symbols[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise ExpressionError(f"unknown name {node.id!r}: {self._names()}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)[:40]
                raise ExpressionError(f"function {name!r} is not allowed; allowed: {tuple(sorted(FUNCTIONS))}")
            name = node.func.id
            if node.keywords:
                raise ExpressionError("keyword arguments are not allowed")
            arity = _ARITY[name]
            if not node.args or (arity is not None and len(node.args) != arity) or (arity is None
                                                                                  and len(node.args) < 2):
                want = "one argument" if arity == 1 else "two or more arguments"
                raise ExpressionError(f"{name}() takes {want}, got {len(node.args)}")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError("starred arguments are not allowed")
            args = [self.build(a, depth) for a in node.args]
            return FUNCTIONS[name](*args)
        raise ExpressionError(f"{type(node).__name__} is not allowed in an expression "
                              "(only numbers, variables, + - * / ** and function calls)")


def _symbol_table(variables: Sequence[str] | Mapping[str, sp.Symbol]) -> dict[str, sp.Symbol]:
    if isinstance(variables, Mapping):
        table = dict(variables)
    else:
        if isinstance(variables, str):
            variables = (variables,)
        table = {v: sp.Symbol(v, real=True) for v in variables}
    for name, sym in table.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"variables: {name!r} is not a valid variable name")
        if not isinstance(sym, sp.Symbol):
            raise TypeError(f"variables[{name!r}] must be a sympy Symbol, got {type(sym).__name__}")
    return table


def _parse(text: str, symbols: dict[str, sp.Symbol]) -> sp.Expr:
    if "__" in text:
        raise ExpressionError("expression contains a forbidden token '__'")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"cannot parse {text!r}: it is nested too deeply") from None
    nodes = sum(isinstance(n, ast.expr) for n in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(f"{text!r} has {nodes} parts, more than the limit of {MAX_NODES}")
    try:
        expr = _Builder(text, symbols).build(tree)
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError(f"{text!r} is nested too deeply") from None
    except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:  # sympy's own refusals
        raise ExpressionError(f"cannot interpret {text!r}: {type(exc).__name__}: {exc}") from None
    extra = expr.free_symbols - set(symbols.values())
    if extra:
        raise ExpressionError(f"unknown symbol(s) {sorted(map(str, extra))}; allowed variables are {tuple(symbols)}")
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ExpressionError(f"{text!r} is not finite")
    if expr.has(sp.I):
        raise ExpressionError(f"{text!r} is not real (it contains the imaginary unit)")
    return expr


def parse_expression(text: str, variables: Sequence[str] | Mapping[str, sp.Symbol] = ("x",), *,
                     time_limit: float = TIME_LIMIT) -> sp.Expr:
    """Parse ``text`` (e.g. ``"tanh(2*x)"``, ``"x^2 * exp(-x)"``) into a sympy expression of ``variables``.

    ``variables``: names (each becomes a real sympy Symbol) or a mapping name -> Symbol (to reuse symbols
    with their own assumptions). See the module docstring for the bounds and the time limit.

    Raises:
      ExpressionError: empty or too long text, syntax errors, disallowed names/operators/functions,
        numbers or exponents beyond the limits, an expression that is not a finite real function of the
        variables, or parsing that exceeds ``time_limit`` seconds.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"text (the expression) must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ExpressionError("expression is empty; type a function of x such as tanh(x)")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is too long ({len(text)} characters, at most {MAX_LENGTH})")
    symbols = _symbol_table(variables)
    return run_with_time_limit(lambda: _parse(text, symbols), time_limit, f"parsing {text!r}")
