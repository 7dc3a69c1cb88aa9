"""The allow-list of SQL syntax for user expressions, and the renderer that enforces it.

``narrate.core.data.expressions`` parses an expression with :class:`SqlDialect`;
:class:`TreeRenderer` then walks the tree and writes the SQL Polars will run, node by node,
refusing any node type (or any argument of a node) that is not listed here. See
``docs/security.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import TokenType, exp
from sqlglot.dialects.postgres import Postgres

from narrate.errors import BadRequest

__all__ = ["ALLOWED_FUNCTIONS", "CHAINS", "LEAVES", "SqlDialect", "TreeRenderer", "refuse", "shown"]

ALLOWED_FUNCTIONS = frozenset(
    {
        # numbers
        "abs", "cbrt", "ceil", "ceiling", "div", "exp", "floor", "ln", "log", "log10", "log2",
        "mod", "pi", "pow", "power", "round", "sign", "sqrt", "trunc",
        # null handling and choices
        "coalesce", "greatest", "ifnull", "least", "nullif",
        # text
        "bit_length", "char_length", "character_length", "concat", "concat_ws",
        "ends_with", "initcap", "left", "length", "lower", "ltrim", "octet_length",
        "regexp_like", "replace", "reverse", "right", "rtrim", "starts_with", "strpos",
        "substr", "trim", "upper",
        # dates
        "date", "date_part", "strftime", "timestamp",
    }
)  # fmt: skip
_EXTRACT_UNITS = frozenset(
    {
        "century", "day", "days", "decade", "dow", "doy", "epoch", "hour", "hours", "isodow",
        "isoweek", "isoyear", "microsecond", "microseconds", "millennium", "millisecond",
        "milliseconds", "minute", "minutes", "month", "months", "nanosecond", "nanoseconds",
        "quarter", "second", "seconds", "week", "weeks", "year", "years", "dayofweek",
        "dayofyear", "time", "date",
    }
)  # fmt: skip
_TYPES = {
    exp.DataType.Type.TINYINT: "TINYINT",
    exp.DataType.Type.SMALLINT: "SMALLINT",
    exp.DataType.Type.INT: "INTEGER",
    exp.DataType.Type.BIGINT: "BIGINT",
    exp.DataType.Type.UTINYINT: "UTINYINT",
    exp.DataType.Type.USMALLINT: "USMALLINT",
    exp.DataType.Type.UINT: "UINTEGER",
    exp.DataType.Type.UBIGINT: "UBIGINT",
    exp.DataType.Type.FLOAT: "FLOAT",
    exp.DataType.Type.DOUBLE: "DOUBLE",
    exp.DataType.Type.DECIMAL: "DOUBLE",
    exp.DataType.Type.VARCHAR: "VARCHAR",
    exp.DataType.Type.NVARCHAR: "VARCHAR",
    exp.DataType.Type.CHAR: "VARCHAR",
    exp.DataType.Type.NCHAR: "VARCHAR",
    exp.DataType.Type.TEXT: "VARCHAR",
    exp.DataType.Type.BOOLEAN: "BOOLEAN",
    exp.DataType.Type.DATE: "DATE",
    exp.DataType.Type.DATETIME: "TIMESTAMP",
    exp.DataType.Type.TIMESTAMP: "TIMESTAMP",
    exp.DataType.Type.TIME: "TIME",
}
_BINARY: dict[type[exp.Expr], str] = {
    exp.And: "AND", exp.Or: "OR", exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/",
    exp.Mod: "%", exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<",
    exp.LTE: "<=", exp.DPipe: "||", exp.Like: "LIKE", exp.ILike: "ILIKE",
    exp.NullSafeEQ: "IS NOT DISTINCT FROM", exp.NullSafeNEQ: "IS DISTINCT FROM",
}  # fmt: skip
# The arguments each allowed node may carry; any other argument (sqlglot adds flags such as
# ``negate`` or ``format``) refuses the node, so nothing is silently dropped.
_BINARY_ARGS = frozenset({"this", "expression"})
_ARGS: dict[type[exp.Expr], frozenset[str]] = {
    **dict.fromkeys(_BINARY, _BINARY_ARGS),
    exp.Like: _BINARY_ARGS | {"negate"},
    exp.ILike: _BINARY_ARGS | {"negate"},
    exp.Is: _BINARY_ARGS | {"negate"},
    exp.DPipe: _BINARY_ARGS | {"safe"},
    exp.Div: _BINARY_ARGS | {"typed", "safe"},
    exp.Escape: _BINARY_ARGS,
    exp.Column: frozenset({"this"}),
    exp.Literal: frozenset({"this", "is_string"}),
    exp.Boolean: frozenset({"this"}),
    exp.Null: frozenset(),
    exp.Paren: frozenset({"this"}),
    exp.Neg: frozenset({"this"}),
    exp.Not: frozenset({"this"}),
    exp.In: frozenset({"this", "expressions"}),
    exp.Between: frozenset({"this", "low", "high"}),
    exp.Case: frozenset({"this", "ifs", "default"}),
    exp.If: frozenset({"this", "true"}),
    exp.Cast: frozenset({"this", "to"}),
    exp.TryCast: frozenset({"this", "to", "safe"}),
    exp.Extract: frozenset({"this", "expression"}),
    exp.Trim: frozenset({"this", "position", "expression"}),
    exp.Substring: frozenset({"this", "start", "length"}),
    exp.Anonymous: frozenset({"this", "expressions"}),
}
LEAVES = (exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Var, exp.DataType)
# Chains of these (a OR b OR c ...) count as one level of nesting.
CHAINS = (exp.And, exp.Or, exp.Add, exp.Mul, exp.DPipe)
_UNSET: tuple[object, ...] = (None, False, "", [])
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_FUNCTION_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
# Names for rejected constructs, so the message says what was refused in SQL words.
_CONSTRUCTS = {
    exp.Select: "a sub-query (SELECT)",
    exp.Subquery: "a sub-query",
    exp.Exists: "EXISTS with a sub-query",
    exp.Union: "UNION",
    exp.Table: "a table",
    exp.Star: "'*'",
    exp.Placeholder: "a parameter placeholder",
    exp.Parameter: "a parameter",
    exp.Bracket: "an index [..]",
    exp.Dot: "a qualified name",
    exp.RawString: "a $$-quoted string",
    exp.ByteString: "an escaped E'...' string",
    exp.UnicodeString: "a U&'...' string",
    exp.HexString: "a hex string",
    exp.BitString: "a bit string",
    exp.Tuple: "a tuple",
    exp.Any: "ANY",
    exp.All: "ALL",
    exp.Collate: "COLLATE",
    exp.Window: "a window (OVER)",
}


class SqlDialect(Postgres):
    """PostgreSQL syntax, but every function call parses to a plain named call.

    sqlglot would otherwise turn known functions into its own nodes and render them in
    its own way (``log10(x)`` becomes ``LOG(10, x)``); here the user's function name is
    kept and checked against ``ALLOWED_FUNCTIONS``.
    """

    class Parser(Postgres.Parser):  # type: ignore[misc,valid-type]
        FUNCTIONS: dict[str, Callable[..., exp.Expression]] = {}  # noqa: RUF012
        NO_PAREN_FUNCTIONS: dict[TokenType, type[exp.Func]] = {}  # noqa: RUF012
        FUNCTION_PARSERS = {  # noqa: RUF012
            name: parser
            for name, parser in Postgres.Parser.FUNCTION_PARSERS.items()
            if name in {"CAST", "TRY_CAST", "EXTRACT", "TRIM", "SUBSTRING"}
        }


def shown(expression: str) -> str:
    return expression if len(expression) <= 120 else expression[:117] + "..."


def refuse(message: str, parameter: str, expression: str) -> BadRequest:
    return BadRequest(
        f"The {parameter} '{shown(expression)}' is not allowed: {message}",
        code="forbidden_expression",
        hint="Write one expression over the table's columns, e.g. age > 30 AND city = 'Oslo'.",
        details={"parameter": parameter},
    )


def _construct(node: exp.Expr) -> str:
    for kind, name in _CONSTRUCTS.items():
        if isinstance(node, kind):
            return name
    return f"'{node.key.upper()}'"


class TreeRenderer:
    """Renders an allow-listed tree as Polars SQL, refusing every other node."""

    def __init__(self, parameter: str, expression: str) -> None:
        self.parameter = parameter
        self.expression = expression

    def refuse(self, message: str) -> BadRequest:
        return refuse(message, self.parameter, self.expression)

    def render(self, node: exp.Expr) -> str:
        allowed = _ARGS.get(type(node))
        if allowed is None:
            raise self.refuse(f"{_construct(node)} is not allowed in an expression.")
        extra = [v for k, v in node.args.items() if k not in allowed and v not in _UNSET]
        if extra:
            what = [_construct(v) if isinstance(v, exp.Expr) else repr(v) for v in extra]
            raise self.refuse(f"{_construct(node)} with {', '.join(what)} is not allowed.")
        if isinstance(node, exp.Column):
            return self.column(node)
        if isinstance(node, exp.Literal):
            return self.literal(node)
        if isinstance(node, exp.Boolean):
            return "TRUE" if node.this else "FALSE"
        if isinstance(node, exp.Null):
            return "NULL"
        if isinstance(node, exp.Paren):
            return f"({self.render(node.this)})"
        if isinstance(node, exp.Neg):
            return f"-({self.render(node.this)})"
        if isinstance(node, exp.Not):
            return f"NOT ({self.render(node.this)})"
        if type(node) in _BINARY:
            text = self.binary(node)
            return f"NOT ({text})" if node.args.get("negate") else text
        if isinstance(node, exp.Escape):
            like = self.render(node.this)
            return f"{like} ESCAPE {self.literal(node.expression, string=True)}"
        if isinstance(node, exp.Is):
            negate = "NOT " if node.args.get("negate") else ""
            return f"({self.render(node.this)}) IS {negate}{self.render(node.expression)}"
        if isinstance(node, exp.In):
            return self.in_list(node)
        if isinstance(node, exp.Between):
            low, high = self.render(node.args["low"]), self.render(node.args["high"])
            return f"({self.render(node.this)}) BETWEEN ({low}) AND ({high})"
        if isinstance(node, exp.Case):
            return self.case(node)
        if isinstance(node, exp.Cast):  # TryCast is a Cast
            return self.cast(node)
        if isinstance(node, exp.Extract):
            return self.extract(node)
        if isinstance(node, exp.Trim):
            return self.trim(node)
        if isinstance(node, exp.Substring):
            args = [node.this, node.args.get("start"), node.args.get("length")]
            return f"SUBSTRING({', '.join(self.render(a) for a in args if a is not None)})"
        if isinstance(node, exp.Anonymous):
            return self.function(node)
        raise self.refuse(f"{_construct(node)} is not allowed in an expression.")

    def column(self, node: exp.Column) -> str:
        if node.args.get("table") or node.args.get("db") or node.args.get("catalog"):
            raise self.refuse("qualified names (table.column) are not allowed.")
        name = node.this
        if not isinstance(name, exp.Identifier) or not isinstance(name.this, str):
            raise self.refuse(f"{_construct(node)} is not a column name.")
        return '"' + name.this.replace('"', '""') + '"'

    def literal(self, node: exp.Expr, *, string: bool = False) -> str:
        if not isinstance(node, exp.Literal) or (string and not node.is_string):
            raise self.refuse(f"{_construct(node)} is not allowed here; use a quoted text.")
        text = str(node.this)
        if node.is_string:
            return "'" + text.replace("'", "''") + "'"
        if not _NUMBER.match(text):
            raise self.refuse(f"'{text}' is not a number.")
        return text

    def binary(self, node: exp.Expr) -> str:
        operator = _BINARY[type(node)]
        if isinstance(node, CHAINS):  # iterative, so a long chain costs no recursion
            parts = [self.render(part) for part in node.flatten()]
            return f" {operator} ".join(f"({part})" for part in parts)
        left, right = self.render(node.this), self.render(node.expression)
        return f"({left}) {operator} ({right})"

    def in_list(self, node: exp.In) -> str:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise self.refuse("IN takes a list of values, e.g. city IN ('Oslo', 'Paris').")
        values = ", ".join(self.render(value) for value in node.expressions)
        return f"({self.render(node.this)}) IN ({values})"

    def case(self, node: exp.Case) -> str:
        parts = ["CASE"]
        if node.this is not None:
            parts.append(f"({self.render(node.this)})")
        for branch in node.args.get("ifs") or []:
            if not isinstance(branch, exp.If):
                raise self.refuse(f"{_construct(branch)} is not allowed in CASE.")
            when, then = self.render(branch.this), self.render(branch.args["true"])
            parts.append(f"WHEN ({when}) THEN ({then})")
        if node.args.get("default") is not None:
            parts.append(f"ELSE ({self.render(node.args['default'])})")
        parts.append("END")
        return " ".join(parts)

    def cast(self, node: exp.Cast) -> str:
        to = node.args.get("to")
        name = _TYPES.get(to.this) if isinstance(to, exp.DataType) else None
        if name is None:
            shown = to.sql() if isinstance(to, exp.Expression) else "?"
            allowed = ", ".join(sorted(set(_TYPES.values())))
            raise self.refuse(f"'{shown}' is not a type Narrate casts to; use one of {allowed}.")
        function = "TRY_CAST" if isinstance(node, exp.TryCast) or node.args.get("safe") else "CAST"
        return f"{function}({self.render(node.this)} AS {name})"

    def extract(self, node: exp.Extract) -> str:
        unit = node.this
        word = unit.name.lower() if isinstance(unit, exp.Var | exp.Identifier | exp.Column) else ""
        if word not in _EXTRACT_UNITS:
            allowed = ", ".join(sorted(_EXTRACT_UNITS))
            raise self.refuse(f"EXTRACT takes a date part ({allowed}).")
        return f"EXTRACT({word.upper()} FROM {self.render(node.expression)})"

    def trim(self, node: exp.Trim) -> str:
        position = str(node.args.get("position") or "").upper()
        if position not in ("", "LEADING", "TRAILING", "BOTH"):
            raise self.refuse(f"TRIM {position} is not allowed.")
        chars = node.args.get("expression")
        if chars is None and not position:
            return f"TRIM({self.render(node.this)})"
        what = " ".join(p for p in (position, self.render(chars) if chars else "") if p)
        return f"TRIM({what} FROM {self.render(node.this)})"

    def function(self, node: exp.Anonymous) -> str:
        name = node.this
        if not isinstance(name, str):
            shown = name.sql() if isinstance(name, exp.Expression) else "?"
            raise self.refuse(f"{shown} is not a function Narrate allows.")
        word = name.lower()
        if not _FUNCTION_NAME.match(word) or word not in ALLOWED_FUNCTIONS:
            raise self.refuse(
                f"'{name}' is not a function Narrate allows. Allowed: "
                + ", ".join(sorted(ALLOWED_FUNCTIONS))
                + ", and CAST, TRY_CAST, EXTRACT, SUBSTRING, TRIM."
            )
        if not node.expressions and word != "pi":
            raise self.refuse(f"'{name}' needs at least one argument.")
        return f"{word}({', '.join(self.render(arg) for arg in node.expressions)})"
