"""The input of a scheduled batch: an ``s3://bucket/key`` path read with the blob store's
S3 settings (``NARRATE_S3_ENDPOINT_URL``, ``NARRATE_S3_REGION``, the access keys).

The object is checked against ``NARRATE_MAX_UPLOAD_MB`` before it is read, then copied
into the upload spool and handed to the batch job like an uploaded file (so every format
an upload accepts works, by the key's extension).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from narrate.config import Settings
from narrate.errors import ExternalServiceError, InvalidInput, TooLarge
from narrate.services.spool import SPOOL_PREFIX, spool_dir

__all__ = ["MAX_PATH_CHARS", "check_s3_path", "fetch_s3"]

MAX_PATH_CHARS = 1024


def check_s3_path(path: str) -> str:
    """Check the form of ``s3://bucket/key`` (not that the object exists: it may be
    written before the schedule fires).

    Raises:
        InvalidInput: ``invalid_path`` naming ``action.path``.
    """
    details = {"parameter": "action.path", "value": path[:MAX_PATH_CHARS]}
    rest = path[5:] if path.startswith("s3://") else ""
    bucket, _, key = rest.partition("/")
    problem = None
    if len(path) > MAX_PATH_CHARS:
        problem = f"is {len(path)} characters long; at most {MAX_PATH_CHARS} are accepted"
    elif not path.startswith("s3://"):
        problem = "does not start with s3://"
    elif not bucket or not key or key.endswith("/"):
        problem = "does not name a bucket and an object key"
    elif any(ord(ch) < 32 for ch in path):
        problem = "holds control characters"
    if problem:
        raise InvalidInput(
            f"action.path '{path[:200]}' {problem}.",
            code="invalid_path",
            hint="Use s3://bucket/folder/file.csv (CSV, TSV, Parquet, Excel or JSON).",
            details=details,
        )
    return path


def _filesystem(settings: Settings) -> Any:
    import fsspec

    client_kwargs: dict[str, Any] = {}
    if settings.s3_endpoint_url:
        client_kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_region:
        client_kwargs["region_name"] = settings.s3_region
    options: dict[str, Any] = {"client_kwargs": client_kwargs, "skip_instance_cache": True}
    if settings.s3_access_key_id:
        options["key"] = settings.s3_access_key_id
        options["secret"] = settings.s3_secret_access_key
    return fsspec.filesystem("s3", **options)


def fetch_s3(settings: Settings, path: str) -> tuple[Path, str]:
    """Copy the object at ``path`` into a new spool folder.

    Returns:
        The local file and the file name (the key's last part); the caller removes the
        file's folder when done.

    Raises:
        TooLarge: the object is larger than ``NARRATE_MAX_UPLOAD_MB``.
        ExternalServiceError: ``s3_read_failed``: missing, not allowed, or S3 unreachable.
    """
    name = PurePosixPath(path[5:]).name
    folder = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX + "s3-", dir=spool_dir(settings)))
    local = folder / "input.bin"
    try:
        fs = _filesystem(settings)
        size = int(fs.size(path))
        if size > settings.max_upload_bytes:
            raise TooLarge(
                f"{path} is {size / 1e6:,.1f} MB; at most {settings.max_upload_mb} MB "
                "(NARRATE_MAX_UPLOAD_MB) are scored.",
                details={"parameter": "action.path", "limit_mb": settings.max_upload_mb},
            )
        fs.get_file(path, str(local))
    except TooLarge:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except (OSError, ValueError) as exc:  # s3fs raises FileNotFoundError, PermissionError ...
        shutil.rmtree(folder, ignore_errors=True)
        raise ExternalServiceError(
            f"Could not read {path}: {type(exc).__name__}: {exc}",
            code="s3_read_failed",
            hint="Check that the object exists and NARRATE_S3_* settings can read it.",
            details={"parameter": "action.path", "path": path},
        ) from exc
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return local, name
