"""Upload limits are checked before a file is read or expanded (security review, issue 12)."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from narrate.core.data.limits import (
    ReadLimits,
    check_json_depth,
    check_zip_entries,
    gunzip_capped,
)
from narrate.core.data.readers import read_table
from narrate.errors import DataProblem, TooLarge, UnsupportedMediaType

KB = 1024


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"a,b,c,d", 4),
        (b'"a,1","b,2",c,d', 4),
        (b'"a\nb",c,d,e', 4),
    ],
    ids=["plain", "quoted-delimiters", "quoted-line-break"],
)
def test_csv_column_limit_counts_the_header_fields(
    tmp_path: Path, header: bytes, expected: int
) -> None:
    path = _write(tmp_path, "t.csv", header + b"\n" + b",".join([b"1"] * expected) + b"\n")
    assert read_table(path, filename="t.csv", limits=ReadLimits(max_columns=expected))
    with pytest.raises(TooLarge) as caught:
        read_table(path, filename="t.csv", limits=ReadLimits(max_columns=expected - 1))
    assert f"'t.csv' has {expected} columns" in caught.value.message
    assert caught.value.details["setting"] == "max_columns"


def test_cells_limit_applies_after_reading_a_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "t.csv", b"a,b\n" + b"1,2\n" * 60)
    with pytest.raises(TooLarge, match="NARRATE_MAX_CELLS") as caught:
        read_table(path, filename="t.csv", limits=ReadLimits(max_cells=100))
    assert caught.value.details["cells"] == 120


def test_parquet_uncompressed_size_is_checked_from_metadata(tmp_path: Path) -> None:
    table = pa.table({"x": pa.array([f"value-{i}" for i in range(50_000)])})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, compression="zstd", use_dictionary=False)
    with pytest.raises(TooLarge, match="NARRATE_MAX_DECOMPRESSED_MB") as caught:
        read_table(path, filename="t.parquet", limits=ReadLimits(max_decompressed_bytes=100 * KB))
    assert caught.value.details["setting"] == "max_decompressed_mb"


def test_gzip_is_counted_while_it_is_decompressed(tmp_path: Path) -> None:
    source = _write(tmp_path, "t.csv", gzip.compress(b"a\n" + b"1\n" * 200_000))
    with pytest.raises(TooLarge) as caught:
        gunzip_capped(
            source,
            tmp_path / "out",
            filename="t.csv",
            limits=ReadLimits(max_decompressed_bytes=64 * KB),
        )
    assert "'t.csv' expands to more than" in caught.value.message


@pytest.mark.parametrize("magic", [b"\x28\xb5\x2f\xfd", b"BZh91AY", b"\xfd7zXZ\x00"])
def test_other_compressed_formats_are_refused(tmp_path: Path, magic: bytes) -> None:
    path = _write(tmp_path, "t.csv", magic + b"\x00" * 32)
    with pytest.raises(UnsupportedMediaType, match="compressed"):
        read_table(path, filename="t.csv")


def _zip_with_lying_sizes(content: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", content)
    data = bytearray(buf.getvalue())
    # Say the entry expands to 10 bytes, in the local header and the central directory.
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 10)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)
    return bytes(data)


def test_zip_entries_are_counted_not_trusted(tmp_path: Path) -> None:
    limits = ReadLimits(max_decompressed_bytes=64 * KB)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (128 * KB))
    big = _write(tmp_path, "big.xlsx", buf.getvalue())
    with pytest.raises(TooLarge):
        check_zip_entries(big, filename="big.xlsx", limits=limits)
    lying = _write(tmp_path, "lying.xlsx", _zip_with_lying_sizes(b" " * (128 * KB)))
    with pytest.raises((TooLarge, UnsupportedMediaType)):
        check_zip_entries(lying, filename="lying.xlsx", limits=limits)


@pytest.mark.parametrize(
    ("content", "depth"),
    [
        (b'[{"a": "[[[[[[[[[[[[["}]', 2),
        (b'[{"a": "\\"[[[[[[[[[[[["}]', 2),
        (b'[{"a": [[[1]]]}]', 5),
    ],
    ids=["brackets-in-strings", "escaped-quote", "real-nesting"],
)
def test_json_depth_ignores_brackets_in_strings(tmp_path: Path, content: bytes, depth: int) -> None:
    path = _write(tmp_path, "t.json", content)
    check_json_depth(path, filename="t.json", limits=ReadLimits(max_json_depth=depth))
    with pytest.raises(DataProblem, match=f"nested {depth} levels deep"):
        check_json_depth(path, filename="t.json", limits=ReadLimits(max_json_depth=depth - 1))
