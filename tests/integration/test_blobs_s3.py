"""The blob store against a real S3 protocol server (moto_server) on loopback."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import boto3
import pytest
from tests.support.servers import start_moto

from narrate.bootstrap import build_blob_store
from narrate.config import Settings
from narrate.errors import NotFound, StorageUnavailable
from narrate.storage.blobs import FsspecBlobStore

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with start_moto() as endpoint:
        yield endpoint


@pytest.fixture
def s3_store(moto_endpoint: str, tmp_path) -> FsspecBlobStore:  # type: ignore[no-untyped-def]
    bucket = f"narrate-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    settings = Settings(
        data_dir=tmp_path,
        storage_url=f"s3://{bucket}/blobs",
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    return build_blob_store(settings)


def test_put_get_exists_delete_on_s3(s3_store: FsspecBlobStore) -> None:
    data = b"narrate" * 1000
    digest = s3_store.put_bytes(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert s3_store.exists(digest)
    assert s3_store.get_bytes(digest) == data
    assert b"".join(s3_store.stream(digest, chunk_size=1000)) == data
    s3_store.delete(digest)
    assert not s3_store.exists(digest)
    with pytest.raises(NotFound):
        s3_store.get_bytes(digest)


def test_large_file_upload_round_trips(s3_store: FsspecBlobStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 40_000)  # 10 MB
    digest = s3_store.put_file(src)
    assert s3_store.get_bytes(digest) == src.read_bytes()


def test_failed_stream_leaves_no_object_on_s3(s3_store: FsspecBlobStore) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"half"
        raise OSError("connection dropped")

    with pytest.raises(OSError, match="dropped"):
        s3_store.put_stream(chunks())
    assert not s3_store.exists(hashlib.sha256(b"half").hexdigest())


def test_health_check_on_s3(s3_store: FsspecBlobStore) -> None:
    s3_store.check()


def test_health_check_fails_for_a_missing_bucket(moto_endpoint: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        data_dir=tmp_path,
        storage_url="s3://no-such-bucket-here/x",
        s3_endpoint_url=moto_endpoint,
        s3_region="us-east-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )
    with pytest.raises(StorageUnavailable, match="unreachable"):
        build_blob_store(settings).check()
