"""Channel secrets at rest: a webhook's HMAC secret (and any other secret an alert channel
carries) is stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``).

The key is ``NARRATE_ENCRYPTION_KEY`` when set, else ``<data dir>/encryption_key``, created
once with mode 0600 by whichever process needs it first (written to a temporary file, then
hard-linked into place, so two processes starting at once agree on one key). Losing the key
loses the stored secrets (not the rules): set them again with ``PATCH /alert-rules/{id}``.
A secret is never returned by the API; rules answer ``"secret_set": true``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from narrate.config import Settings
from narrate.errors import InvalidInput, InvalidState

__all__ = ["KEY_FILE", "PREFIX", "SecretBox", "secret_box"]

KEY_FILE = "encryption_key"
PREFIX = "fernet:"
"""Marks an encrypted value in the database (and tells it from any other text)."""


class SecretBox:
    """Encrypts and decrypts short secrets with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                "NARRATE_ENCRYPTION_KEY is not a Fernet key.",
                code="bad_encryption_key",
                hint="Use 32 random bytes in url-safe base64, e.g. the output of "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`.",
                details={"setting": "NARRATE_ENCRYPTION_KEY"},
            ) from exc

    def seal(self, secret: str) -> str:
        """The secret encrypted, as text for a JSON column."""
        return PREFIX + self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The secret back from :meth:`seal`'s text.

        Raises:
            InvalidState: ``secret_unreadable`` when it was sealed with another key.
        """
        token = sealed.removeprefix(PREFIX).encode("ascii")
        try:
            return self._fernet.decrypt(token).decode("utf-8")
        except InvalidToken as exc:
            raise InvalidState(
                "A stored channel secret cannot be decrypted with the current key.",
                code="secret_unreadable",
                hint="The encryption key changed; set the channel's secret again.",
            ) from exc


def _read_or_create_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process made the key first: use theirs
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return key


def secret_box(settings: Settings) -> SecretBox:
    """The box for these settings' key (see the module docstring for where it comes from)."""
    if settings.encryption_key:
        return SecretBox(settings.encryption_key.strip().encode("ascii", "replace"))
    return SecretBox(_read_or_create_key(settings.data_dir / KEY_FILE))
