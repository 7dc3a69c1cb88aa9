"""User-written SQL expressions (row filters, derived columns), parsed and allow-listed.

Polars SQL resolves sub-queries while it *parses* an expression, and a sub-query may read
any file the server can (``read_csv('/etc/passwd')``); its errors then echo what it read.
Checking the *text* for dangerous words is not enough: comments, quotes and escapes make
text mean something other than it seems. So an expression is parsed with a real SQL
parser (sqlglot) into a syntax tree, every node of the tree must be on an allow-list
(column references, literals, arithmetic, comparisons, boolean logic, ``CASE``, casts and
a listed set of scalar functions), and the text Polars finally sees is *rendered from that
tree* (``narrate.core.data.sql_render``): identifiers always quoted, strings always
single-quoted with quotes doubled, no comments, nothing the tree did not hold. Nothing the
user typed reaches Polars' parser verbatim, and Polars evaluates it as an expression over
one frame, with no tables registered. Length and nesting are limited before parsing (settings
``max_expression_chars`` and ``max_expression_depth``).

See ``docs/security.md`` for the threat model.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import cast

import polars as pl
import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import SqlglotError

from narrate.core.data.sql_render import (
    ALLOWED_FUNCTIONS,
    CHAINS,
    LEAVES,
    SqlDialect,
    TreeRenderer,
    refuse,
    shown,
)
from narrate.errors import InvalidInput

__all__ = [
    "ALLOWED_FUNCTIONS",
    "POLARS_ERRORS",
    "ExpressionLimits",
    "check_expression",
    "compile_expression",
    "configure_expression_limits",
    "filter_rows",
    "render_expression",
]

# Polars reports some bad input by panicking in Rust, which reaches Python as a
# BaseException; it is an input error like the others.
POLARS_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    cast("type[BaseException]", pl.exceptions.PanicException),
)
_EVALUATION_ERRORS: tuple[type[BaseException], ...] = (*POLARS_ERRORS, ValueError, TypeError)
# sqlglot's parser is recursive descent: about 20 Python frames per level of brackets.
_FRAMES_PER_LEVEL = 24


@dataclass(frozen=True)
class ExpressionLimits:
    """How long and how deeply nested an expression may be."""

    max_chars: int = 4096
    max_depth: int = 64


_limits = ExpressionLimits()


def configure_expression_limits(max_chars: int, max_depth: int) -> None:
    """Set the process-wide limits (from settings, when a container is built).

    Args:
        max_chars: ``Settings.max_expression_chars``.
        max_depth: ``Settings.max_expression_depth``.
    """
    global _limits  # one value per process, set once from settings
    _limits = ExpressionLimits(max_chars, max_depth)


def _too_big(message: str, code: str, parameter: str, limit: int, setting: str) -> InvalidInput:
    return InvalidInput(
        f"The {parameter} is {message}.",
        code=code,
        hint="Split it into several steps, or use IN (...) instead of many ORs.",
        details={"parameter": parameter, "limit": limit, "setting": setting},
    )


def _check_size(expression: str, parameter: str, limits: ExpressionLimits) -> None:
    """Refuse over-long or over-deep text before the (recursive) parser sees it."""
    if len(expression) > limits.max_chars:
        raise _too_big(
            f"{len(expression):,} characters long; at most {limits.max_chars:,} are allowed",
            "expression_too_long",
            parameter,
            limits.max_chars,
            "NARRATE_MAX_EXPRESSION_CHARS",
        )
    try:
        tokens = SqlDialect().tokenize(expression)
    except SqlglotError as exc:
        raise _invalid(expression, parameter, exc) from exc
    depth = deepest = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in (TokenType.R_PAREN, TokenType.END):
            depth -= 1
    if deepest > limits.max_depth:
        raise _depth_error(deepest, parameter, limits)


def _depth_error(depth: int | None, parameter: str, limits: ExpressionLimits) -> InvalidInput:
    found = f"nested {depth} levels deep" if depth else "nested too deeply"
    return _too_big(
        f"{found}; at most {limits.max_depth} levels of brackets, functions and CASE are allowed",
        "expression_too_deep",
        parameter,
        limits.max_depth,
        "NARRATE_MAX_EXPRESSION_DEPTH",
    )


def _invalid(expression: str, parameter: str, exc: BaseException) -> InvalidInput:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InvalidInput(
        f"The {parameter} '{shown(expression)}' is not valid SQL: {first}",
        code="invalid_expression",
        details={"parameter": parameter},
    )


def _parse(expression: str, parameter: str, limits: ExpressionLimits) -> exp.Expr:
    needed = sys.getrecursionlimit()
    # Raised once, never lowered: Python-to-Python calls use no C stack on 3.11+.
    sys.setrecursionlimit(max(needed, 1000 + _FRAMES_PER_LEVEL * (limits.max_depth + 2)))
    try:
        trees = sqlglot.parse(expression, dialect=SqlDialect)
    except RecursionError as exc:
        raise _depth_error(None, parameter, limits) from exc
    except SqlglotError as exc:
        raise _invalid(expression, parameter, exc) from exc
    statements = [tree for tree in trees if tree is not None]
    if not statements:
        raise InvalidInput(
            f"The {parameter} holds no expression (only spaces or comments).",
            code="invalid_expression",
            details={"parameter": parameter},
        )
    if len(statements) != 1:
        raise refuse("write exactly one expression, without ';'.", parameter, expression)
    return statements[0]


def _tree_depth(tree: exp.Expr) -> int:
    """Nesting depth of the operators and calls in the tree (names and values don't count).

    A chain of the same associative operator (``a OR b OR c``) counts as one level.
    """
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in node.iter_expressions():
            if isinstance(child, LEAVES):
                continue
            same_chain = isinstance(node, CHAINS) and type(child) is type(node)
            stack.append((child, depth if same_chain else depth + 1))
    return deepest


def render_expression(
    expression: str, *, parameter: str = "filter", limits: ExpressionLimits | None = None
) -> str:
    """Parse, allow-list and re-render a user's expression as the SQL Polars will run.

    Args:
        expression: e.g. ``"age > 30 AND upper(city) = 'OSLO'"``.
        parameter: The request parameter it came from (named in errors).
        limits: Length and depth limits; the process-wide ones when None.

    Returns:
        The expression rendered from its checked syntax tree.

    Raises:
        BadRequest: It holds anything but a plain expression: a sub-query, a table, a
            function outside ``ALLOWED_FUNCTIONS``, several statements (code
            ``forbidden_expression``, 400).
        InvalidInput: It does not parse (``invalid_expression``), or is longer or deeper
            than the limits (``expression_too_long`` / ``expression_too_deep``, 422).
    """
    limits = limits or _limits
    _check_size(expression, parameter, limits)
    tree = _parse(expression, parameter, limits)
    depth = _tree_depth(tree)
    if depth > limits.max_depth:
        raise _depth_error(depth, parameter, limits)
    return TreeRenderer(parameter, expression).render(tree)


def check_expression(expression: str, *, parameter: str = "filter") -> None:
    """Refuse anything but a plain, allowed SQL expression (see :func:`render_expression`)."""
    render_expression(expression, parameter=parameter)


def compile_expression(expression: str, *, parameter: str = "expression") -> pl.Expr:
    """Turn a user's expression into a Polars expression, safely.

    Args:
        expression: e.g. ``"income / (age + 1)"``.
        parameter: The request parameter it came from (named in errors).

    Returns:
        The Polars expression (not yet bound to a frame).

    Raises:
        BadRequest: See :func:`render_expression`.
        InvalidInput: See :func:`render_expression`; also when Polars cannot compile it.
    """
    sql = render_expression(expression, parameter=parameter)
    try:
        return pl.sql_expr(sql)
    except _EVALUATION_ERRORS as exc:
        raise _invalid(expression, parameter, exc) from exc


def filter_rows(df: pl.DataFrame, expression: str, *, parameter: str = "filter") -> pl.DataFrame:
    """Keep the rows where a SQL condition holds (Polars SQL; never Python eval).

    Args:
        df: The table.
        expression: One condition, e.g. ``"island = 'Torgersen' AND year >= 2008"``.
        parameter: The request parameter it came from (named in errors).

    Returns:
        The matching rows.

    Raises:
        BadRequest: The condition uses something other than a plain expression.
        InvalidInput: It does not parse, names an unknown column or is not true/false.
    """
    expr = compile_expression(expression, parameter=parameter)
    try:
        return df.filter(expr)
    except _EVALUATION_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(
            f"The {parameter} '{shown(expression)}' is not a valid condition: {first}",
            code="invalid_expression",
            details={"parameter": parameter},
        ) from exc
