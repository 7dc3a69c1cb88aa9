"""Channel secrets at rest: sealed with Fernet under a key from the setting or a key file
made once with mode 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tests.conftest import make_settings

from narrate.errors import InvalidInput, InvalidState
from narrate.services.secret_box import KEY_FILE, secret_box


def test_sealed_secret_opens_and_does_not_hold_the_clear_text(tmp_path: Path) -> None:
    box = secret_box(make_settings(tmp_path, "sqlite://"))
    sealed = box.seal("hmac secret 1234")
    assert sealed.startswith("fernet:")
    assert "hmac secret" not in sealed
    assert box.seal("hmac secret 1234") != sealed  # a fresh IV every time
    assert box.open(sealed) == "hmac secret 1234"


def test_key_file_is_created_once_private_and_reused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://")
    sealed = secret_box(settings).seal("s3cret-value")
    path = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert secret_box(settings).open(sealed) == "s3cret-value"  # a new box, same key
    assert path.read_bytes() == first
    assert not list(settings.data_dir.glob(f".{KEY_FILE}*"))  # no temporary left


def test_the_setting_wins_over_the_key_file(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = make_settings(tmp_path, "sqlite://", encryption_key=key)
    sealed = secret_box(settings).seal("abc12345")
    assert Fernet(key.encode()).decrypt(sealed.removeprefix("fernet:").encode()) == b"abc12345"
    assert not (settings.data_dir / KEY_FILE).exists()


def test_another_key_cannot_open_a_secret(tmp_path: Path) -> None:
    sealed = secret_box(make_settings(tmp_path / "a", "sqlite://")).seal("abc12345")
    other = secret_box(make_settings(tmp_path / "b", "sqlite://"))
    with pytest.raises(InvalidState) as err:
        other.open(sealed)
    assert err.value.code == "secret_unreadable"


def test_a_bad_key_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        secret_box(make_settings(tmp_path, "sqlite://", encryption_key="not-a-key"))
    assert err.value.code == "bad_encryption_key"
    assert err.value.details == {"setting": "NARRATE_ENCRYPTION_KEY"}
