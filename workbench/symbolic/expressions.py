"""Safe parsing of user-typed expressions (an activation phi(x), a kernel...) into sympy.

Two gates, and no ``eval`` of our own:

1. the text is parsed by Python's ``ast`` (never executed) and every node is checked against a whitelist:
   numbers, the allowed variable names, + - * / ** ^ and unary minus, and calls of whitelisted functions
   with positional arguments only (no attributes, subscripts, keywords, lambdas, comprehensions, strings);
2. the checked text goes to sympy's parser (``parse_expr``) with a restricted namespace: only the
   whitelisted functions and sympy's number/symbol constructors, and no builtins.

Bad text raises :class:`ExpressionError` (a ``ValueError``) saying what is wrong and what is allowed.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import sympy as sp
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

MAX_LENGTH = 200


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
FUNCTIONS: dict[str, object] = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
    "atan": sp.atan, "arctan": sp.atan, "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "erf": sp.erf,
    "abs": sp.Abs, "Abs": sp.Abs, "max": sp.Max, "Max": sp.Max, "min": sp.Min, "Min": sp.Min,
    "relu": _relu, "sigmoid": _sigmoid, "gelu": _gelu, "softplus": _softplus,
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.BitXor)
_UNARY = (ast.UAdd, ast.USub)


def _check_node(node: ast.AST, variables: Sequence[str]) -> None:
    if isinstance(node, ast.Expression):
        _check_node(node.body, variables)
    elif isinstance(node, ast.BinOp):
        if not isinstance(node.op, _BINOPS):
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed; use + - * / ** (or ^)")
        _check_node(node.left, variables)
        _check_node(node.right, variables)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, _UNARY):
            raise ExpressionError(f"unary operator {type(node.op).__name__} is not allowed")
        _check_node(node.operand, variables)
    elif isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"only numbers are allowed as constants, got {node.value!r}")
    elif isinstance(node, ast.Name):
        if node.id not in variables and node.id not in CONSTANTS:
            raise ExpressionError(f"unknown name {node.id!r}: allowed variables are {tuple(variables)}, "
                                  f"constants {tuple(CONSTANTS)}, functions {tuple(sorted(FUNCTIONS))}")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else ast.dump(node.func)[:40]
            raise ExpressionError(f"function {name!r} is not allowed; allowed: {tuple(sorted(FUNCTIONS))}")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        if not node.args:
            raise ExpressionError(f"{node.func.id}() needs an argument")
        for arg in node.args:
            _check_node(arg, variables)
    else:
        raise ExpressionError(f"{type(node).__name__} is not allowed in an expression "
                              "(only numbers, variables, + - * / ** and function calls)")


def parse_expression(text: str, variables: Sequence[str] = ("x",)) -> sp.Expr:
    """Parse ``text`` (e.g. ``"tanh(2*x)"``, ``"x^2 * exp(-x)"``) into a sympy expression of ``variables``.

    Raises:
      ExpressionError: empty or too long text, syntax errors, disallowed names/operators/functions,
        or an expression that is not a finite real function of the variables.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ExpressionError("expression is empty; type a function of x such as tanh(x)")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is too long ({len(text)} characters, at most {MAX_LENGTH})")
    if "__" in text or "lambda" in text:
        raise ExpressionError("expression contains a forbidden token ('__' or 'lambda')")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc.msg} at column {exc.offset}") from None
    _check_node(tree, variables)
    symbols = {v: sp.Symbol(v, real=True) for v in variables}
    namespace: dict[str, object] = {"__builtins__": {}, "Integer": sp.Integer, "Float": sp.Float,
                                    "Rational": sp.Rational, "Symbol": sp.Symbol}
    namespace.update(FUNCTIONS)
    namespace.update(CONSTANTS)
    try:
        expr = parse_expr(text, local_dict=dict(symbols), global_dict=namespace,
                          transformations=standard_transformations + (convert_xor,), evaluate=True)
    except Exception as exc:  # sympy raises many types for bad input; report them uniformly
        raise ExpressionError(f"cannot interpret {text!r}: {type(exc).__name__}: {exc}") from None
    if not isinstance(expr, sp.Expr):
        raise ExpressionError(f"{text!r} is not an expression")
    extra = expr.free_symbols - set(symbols.values())
    if extra:
        raise ExpressionError(f"unknown symbol(s) {sorted(map(str, extra))}; allowed variables are {tuple(variables)}")
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ExpressionError(f"{text!r} is not finite")
    return expr
