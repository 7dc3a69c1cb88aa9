"""Numbers written with decimal commas or thousands separators, turned into real numbers."""

from __future__ import annotations

import polars as pl

__all__ = ["NumberStyle", "convert_formatted_numbers", "detect_number_style"]

# "1.234,5" / "1,5" / "12" (decimal comma, optional dot thousands)
_COMMA_DECIMAL = r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"
# "1,234.5" / "1,234" / "12.5" (dot decimal, comma thousands)
_DOT_DECIMAL = r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$"
# Values that can only be decimal commas: not three digits after the comma, or dot thousands.
_SURE_COMMA = r"^[+-]?\d+,(\d{1,2}|\d{4,})$|^[+-]?\d{1,3}(\.\d{3})+,\d+$"
_SAMPLE = 2_000


class NumberStyle:
    """How a file writes numbers: ``"comma"`` (1.234,5) or ``"dot"`` (1,234.5)."""

    COMMA = "comma"
    DOT = "dot"


def detect_number_style(frame: pl.DataFrame, delimiter: str) -> str:
    """Decide whether the file uses decimal commas, from a sample of its string columns.

    Args:
        frame: The frame as read, all columns strings.
        delimiter: The file's delimiter; a comma-delimited file is never decimal-comma.

    Returns:
        ``NumberStyle.COMMA`` or ``NumberStyle.DOT``.
    """
    if delimiter == ",":
        return NumberStyle.DOT
    head = frame.head(_SAMPLE)
    names = [name for name, dtype in head.schema.items() if dtype == pl.String]
    if not names:
        return NumberStyle.DOT
    hits = head.select(
        pl.any_horizontal(
            pl.col(n).str.strip_chars().str.contains(_SURE_COMMA).any() for n in names
        )
    ).item()
    return NumberStyle.COMMA if hits else NumberStyle.DOT


def _converted(name: str, style: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    if style == NumberStyle.COMMA:
        plain = text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        plain = text.str.replace_all(",", "", literal=True)
    return plain.cast(pl.Float64, strict=False)


def convert_formatted_numbers(frame: pl.DataFrame, style: str) -> tuple[pl.DataFrame, list[str]]:
    """Turn string columns of separator-formatted numbers into Float64 columns.

    A column is converted only when every non-empty value matches the style and some of
    the first rows actually use a comma; plain numbers are left for type inference.

    Args:
        frame: The frame as read, all columns strings.
        style: ``NumberStyle.COMMA`` or ``NumberStyle.DOT``.

    Returns:
        The frame with converted columns, and the names of the converted columns.
    """
    pattern = _COMMA_DECIMAL if style == NumberStyle.COMMA else _DOT_DECIMAL
    names = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not names:
        return frame, []
    # One pass over the head for every column: a select per column walks the whole
    # (possibly very wide) frame each time.
    matches = frame.head(_SAMPLE).select(_head_matches(n, pattern) for n in names).row(0)
    candidates = [n for n, is_match in zip(names, matches, strict=True) if is_match]
    if not candidates:
        return frame, []
    checks = frame.select(
        pl.struct(
            all_match=_all_match(n, pattern),
            has_comma=pl.col(n).str.contains(",", literal=True).any(),
        ).alias(n)
        for n in candidates
    ).row(0, named=True)
    chosen = [n for n in candidates if checks[n]["all_match"] and checks[n]["has_comma"]]
    if not chosen:
        return frame, []
    return frame.with_columns(_converted(n, style).alias(n) for n in chosen), chosen


def _all_match(name: str, pattern: str) -> pl.Expr:
    text = pl.col(name).str.strip_chars()
    return (text.str.contains(pattern) | pl.col(name).is_null()).all()


def _head_matches(name: str, pattern: str) -> pl.Expr:
    has_value = pl.col(name).is_not_null().any()
    has_comma = pl.col(name).str.contains(",", literal=True).any()
    return (has_value & _all_match(name, pattern) & has_comma).alias(name)
