from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from narrate.config import Settings, load_settings


def test_defaults_put_sqlite_and_blobs_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NARRATE_SECRET_KEY", raising=False)
    s = load_settings(data_dir=tmp_path / "d")
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'd' / 'narrate.db').resolve()}"
    assert s.resolved_storage_url == str((tmp_path / "d" / "blobs").resolve())
    assert s.max_upload_mb == 200
    assert s.max_upload_bytes == 200 * 1024 * 1024


def test_secret_key_is_generated_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NARRATE_SECRET_KEY", raising=False)
    first = load_settings(data_dir=tmp_path)
    second = load_settings(data_dir=tmp_path)
    assert first.secret_key and len(first.secret_key) >= 40
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_environment_variables_with_prefix_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NARRATE_DATABASE_URL", "postgresql+psycopg://u:p@db/narrate")
    monkeypatch.setenv("NARRATE_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("NARRATE_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("NARRATE_CORS_ORIGINS", "https://a.example, https://b.example")
    s = load_settings()
    assert s.resolved_database_url == "postgresql+psycopg://u:p@db/narrate"
    assert s.resolved_storage_url == "s3://bucket/prefix"
    assert s.max_upload_bytes == 5 * 1024 * 1024
    assert s.cors_origins == ["https://a.example", "https://b.example"]


def test_invalid_upload_limit_is_rejected_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NARRATE_MAX_UPLOAD_MB", "0")
    with pytest.raises(ValidationError, match="max_upload_mb"):
        Settings()


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"NARRATE_{name.upper()}" in doc, f"NARRATE_{name.upper()} missing from docs"
