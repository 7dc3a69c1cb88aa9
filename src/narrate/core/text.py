"""Free text a user names things with (datasets, models, tokens): no control characters.

Names and descriptions are shown in pages, written to logs and stored in text columns.
A NUL byte is refused by PostgreSQL (a 500 on one backend and not the other), and other
control characters garble logs and terminals, so they are refused at the service
boundary, for every transport, with a 422 naming the parameter.
"""

from __future__ import annotations

import unicodedata

from narrate.errors import InvalidInput

__all__ = ["check_plain_text"]

_ALLOWED_CONTROLS = frozenset("\t\n\r")


def check_plain_text(value: str, *, parameter: str) -> str:
    """Return ``value`` unchanged when it holds no control characters.

    Args:
        value: A name or description as sent.
        parameter: The request parameter it came from (named in the error).

    Returns:
        The value.

    Raises:
        InvalidInput: It holds a control character other than tab and line breaks.
    """
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            raise InvalidInput(
                f"'{parameter}' holds the control character U+{ord(char):04X} at position "
                f"{position + 1}; use printable text.",
                code="control_characters",
                details={"parameter": parameter, "position": position + 1},
            )
    return value
