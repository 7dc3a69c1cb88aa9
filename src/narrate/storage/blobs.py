"""Content-addressed artifact store over fsspec: a local folder or any S3-compatible server.

Blobs are addressed by the SHA-256 of their bytes, so storing the same content twice
reuses one object. Writes are atomic: on a local folder a blob is written to a temp name,
fsynced and renamed; on S3 an object only becomes visible when its upload completes, and
we only upload after the hash is known.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import fsspec
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from narrate.errors import InvalidInput, NotFound, StorageUnavailable

__all__ = ["TEMP_PREFIX", "BlobStore", "FsspecBlobStore", "hash_file"]

_CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")
TEMP_PREFIX = "narrate-blob-"
"""Name prefix of a blob being written; a crash mid-write leaves such a file behind."""

_retry_io = retry(
    retry=retry_if_exception_type((ConnectionError, TimeoutError)),
    wait=wait_random_exponential(multiplier=0.1, max=2),
    stop=stop_after_attempt(4),
    reraise=True,
)


class BlobStore(Protocol):
    """Where immutable artifacts (datasets as Parquet, models, reports) are kept."""

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their SHA-256 hex digest."""
        ...

    def put_file(self, path: Path) -> str:
        """Store a local file's bytes; return their digest."""
        ...

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Store a stream of chunks; return their digest."""
        ...

    def get_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes."""
        ...

    def stream(self, digest: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """Yield a blob's bytes in chunks."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for reading."""
        ...

    def exists(self, digest: str) -> bool:
        """Whether a blob is stored."""
        ...

    def delete(self, digest: str) -> None:
        """Remove a blob (used by purges, never by user deletes)."""
        ...

    def check(self) -> None:
        """Raise StorageUnavailable if the store cannot be reached."""
        ...


def hash_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FsspecBlobStore:
    """A :class:`BlobStore` on any fsspec filesystem (``file`` and ``s3`` are tested).

    Args:
        url: A local folder path or ``s3://bucket/prefix``.
        storage_options: Passed to fsspec (endpoint, credentials ...).
    """

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        *,
        temp_dir: Path | None = None,
    ) -> None:
        self.url = url
        self._fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        self._root = root.rstrip("/")
        self._is_local = "file" in _protocols(self._fs)
        # A local blob is renamed into place, so its temp file must be on the same disk;
        # a remote one is uploaded from a known local folder that the sweep can clean.
        self._tmp_dir = Path(self._root, "tmp") if self._is_local else temp_dir
        if self._tmp_dir is not None:
            self._tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _key(self, digest: str) -> str:
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise InvalidInput(
                f"'{digest}' is not a blob id: expected 64 lowercase hex characters.",
                code="invalid_blob_id",
                details={"parameter": "digest"},
            )
        return f"{self._root}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"

    def put_bytes(self, data: bytes) -> str:
        """Store bytes atomically; return the SHA-256 digest."""
        return self.put_stream([data])

    def put_file(self, path: Path) -> str:
        """Store a local file atomically; return the SHA-256 digest."""
        with path.open("rb") as fh:
            return self.put_stream(iter(lambda: fh.read(_CHUNK), b""))

    def put_stream(self, chunks: Iterable[bytes]) -> str:
        """Write chunks to a temp file while hashing, then move it into place atomically.

        Storing content that is already there refreshes the local blob's age, so the
        orphan sweep's grace period protects it until the new record is committed.
        """
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self._tmp_dir)
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    digest.update(chunk)
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            hexdigest = digest.hexdigest()
            if not self.exists(hexdigest):
                self._publish(tmp, self._key(hexdigest))
            elif self._is_local:
                os.utime(self._key(hexdigest))
            return hexdigest
        finally:
            tmp.unlink(missing_ok=True)

    def _publish(self, tmp: Path, key: str) -> None:
        if self._is_local:
            Path(key).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, key)
            return
        self._upload(tmp, key)

    @_retry_io
    def _upload(self, tmp: Path, key: str) -> None:
        try:
            self._fs.put_file(str(tmp), key)
        except (PermissionError, FileNotFoundError) as exc:
            raise StorageUnavailable(
                f"Could not write to the artifact store at {self.url}: {exc}",
                hint="Check the bucket exists and the credentials may write to it.",
            ) from exc

    def get_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes, or raise NotFound."""
        with self.open(digest) as fh:
            data: bytes = fh.read()
        return data

    def stream(self, digest: str, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """Yield a blob in chunks."""
        with self.open(digest) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def open(self, digest: str) -> BinaryIO:
        """Open a blob for reading, or raise NotFound."""
        key = self._key(digest)
        try:
            fh: BinaryIO = self._fs.open(key, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"Blob {digest} is not in the artifact store.") from exc
        return fh

    def copy_to(self, digest: str, dest: Path) -> Path:
        """Copy a blob to a local file (for readers that need a path)."""
        with self.open(digest) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        return dest

    @_retry_io
    def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return bool(self._fs.exists(self._key(digest)))

    def delete(self, digest: str) -> None:
        """Remove a blob if present."""
        key = self._key(digest)
        if self._fs.exists(key):
            self._fs.rm(key)

    def list_blobs(self) -> Iterator[tuple[str, datetime]]:
        """Yield every stored blob's digest and when it was last written (UTC).

        Returns:
            An iterator of ``(digest, modified_at)``; objects that are not blobs are skipped.
        """
        prefix = f"{self._root}/sha256"
        if not self._fs.exists(prefix):
            return
        for key, info in self._fs.find(prefix, detail=True).items():
            digest = str(key).rstrip("/").rsplit("/", 1)[-1]
            if len(digest) == 64 and set(digest) <= _HEX:
                yield digest, _modified(info)

    def sweep_temp(self, *, older_than_s: float, now: float | None = None) -> int:
        """Remove temp files of writes that never finished; return how many.

        Args:
            older_than_s: Minimum age in seconds; younger files may be writes in progress.
            now: The current time as a Unix timestamp (tests pass a later clock).

        Returns:
            The number of files removed.
        """
        if self._tmp_dir is None:
            return 0  # temp files are in the system temp dir, which is not ours to sweep
        now = time.time() if now is None else now
        removed = 0
        # "blob-" was the prefix before TEMP_PREFIX; both are left-overs of this store.
        for path in self._tmp_dir.glob("*blob-*"):
            try:
                if now - path.lstat().st_mtime >= older_than_s:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def check(self) -> None:
        """Write, read back and delete a probe object; raise StorageUnavailable on failure."""
        probe = f"{self._root}/health/{uuid.uuid4().hex}"
        try:
            if self._is_local:
                Path(probe).parent.mkdir(parents=True, exist_ok=True)
            with self._fs.open(probe, "wb") as fh:
                fh.write(b"ok")
            with self._fs.open(probe, "rb") as fh:
                ok = fh.read() == b"ok"
            self._fs.rm(probe)
        except Exception as exc:  # any backend failure means "not ready"
            raise StorageUnavailable(f"Artifact store {self.url} is unreachable: {exc}") from exc
        if not ok:
            raise StorageUnavailable(f"Artifact store {self.url} returned wrong probe bytes.")


def _modified(info: dict[str, Any]) -> datetime:
    """The modification time in an fsspec ``info`` dict (local: ``mtime``, S3: ``LastModified``)."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified")))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    # Unknown age: treat it as new, so the sweep never deletes what it cannot date.
    return datetime.now(UTC)


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
