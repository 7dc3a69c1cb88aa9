from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from narrate.errors import InvalidInput, NotFound
from narrate.storage.blobs import FsspecBlobStore


@pytest.fixture
def store(tmp_path: Path) -> FsspecBlobStore:
    return FsspecBlobStore(str(tmp_path / "blobs"))


def test_blobs_are_addressed_by_sha256(store: FsspecBlobStore) -> None:
    digest = store.put_bytes(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.get_bytes(digest) == b"hello"
    assert store.exists(digest)


def test_same_content_is_stored_once(store: FsspecBlobStore, tmp_path: Path) -> None:
    a = store.put_bytes(b"x" * 1000)
    b = store.put_stream([b"x" * 500, b"x" * 500])
    assert a == b
    files = [p for p in (tmp_path / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert len(files) == 1


def test_stream_and_put_file_round_trip(store: FsspecBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 10_000)
    digest = store.put_file(src)
    assert b"".join(store.stream(digest, chunk_size=4096)) == src.read_bytes()


def test_failed_write_leaves_no_blob_and_no_temp_file(
    store: FsspecBlobStore, tmp_path: Path
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"partial data"
        raise OSError("disk unplugged")

    with pytest.raises(OSError, match="unplugged"):
        store.put_stream(chunks())
    root = tmp_path / "blobs"
    assert not (root / "sha256").exists() or not any(
        p.is_file() for p in (root / "sha256").rglob("*")
    )
    assert not any((root / "tmp").iterdir())
    assert not store.exists(hashlib.sha256(b"partial data").hexdigest())


def test_missing_blob_is_not_found(store: FsspecBlobStore) -> None:
    with pytest.raises(NotFound, match="not in the artifact store"):
        store.get_bytes("0" * 64)


@pytest.mark.parametrize(
    "bad", ["abc", "../" + "a" * 61, "G" * 64], ids=["short", "traversal", "not-hex"]
)
def test_malformed_blob_ids_are_refused(store: FsspecBlobStore, bad: str) -> None:
    with pytest.raises(InvalidInput, match="not a blob id"):
        store.exists(bad)


def test_delete_removes_the_blob(store: FsspecBlobStore) -> None:
    d = store.put_bytes(b"bye")
    store.delete(d)
    assert not store.exists(d)


def test_health_check_writes_and_removes_a_probe(store: FsspecBlobStore, tmp_path: Path) -> None:
    store.check()
    assert not any((tmp_path / "blobs" / "health").iterdir())
