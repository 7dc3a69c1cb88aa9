"""Upload and Clean over real HTTP: every route, and every bad input leaves nothing behind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from sqlalchemy import func, select
from tests.conftest import SAMPLES, login

from narrate.bootstrap import Container
from narrate.storage.sql.tables import Dataset, DatasetVersion


def _upload(client: httpx.Client, filename: str, content: bytes, **form: Any) -> httpx.Response:
    return client.post("/api/v1/datasets", files={"file": (filename, content)}, data=form)


def _blob_count(container: Container) -> int:
    root = Path(container.blobs.url) / "sha256"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def _row_count(container: Container) -> tuple[int, int]:
    with container.db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Dataset)) or 0,
            s.scalar(select(func.count()).select_from(DatasetVersion)) or 0,
        )


def test_upload_real_csv_returns_dataset_version_and_types(client: httpx.Client) -> None:
    r = _upload(client, "penguins.csv", (SAMPLES / "penguins.csv").read_bytes())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "penguins"
    version = body["version"]
    assert version["n_rows"] == 344 and version["n_columns"] == 8
    kinds = {c["name"]: c["kind"] for c in version["columns"]}
    assert kinds["species"] == "categorical"
    assert kinds["bill_length_mm"] == "float"
    assert body["version_id"] == version["id"]


def test_same_content_twice_reuses_the_blob(client: httpx.Client, container: Container) -> None:
    data = (SAMPLES / "hitters.csv").read_bytes()
    a = _upload(client, "hitters.csv", data).json()
    blobs = _blob_count(container)
    b = _upload(client, "hitters.csv", data).json()
    assert a["version"]["content_hash"] == b["version"]["content_hash"]
    assert _blob_count(container) == blobs
    assert a["id"] != b["id"]


BAD_INPUTS = [
    ("empty.csv", b"", 400, "empty"),
    ("header.csv", b"a,b,c\n", 400, "no data rows"),
    ("junk.csv", bytes(range(256)) * 20, 415, "binary"),
    ("data.exe", b"a,b\n1,2\n", 415, ".exe"),
    ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n", 400, "line 3"),
    ("quotes.csv", b'a,b\n1,"unclosed\n2,3\n', 400, "quoting"),
]


@pytest.mark.parametrize(
    ("name", "content", "status", "words"),
    BAD_INPUTS,
    ids=["empty", "header-only", "binary-junk", "bad-extension", "ragged", "bad-quoting"],
)
def test_bad_upload_is_refused_and_leaves_nothing(
    client: httpx.Client, container: Container, name: str, content: bytes, status: int, words: str
) -> None:
    before_rows, before_blobs = _row_count(container), _blob_count(container)
    r = _upload(client, name, content)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"], err
    assert err["details"].get("file") == name
    assert _row_count(container) == before_rows
    assert _blob_count(container) == before_blobs


def test_ragged_rows_can_be_skipped_and_are_reported(client: httpx.Client) -> None:
    r = _upload(client, "ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n", skip_bad_lines="true")
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    assert version["n_rows"] == 2
    assert version["source"]["skipped_lines"] == 1
    assert any("skipped" in w.lower() for w in version["warnings"])


def test_upload_over_the_limit_is_413_with_the_limit(tmp_path: Path, database_url: str) -> None:
    from tests.conftest import make_settings
    from tests.support.servers import AppServer

    from narrate.bootstrap import build_container
    from narrate.services import users
    from narrate.web.app import create_app

    c = build_container(make_settings(tmp_path, database_url, max_upload_mb=1), with_executor=False)
    c.db.upgrade()
    users.create_user(c.db, "admin", "password-123", "admin")
    srv = AppServer(create_app(c.settings, c)).start()
    try:
        with login(srv.base_url, "admin", "password-123") as client:
            r = _upload(client, "big.csv", b"a,b\n" + b"1,2\n" * 400_000)
            assert r.status_code == 413
            assert "1 MB" in r.json()["error"]["message"]
            assert client.get("/api/v1/datasets").json()["total"] == 0
    finally:
        srv.stop()
        c.close()


def test_excel_sheet_choice_and_unknown_sheet(client: httpx.Client) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Notes"
    ws.append(["just a note"])
    data = wb.create_sheet("Data")
    data.append(["x", "y"])
    for i in range(5):
        data.append([i, i * 2.5])
    buf = io.BytesIO()
    wb.save(buf)
    r = _upload(client, "book.xlsx", buf.getvalue(), sheet="Data")
    assert r.status_code == 201, r.text
    assert r.json()["version"]["n_rows"] == 5
    r = _upload(client, "book.xlsx", buf.getvalue(), sheet="Missing")
    assert r.status_code == 422
    assert "'Data'" in r.json()["error"]["message"]


def test_parquet_and_jsonl_uploads(client: httpx.Client) -> None:
    buf = io.BytesIO()
    pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).write_parquet(buf)
    assert _upload(client, "t.parquet", buf.getvalue()).status_code == 201
    r = _upload(client, "t.jsonl", b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    assert r.status_code == 201 and r.json()["version"]["n_rows"] == 2


def test_list_get_patch_delete_restore(client: httpx.Client, server: Any) -> None:
    d = _upload(client, "credit.csv", (SAMPLES / "credit_data.csv").read_bytes()).json()
    listed = client.get("/api/v1/datasets").json()
    assert listed["total"] == 1 and listed["items"][0]["n_rows"] == 4454
    r = client.patch(f"/api/v1/datasets/{d['id']}", json={"name": "Credit", "target": "Status"})
    assert r.json()["name"] == "Credit" and r.json()["target"] == "Status"
    r = client.patch(f"/api/v1/datasets/{d['id']}", json={"target": "nope"})
    assert r.status_code == 422 and r.json()["error"]["details"]["column"] == "nope"
    assert client.delete(f"/api/v1/datasets/{d['id']}").status_code == 204
    assert client.get("/api/v1/datasets").json()["total"] == 0
    assert client.get(f"/api/v1/datasets/{d['id']}").status_code == 404
    assert client.post(f"/api/v1/datasets/{d['id']}/restore").status_code == 200
    assert client.get(f"/api/v1/datasets/{d['id']}").json()["name"] == "Credit"
    client.post("/api/v1/users", json={"username": "other", "password": "password-1"})
    with login(server.base_url, "other", "password-1") as other:
        assert other.get(f"/api/v1/datasets/{d['id']}").status_code == 404
        assert other.get("/api/v1/datasets").json()["total"] == 0


def test_column_type_override_creates_a_new_version(client: httpx.Client) -> None:
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    r = client.patch(f"/api/v1/datasets/{d['id']}", json={"column_types": {"year": "categorical"}})
    assert r.status_code == 200, r.text
    new = r.json()["version"]
    assert new["id"] != d["version_id"] and new["parent_version_id"] == d["version_id"]
    assert {c["name"]: c["kind"] for c in new["columns"]}["year"] == "categorical"
    versions = client.get(f"/api/v1/datasets/{d['id']}/versions").json()["items"]
    assert [v["number"] for v in versions] == [1, 2]
    bad = client.patch(f"/api/v1/datasets/{d['id']}", json={"column_types": {"species": "integer"}})
    assert bad.status_code == 422
    assert "species" in bad.json()["error"]["message"]


def test_rows_paging_sorting_filtering(client: httpx.Client) -> None:
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    r = client.get(
        f"/api/v1/datasets/{d['id']}/rows", params={"limit": 5, "sort": "-body_mass_g"}
    ).json()
    assert r["total"] == 344 and len(r["rows"]) == 5
    assert r["rows"][0]["body_mass_g"] == 6300
    r = client.get(
        f"/api/v1/datasets/{d['id']}/rows",
        params={"filter": "island = 'Torgersen' AND year = 2007"},
    ).json()
    assert r["total"] > 0 and all(row["island"] == "Torgersen" for row in r["rows"])
    bad = client.get(f"/api/v1/datasets/{d['id']}/rows", params={"filter": "island = = 3"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["parameter"] == "filter"
    bad = client.get(f"/api/v1/datasets/{d['id']}/rows", params={"sort": "nope"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["column"] == "nope"


def test_download_csv_and_parquet(client: httpx.Client) -> None:
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    csv = client.get(f"/api/v1/versions/{d['version_id']}/download", params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.startswith("species,island")
    assert pl.read_csv(io.BytesIO(csv.content)).height == 344
    pq = client.get(f"/api/v1/versions/{d['version_id']}/download", params={"format": "parquet"})
    assert pl.read_parquet(io.BytesIO(pq.content)).height == 344
    assert (
        client.get(
            f"/api/v1/versions/{d['version_id']}/download", params={"format": "xml"}
        ).status_code
        == 422
    )


def test_profile_is_stored_and_served_with_pii_and_narrative(client: httpx.Client) -> None:
    csv = "name,email,phone,amount,signup\n" + "\n".join(
        f"Person {i},user{i}@example.com,+1 415 555 {1000 + i:04d},{i * 3.5},"
        f"2024-01-{i % 28 + 1:02d}"
        for i in range(60)
    )
    d = _upload(client, "customers.csv", csv.encode()).json()
    profile = client.get(f"/api/v1/versions/{d['version_id']}/profile").json()
    kinds = {p["column"]: p["kind"] for p in profile["pii"]}
    assert kinds.get("email") == "email" and kinds.get("phone") == "phone"
    assert "60" in profile["narrative"]
    same = client.get(f"/api/v1/datasets/{d['id']}/profile").json()
    assert same == profile


def test_raw_body_upload_streams_with_filename(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/datasets",
        params={"filename": "penguins.csv", "target": "species", "name": "raw penguins"},
        content=(SAMPLES / "penguins.csv").read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "raw penguins" and r.json()["target"] == "species"
    assert r.json()["version"]["n_rows"] == 344


def test_raw_body_upload_without_filename_is_refused(client: httpx.Client) -> None:
    r = client.post(
        "/api/v1/datasets",
        content=b"a,b\n1,2\n",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["parameter"] == "filename"


def test_multipart_without_file_field_is_refused(client: httpx.Client) -> None:
    r = client.post("/api/v1/datasets", files={"data": ("x.csv", b"a,b\n1,2\n")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "missing_file"
