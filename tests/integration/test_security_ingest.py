"""Uploads can't take the service down (security review, issue 12).

Wide files are refused from their header above ``max_columns`` and profiled in linear
time below it, without holding the database write lock; compressed files (Parquet, xlsx,
gzip) are checked against ``max_cells`` / ``max_decompressed_mb`` before they are
expanded; deeply nested JSON is a clear 400, not a RecursionError.
"""

from __future__ import annotations

import gzip
import io
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import ADMIN_PASSWORD, login, make_settings

from narrate.config import Settings

MB = 1024 * 1024


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """A SQLite file database (the lock problem is SQLite's), limits lowered to stay fast."""
    return make_settings(tmp_path, sqlite_url, max_cells=2_000_000, max_decompressed_mb=1)


def _upload(client: httpx.Client, filename: str, content: bytes) -> httpx.Response:
    return client.post("/api/v1/datasets", files={"file": (filename, content)})


def _wide_csv(columns: int, rows: int) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    row = ",".join(str(i % 97) if i % 3 else f"v{i % 5}" for i in range(columns))
    return (header + "\n" + "\n".join([row] * rows) + "\n").encode()


def _assert_refused(r: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    for word in words:
        assert word in error["message"], error
    return error


def test_upload_over_the_column_limit_is_413_naming_file_count_and_setting(
    client: httpx.Client,
) -> None:
    r = _upload(client, "wide.csv", _wide_csv(5_001, 2))
    error = _assert_refused(r, 413, "'wide.csv'", "5,001 columns", "NARRATE_MAX_COLUMNS")
    assert error["code"] == "too_large"
    assert error["details"]["setting"] == "max_columns"
    assert error["details"]["limit"] == 5_000
    assert client.get("/api/v1/datasets").json()["total"] == 0


def test_upload_of_5000_columns_succeeds(client: httpx.Client) -> None:
    # How fast is measured in bench/bench_profile_wide.py, not here.
    r = _upload(client, "wide.csv", _wide_csv(5_000, 100))
    assert r.status_code == 201, r.text
    assert r.json()["version"]["n_columns"] == 5_000
    version_id = r.json()["version_id"]
    profile = client.get(f"/api/v1/datasets/{r.json()['id']}/profile").json()
    assert len(profile["columns"]) == 5_000, version_id


def test_writes_succeed_while_a_wide_upload_is_profiled(client: httpx.Client, server: Any) -> None:
    wide = _wide_csv(5_000, 400)

    def upload() -> httpx.Response:
        with login(server.base_url, "admin", ADMIN_PASSWORD) as own:
            return _upload(own, "wide.csv", wide)

    r = _writes_during(server, upload)
    assert r.status_code == 201, r.text


def _writes_during(server: Any, work: Callable[[], httpx.Response]) -> httpx.Response:
    """Log in and upload a small file again and again while ``work`` runs in a thread."""
    outcome: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("work", work()))
    worker.start()
    timings: list[tuple[float, int, bool]] = []
    try:
        while worker.is_alive() and len(timings) < 20:
            started = time.monotonic()
            # A login writes (last login time) and a small upload writes two rows.
            with login(server.base_url, "admin", ADMIN_PASSWORD) as other:
                r = _upload(other, "small.csv", b"a,b\n1,2\n3,4\n")
            timings.append((time.monotonic() - started, r.status_code, worker.is_alive()))
            time.sleep(0.2)
    finally:
        worker.join(timeout=600)
    assert any(alive for _, _, alive in timings), "no write overlapped the work"
    for elapsed, status, _ in timings:
        assert status == 201
        assert elapsed < 10, f"a write waited {elapsed:.1f} s behind the work: {timings}"
    return outcome["work"]


def test_writes_succeed_while_a_new_target_reprofiles_a_wide_dataset(
    client: httpx.Client, server: Any
) -> None:
    wide = _upload(client, "wide.csv", _wide_csv(5_000, 400))
    assert wide.status_code == 201, wide.text
    url = f"/api/v1/datasets/{wide.json()['id']}"

    def retarget() -> httpx.Response:
        with login(server.base_url, "admin", ADMIN_PASSWORD) as own:
            return own.patch(url, json={"name": "renamed", "target": "c1"})

    r = _writes_during(server, retarget)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["target"]) == ("renamed", "c1")


def _constant_parquet(rows: int) -> bytes:
    # One constant column: dictionary + run-length encoding store it in a few KB.
    table = pa.table({"x": pa.repeat(pa.scalar(7, pa.int8()), rows)})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=rows, compression="zstd")
    return buf.getvalue()


def test_parquet_bomb_is_refused_from_its_metadata(client: httpx.Client) -> None:
    data = _constant_parquet(3_000_000)
    assert len(data) < 20_000
    r = _upload(client, "bomb.parquet", data)
    error = _assert_refused(r, 413, "'bomb.parquet'", "3,000,000 rows", "NARRATE_MAX_CELLS")
    assert error["details"]["limit"] == 2_000_000


def _xlsx_bomb(sheet_bytes: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, 2])
    plain = io.BytesIO()
    book.save(plain)
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(plain) as source,
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                # Whitespace between elements is valid XML and compresses ~1000:1.
                content = content.replace(b"<sheetData>", b"<sheetData>" + b" " * sheet_bytes)
            target.writestr(item.filename, content)
    return buf.getvalue()


def test_xlsx_bomb_is_refused_before_the_sheet_is_parsed(client: httpx.Client) -> None:
    data = _xlsx_bomb(3 * MB)
    assert len(data) < 100_000
    r = _upload(client, "bomb.xlsx", data)
    error = _assert_refused(r, 413, "'bomb.xlsx'", "NARRATE_MAX_DECOMPRESSED_MB")
    assert error["details"]["setting"] == "max_decompressed_mb"


def test_gzip_bomb_is_refused_and_a_small_gzip_csv_is_read(client: httpx.Client) -> None:
    bomb = gzip.compress(b"a,b\n" + b"1,2\n" * (MB // 2))
    r = _upload(client, "bomb.csv", bomb)
    _assert_refused(r, 413, "'bomb.csv'", "1 MB", "NARRATE_MAX_DECOMPRESSED_MB")
    ok = _upload(client, "small.csv", gzip.compress(b"a,b\n1,2\n3,4\n"))
    assert ok.status_code == 201, ok.text
    assert ok.json()["version"]["n_rows"] == 2


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("deep.json", b'[{"a": ' + b"[" * 1_000 + b"]" * 1_000 + b"}]"),
        ("deep.jsonl", b'{"a": ' + b'{"b": ' * 1_000 + b"1" + b"}" * 1_000 + b"}\n"),
    ],
    ids=["json-array", "json-lines"],
)
def test_deeply_nested_json_is_a_400_naming_the_depth_limit(
    client: httpx.Client, filename: str, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    r = _upload(client, filename, content)
    error = _assert_refused(r, 400, f"'{filename}'", "levels deep", "NARRATE_MAX_JSON_DEPTH")
    assert error["details"]["limit"] == 64
    assert "Traceback" not in caplog.text


@pytest.fixture
def cells_server(tmp_path: Path, sqlite_url: str) -> Iterator[httpx.Client]:
    """An app whose column limit is 10, to show the check reads only the header."""
    from tests.support.servers import AppServer

    from narrate.bootstrap import build_container
    from narrate.services import users
    from narrate.web.app import create_app

    c = build_container(make_settings(tmp_path, sqlite_url, max_columns=10), with_executor=False)
    c.db.upgrade()
    users.create_user(c.db, "admin", ADMIN_PASSWORD, "admin")
    srv = AppServer(create_app(c.settings, c)).start()
    try:
        with login(srv.base_url, "admin", ADMIN_PASSWORD) as client:
            yield client
    finally:
        srv.stop()
        c.close()


def test_column_limit_is_checked_on_the_header_before_the_body(
    cells_server: httpx.Client,
) -> None:
    # The body is broken (ragged rows): a reader that parsed it first would say so.
    content = _wide_csv(11, 1) + b"1,2\n"
    r = _upload(cells_server, "eleven.csv", content)
    _assert_refused(r, 413, "11 columns", "at most 10")
