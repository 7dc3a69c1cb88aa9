"""Row filters written as one SQL condition, checked before Polars ever sees them.

Polars SQL resolves sub-queries while it *parses* an expression, and a sub-query may read
any file the server can (``read_csv('/etc/passwd')``, ``read_parquet(...)``); its error
messages then echo what it read. So a filter is first split into tokens here and must be
a plain expression: column names, literals, operators and an allow-list of scalar
functions. ``SELECT``, ``FROM`` (except inside ``EXTRACT``/``SUBSTRING``/``TRIM``), other
query keywords, ``;`` and unknown functions are refused with a 400 naming the parameter.
"""

from __future__ import annotations

import re

import polars as pl

from narrate.errors import BadRequest, InvalidInput

__all__ = ["ALLOWED_FUNCTIONS", "check_expression", "filter_rows"]

ALLOWED_FUNCTIONS = frozenset(
    {
        # numbers
        "abs", "cbrt", "ceil", "ceiling", "div", "exp", "floor", "ln", "log", "log10", "log2",
        "mod", "pi", "pow", "power", "round", "sign", "sqrt", "trunc",
        # null handling and choices
        "coalesce", "greatest", "ifnull", "least", "nullif", "nvl",
        # text
        "bit_length", "btrim", "char_length", "character_length", "concat", "concat_ws",
        "ends_with", "initcap", "left", "length", "lower", "ltrim", "octet_length",
        "regexp_like", "replace", "reverse", "right", "rtrim", "starts_with", "strpos",
        "substr", "substring", "trim", "upper",
        # dates and types
        "cast", "date", "date_part", "extract", "strftime", "timestamp", "try_cast",
    }
)  # fmt: skip
# Words that are part of an expression (may precede "(" without being a function).
_EXPRESSION_WORDS = frozenset(
    {
        "all", "and", "any", "as", "asc", "between", "both", "case", "desc", "distinct",
        "else", "end", "escape", "false", "for", "ilike", "in", "interval", "is", "leading",
        "like", "not", "null", "or", "rlike", "similar", "some", "then", "to", "trailing",
        "true", "when", "xor",
        # type names that take a size: CAST(x AS VARCHAR(10))
        "char", "decimal", "numeric", "varchar",
    }
)  # fmt: skip
# Words that only appear in queries, never in a plain condition.
_QUERY_WORDS = frozenset(
    {
        "select", "with", "union", "intersect", "except", "join", "table", "values", "into",
        "lateral", "unnest", "exists", "insert", "update", "delete", "drop", "create",
        "copy", "attach", "pragma", "limit", "offset", "order", "group", "having", "window",
        "over", "qualify",
    }
)  # fmt: skip
_FROM_INSIDE = frozenset({"extract", "substring", "trim"})
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")*")
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<word>[^\W\d]\w*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<other>::|<=|>=|<>|!=|\|\||[-+*/%<>=,.~!^&|])
    """,
    re.VERBOSE,
)


def _refuse(message: str, parameter: str, expression: str) -> BadRequest:
    return BadRequest(
        f"The {parameter} '{expression}' is not allowed: {message}",
        code="forbidden_expression",
        hint="Write one condition on the table's columns, e.g. age > 30 AND city = 'Oslo'.",
        details={"parameter": parameter},
    )


def _tokens(expression: str, parameter: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.lastgroup is None:
            char = expression[position]
            raise _refuse(f"the character {char!r} can't be used.", parameter, expression)
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
        position = match.end()
    return tokens


def check_expression(expression: str, *, parameter: str = "filter") -> None:
    """Refuse anything but a plain SQL expression over columns.

    Args:
        expression: e.g. ``"age > 30 AND upper(city) = 'OSLO'"``.
        parameter: The request parameter it came from (named in the error).

    Raises:
        BadRequest: A sub-query, query keyword, ``;`` or a function that is not in
            ``ALLOWED_FUNCTIONS`` (such as ``read_csv``).
    """
    tokens = _tokens(expression, parameter)
    openers: list[str] = []
    for index, (kind, text) in enumerate(tokens):
        follows_open = index + 1 < len(tokens) and tokens[index + 1][0] == "open"
        word = text.lower()
        if kind == "open":
            previous = tokens[index - 1] if index else ("", "")
            openers.append(previous[1].lower() if previous[0] == "word" else "")
        elif kind == "close" and openers:
            openers.pop()
        elif kind == "quoted" and follows_open:
            raise _refuse(f"{text} is not a function Narrate allows.", parameter, expression)
        elif kind != "word":
            continue
        elif word in _QUERY_WORDS:
            raise _refuse(
                f"'{text}' belongs to queries; a filter is one condition.", parameter, expression
            )
        elif word == "from" and (not openers or openers[-1] not in _FROM_INSIDE):
            raise _refuse("'FROM' would read another table.", parameter, expression)
        elif follows_open and word not in _EXPRESSION_WORDS and word not in ALLOWED_FUNCTIONS:
            raise _refuse(
                f"'{text}' is not a function Narrate allows in filters. Allowed: "
                + ", ".join(sorted(ALLOWED_FUNCTIONS))
                + ".",
                parameter,
                expression,
            )


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
    check_expression(expression, parameter=parameter)
    try:
        return df.filter(pl.sql_expr(expression))
    except (pl.exceptions.PolarsError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(
            f"The {parameter} '{expression}' is not a valid condition: {first}",
            code="invalid_expression",
            details={"parameter": parameter},
        ) from exc
