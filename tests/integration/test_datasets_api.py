"""Upload and Clean over real HTTP: every route, and every bad input leaves nothing behind."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from tests.conftest import SAMPLES, login

from narrate.bootstrap import Container
from narrate.core.data.types import infer_types
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
    users.create_user(c.db, "admin", "maple-anchor-123", "admin")
    srv = AppServer(create_app(c.settings, c)).start()
    try:
        with login(srv.base_url, "admin", "maple-anchor-123") as client:
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
    source = r.json()["version"]["source"]
    assert (source["sheet"], source["sheets"]) == ("Data", ["Notes", "Data"])
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
    client.post("/api/v1/users", json={"username": "other", "password": "maple-anchor-17"})
    with login(server.base_url, "other", "maple-anchor-17") as other:
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


# --- personal data and target-dependent profile parts -------------------------------------


def _customers_csv(rows: int = 80) -> bytes:
    lines = ["customer,email,plan,monthly,churn,churn_reason"]
    for i in range(rows):
        churned = i % 10 == 0
        lines.append(
            f"c{i},user{i}@example.com,{['basic', 'plus', 'pro'][i % 3]},{20 + i % 7 * 5.5},"
            f"{'Yes' if churned else 'No'},{'moved' if churned else 'none'}"
        )
    return ("\n".join(lines) + "\n").encode()


def test_uploaded_email_column_has_a_personal_data_warning(client: httpx.Client) -> None:
    d = _upload(client, "customers.csv", _customers_csv()).json()
    profile = client.get(f"/api/v1/versions/{d['version_id']}/profile").json()
    [warning] = [w for w in profile["warnings"] if w["code"] == "personal_data"]
    assert warning["column"] == "email" and "email" in warning["message"]
    assert warning["fix"] == {"step": "pii", "columns": ["email"], "method": "mask"}
    [finding] = profile["pii"]
    assert finding["fixes"]["hash"] == {"step": "pii", "columns": ["email"], "method": "hash"}


def _codes(profile: dict[str, Any]) -> dict[str, list[str | None]]:
    found: dict[str, list[str | None]] = {}
    for warning in profile["warnings"]:
        found.setdefault(warning["code"], []).append(warning["column"])
    return found


def test_setting_the_target_refreshes_the_profile(client: httpx.Client) -> None:
    d = _upload(client, "customers.csv", _customers_csv()).json()
    before = client.get(f"/api/v1/datasets/{d['id']}/profile").json()
    assert before["target"] is None
    assert "class_imbalance" not in _codes(before) and "target_leakage" not in _codes(before)
    assert "target" not in before["narrative"]

    r = client.patch(f"/api/v1/datasets/{d['id']}", json={"target": "churn"})
    assert r.status_code == 200, r.text
    assert r.json()["version_id"] == d["version_id"]  # same version, fresh profile
    for url in (
        f"/api/v1/datasets/{d['id']}/profile",
        f"/api/v1/versions/{d['version_id']}/profile",
    ):
        after = client.get(url).json()
        assert after["target"]["column"] == "churn"
        assert after["target"]["problem_type"] == "classification"
        assert after["target"]["minority_share"] == pytest.approx(0.1)
        codes = _codes(after)
        assert codes["class_imbalance"] == ["churn"]
        assert codes["target_leakage"] == ["churn_reason"]
        assert "The target `churn` has 2 classes" in after["narrative"]
        assert codes["personal_data"] == ["email"]  # PII kept on re-profiling

    r = client.patch(f"/api/v1/datasets/{d['id']}", json={"target": "monthly"})
    assert r.status_code == 200, r.text
    again = client.get(f"/api/v1/datasets/{d['id']}/profile").json()
    assert again["target"]["column"] == "monthly"
    assert "class_imbalance" not in _codes(again)
    assert "`monthly`" in again["narrative"]


def test_patch_description_and_name_keep_the_version(client: httpx.Client) -> None:
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    r = client.patch(
        f"/api/v1/datasets/{d['id']}", json={"description": "Palmer penguins, 2007-09"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "Palmer penguins, 2007-09"
    assert r.json()["version_id"] == d["version_id"]
    assert client.get(f"/api/v1/datasets/{d['id']}").json()["description"] == (
        "Palmer penguins, 2007-09"
    )
    too_long = client.patch(f"/api/v1/datasets/{d['id']}", json={"description": "x" * 5001})
    assert too_long.status_code == 422
    blank = client.patch(f"/api/v1/datasets/{d['id']}", json={"name": "  "})
    assert blank.status_code == 422 and blank.json()["error"]["details"]["parameter"] == "name"


# --- listing, ownership and rows ---------------------------------------------------------


def test_list_is_paged_newest_first(client: httpx.Client) -> None:
    ids = [
        _upload(client, f"t{i}.csv", f"a,b\n{i},x\n{i + 1},y\n".encode()).json()["id"]
        for i in range(3)
    ]
    first = client.get("/api/v1/datasets", params={"limit": 2}).json()
    second = client.get("/api/v1/datasets", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == second["total"] == 3
    assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
    assert [i["id"] for i in first["items"]] + [i["id"] for i in second["items"]] == ids[::-1]
    assert client.get("/api/v1/datasets", params={"offset": 5}).json()["items"] == []
    assert client.get("/api/v1/datasets", params={"limit": 0}).status_code == 422


def test_admin_sees_everyones_datasets_an_analyst_only_their_own(
    client: httpx.Client, server: Any
) -> None:
    mine = _upload(client, "admin.csv", b"a,b\n1,x\n2,y\n").json()
    for name in ("ana", "bob"):
        created = client.post(
            "/api/v1/users",
            json={"username": name, "password": "maple-anchor-17", "role": "analyst"},
        )
        assert created.status_code == 201, created.text
    with (
        login(server.base_url, "ana", "maple-anchor-17") as ana,
        login(server.base_url, "bob", "maple-anchor-17") as bob,
    ):
        anas = _upload(ana, "ana.csv", b"a,b\n1,x\n2,y\n").json()
        bobs = _upload(bob, "bob.csv", b"a,b\n1,x\n2,y\n").json()
        listed = ana.get("/api/v1/datasets").json()
        assert [i["id"] for i in listed["items"]] == [anas["id"]] and listed["total"] == 1
        assert ana.get(f"/api/v1/datasets/{bobs['id']}").status_code == 404
        assert ana.get(f"/api/v1/datasets/{bobs['id']}/rows").status_code == 404
        assert ana.get(f"/api/v1/versions/{bobs['version_id']}/profile").status_code == 404
        assert ana.patch(f"/api/v1/datasets/{mine['id']}", json={"name": "x"}).status_code == 404
    everyone = client.get("/api/v1/datasets").json()
    assert everyone["total"] == 3
    assert {i["id"] for i in everyone["items"]} == {mine["id"], anas["id"], bobs["id"]}
    assert client.get(f"/api/v1/datasets/{anas['id']}/rows").json()["total"] == 2


def test_rows_offset_and_version(client: httpx.Client) -> None:
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    url = f"/api/v1/datasets/{d['id']}/rows"
    whole = client.get(url, params={"limit": 30, "sort": "body_mass_g"}).json()["rows"]
    page = client.get(url, params={"offset": 10, "limit": 5, "sort": "body_mass_g"}).json()
    assert (page["offset"], page["limit"], page["total"]) == (10, 5, 344)
    assert page["rows"] == whole[10:15]
    assert client.get(url, params={"offset": 340, "limit": 50}).json()["rows"].__len__() == 4
    assert client.get(url, params={"offset": -1}).status_code == 422
    assert client.get(url, params={"limit": 1001}).status_code == 422

    v1 = d["version_id"]
    v2 = client.patch(f"/api/v1/datasets/{d['id']}", json={"column_types": {"year": "categorical"}})
    v2_id = v2.json()["version_id"]
    assert v2_id != v1
    old = client.get(url, params={"version": v1, "limit": 1}).json()
    new = client.get(url, params={"limit": 1}).json()
    assert (old["version_id"], new["version_id"]) == (v1, v2_id)
    assert isinstance(old["rows"][0]["year"], int) and isinstance(new["rows"][0]["year"], str)
    other = _upload(client, "h.csv", (SAMPLES / "hitters.csv").read_bytes()).json()
    wrong = client.get(url, params={"version": other["version_id"]})
    assert wrong.status_code == 404 and wrong.json()["error"]["details"]["parameter"] == "version"


@pytest.mark.parametrize(
    "condition",
    [
        "island IN (SELECT column_1 FROM read_csv('{secret}', has_header = false))",
        "EXISTS (SELECT * FROM read_csv('{secret}'))",
        "island = (SELECT max(x) FROM read_parquet('{secret}'))",
        "read_csv('{secret}') IS NULL",
        "year > 2000 UNION SELECT * FROM read_csv('{secret}')",
        "year > 2000; SELECT 1",
        "island = \"read_ndjson\"('{secret}')",
    ],
    ids=[
        "in-subquery",
        "exists",
        "scalar-subquery",
        "bare-call",
        "union",
        "two-statements",
        "quoted-name",
    ],
)
def test_rows_filter_cannot_read_server_files(
    client: httpx.Client, tmp_path: Path, condition: str
) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("TOPSECRET_COLUMN\nTOPSECRET_VALUE\n")
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    r = client.get(
        f"/api/v1/datasets/{d['id']}/rows", params={"filter": condition.format(secret=secret)}
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["details"]["parameter"] == "filter"
    assert err["code"] == "forbidden_expression"
    assert "TOPSECRET" not in r.text


def test_rows_filter_allows_plain_conditions_and_functions(client: httpx.Client) -> None:
    d = _upload(client, "p.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    url = f"/api/v1/datasets/{d['id']}/rows"
    for condition, expected in [
        ("upper(island) = 'TORGERSEN' AND sex IS NOT NULL", 47),
        ("species IN ('Adelie', 'Gentoo') AND body_mass_g BETWEEN 3000 AND 4000", None),
        ("coalesce(bill_length_mm, 0) = 0", 2),
        ("CAST(year AS VARCHAR) LIKE '200%' AND island <> 'Dream'", None),
        ("island = 'select from read_csv'", 0),
    ]:
        r = client.get(url, params={"filter": condition, "limit": 1})
        assert r.status_code == 200, (condition, r.text)
        if expected is not None:
            assert r.json()["total"] == expected, condition
    r = client.get(url, params={"filter": "year + 1"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_expression"


# --- bad inputs: workbooks without sheets, oversized chunked bodies, wrong content types --


def _xlsx_without_sheets() -> bytes:
    """A valid .xlsx package whose workbook lists no sheets at all."""
    ns = "http://schemas.openxmlformats.org"
    parts = {
        "[Content_Types].xml": (
            f'<Types xmlns="{ns}/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{ns}/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{ns}/officeDocument/2006/relationships/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{ns}/spreadsheetml/2006/main" '
            f'xmlns:r="{ns}/officeDocument/2006/relationships"><sheets/></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{ns}/package/2006/relationships"/>',
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, xml in parts.items():
            z.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + xml)
    return buf.getvalue()


def _xlsx_with_only_a_chart_sheet() -> bytes:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference

    wb = Workbook()
    data = wb.active
    for i in range(5):
        data.append([i])
    chart = BarChart()
    chart.add_data(Reference(data, min_col=1, min_row=1, max_row=5))
    wb.create_chartsheet("Chart").add_chart(chart)
    wb.remove(data)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "words"),
    [(_xlsx_without_sheets(), "has no sheets"), (_xlsx_with_only_a_chart_sheet(), "is empty")],
    ids=["no-sheets", "only-a-chart-sheet"],
)
def test_excel_without_data_sheets_is_refused_and_leaves_nothing(
    client: httpx.Client, container: Container, content: bytes, words: str
) -> None:
    before_rows, before_blobs = _row_count(container), _blob_count(container)
    r = _upload(client, "book.xlsx", content)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert words in err["message"] and err["details"]["file"] == "book.xlsx"
    assert (_row_count(container), _blob_count(container)) == (before_rows, before_blobs)


@pytest.fixture
def small_limit(tmp_path: Path, database_url: str) -> Iterator[tuple[httpx.Client, Container]]:
    """The app with NARRATE_MAX_UPLOAD_MB=1, and an admin client."""
    from tests.conftest import make_settings
    from tests.support.servers import AppServer

    from narrate.bootstrap import build_container
    from narrate.services import users
    from narrate.web.app import create_app

    c = build_container(make_settings(tmp_path, database_url, max_upload_mb=1), with_executor=False)
    c.db.upgrade()
    users.create_user(c.db, "admin", "maple-anchor-123", "admin")
    srv = AppServer(create_app(c.settings, c)).start()
    try:
        with login(srv.base_url, "admin", "maple-anchor-123") as client:
            yield client, c
    finally:
        srv.stop()
        c.close()


def _chunks(head: bytes, body_line: bytes, total: int, tail: bytes = b"") -> Iterator[bytes]:
    """``head``, then ``body_line`` repeated until ``total`` bytes, in 64 KB chunks."""
    yield head
    chunk = body_line * (65_536 // len(body_line))
    sent = len(head)
    while sent < total:
        yield chunk
        sent += len(chunk)
    yield tail


def test_chunked_raw_upload_over_the_limit_is_413_and_leaves_nothing(
    small_limit: tuple[httpx.Client, Container],
) -> None:
    client, c = small_limit
    ok = client.post(
        "/api/v1/datasets",
        params={"filename": "small.csv"},
        content=_chunks(b"a,b\n", b"1,2\n", 200_000),
        headers={"Content-Type": "text/csv"},
    )
    assert ok.status_code == 201, ok.text
    assert "content-length" not in {k.lower() for k in ok.request.headers}
    before_rows, before_blobs = _row_count(c), _blob_count(c)
    r = client.post(
        "/api/v1/datasets",
        params={"filename": "big.csv"},
        content=_chunks(b"a,b\n", b"1,2\n", 3 * 1024 * 1024),
        headers={"Content-Type": "text/csv"},
    )
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert "1 MB" in err["message"] and err["details"]["limit_mb"] == 1
    assert (_row_count(c), _blob_count(c)) == (before_rows, before_blobs)


def test_chunked_multipart_upload_over_the_limit_is_413_and_leaves_nothing(
    small_limit: tuple[httpx.Client, Container],
) -> None:
    client, c = small_limit
    boundary = "narrate-test-boundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na,b\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    before_rows, before_blobs = _row_count(c), _blob_count(c)
    r = client.post(
        "/api/v1/datasets",
        content=_chunks(head, b"1,2\n", 3 * 1024 * 1024, tail),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413, r.text
    assert "1 MB" in r.json()["error"]["message"]
    assert (_row_count(c), _blob_count(c)) == (before_rows, before_blobs)
    small = client.post(
        "/api/v1/datasets",
        content=_chunks(head, b"1,2\n", 100_000, tail),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert small.status_code == 201, small.text


def test_declared_content_type_that_is_not_a_table_is_415(
    client: httpx.Client, container: Container
) -> None:
    before_rows, before_blobs = _row_count(container), _blob_count(container)
    part = client.post("/api/v1/datasets", files={"file": ("data.csv", b"a,b\n1,2\n", "image/png")})
    assert part.status_code == 415, part.text
    err = part.json()["error"]
    assert "image/png" in err["message"]
    assert err["details"]["content_type"] == "image/png" and err["details"]["file"] == "data.csv"
    raw = client.post(
        "/api/v1/datasets",
        params={"filename": "data.csv"},
        content=b"a,b\n1,2\n",
        headers={"Content-Type": "image/png"},
    )
    assert raw.status_code == 415 and "image/png" in raw.json()["error"]["message"]
    assert (_row_count(container), _blob_count(container)) == (before_rows, before_blobs)
    # the loose labels real clients use for tables are fine
    for declared in ("application/vnd.ms-excel", "text/plain; charset=utf-8", ""):
        r = client.post("/api/v1/datasets", files={"file": ("data.csv", b"a,b\n1,2\n", declared)})
        assert r.status_code == 201, (declared, r.text)


# --- a failed write leaves no new blobs behind --------------------------------------------


def _new_dataset(s: Any, owner_id: str) -> Dataset:
    dataset = Dataset(owner_id=owner_id, name="scratch")
    s.add(dataset)
    s.flush()
    return dataset


def test_store_version_removes_its_new_blobs_when_the_unit_of_work_fails(
    container: Container, admin: Any
) -> None:
    from narrate.services.datasets import store_version

    df, kinds = infer_types(pl.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]}))
    original = container.settings.data_dir / "orig.csv"
    original.write_bytes(b"x,y\n1,a\n2,b\n3,c\n")
    written: list[str | None] = []

    def bad_parent() -> None:  # a real database error inside store_version
        with container.db.session() as s:
            dataset = _new_dataset(s, admin.id)
            store_version(
                container,
                s,
                dataset,
                df,
                kinds,
                created_by=admin.id,
                parent_id="no-such-version",
                original=(original, "orig.csv"),
            )

    def later_step_fails() -> None:  # store_version succeeded; the unit of work did not
        with container.db.session() as s:
            version = store_version(
                container, s, _new_dataset(s, admin.id), df, kinds, created_by=admin.id
            )
            written.extend([version.blob, version.profile_blob])
            assert all(container.blobs.exists(digest) for digest in written if digest)
            raise RuntimeError("a later step failed")

    before_rows, before_blobs = _row_count(container), _blob_count(container)
    with pytest.raises(IntegrityError):
        bad_parent()
    assert (_row_count(container), _blob_count(container)) == (before_rows, before_blobs)
    with pytest.raises(RuntimeError, match="later step"):
        later_step_fails()
    assert len(written) == 2
    assert (_row_count(container), _blob_count(container)) == (before_rows, before_blobs)


def test_store_version_keeps_blobs_that_existed_before(
    client: httpx.Client, container: Container, admin: Any
) -> None:
    from narrate.services.datasets import load_frame, store_version

    d = _upload(client, "penguins.csv", (SAMPLES / "penguins.csv").read_bytes()).json()
    with container.db.session() as s:
        kept = s.get(DatasetVersion, d["version_id"])
        assert kept is not None
        shared = [kept.blob, kept.original_blob, kept.profile_blob]
        kinds = {c["name"]: c["kind"] for c in kept.columns}
    df = load_frame(container, kept)
    blobs = _blob_count(container)

    def same_table_then_fail() -> None:
        with container.db.session() as s:
            dataset = s.get(Dataset, d["id"])
            assert dataset is not None
            # the same table: its Parquet and profile blobs exist; the recipe blob is new
            store_version(
                container,
                s,
                dataset,
                df,
                kinds,
                created_by=admin.id,
                fitted_recipe={"steps": [], "note": "only in this failed write"},
            )
            assert _blob_count(container) == blobs + 1
            raise RuntimeError("a later step failed")

    with pytest.raises(RuntimeError):
        same_table_then_fail()
    assert _blob_count(container) == blobs
    assert all(container.blobs.exists(digest) for digest in shared if digest)
    csv = client.get(f"/api/v1/versions/{d['version_id']}/download", params={"format": "csv"})
    assert csv.status_code == 200 and pl.read_csv(io.BytesIO(csv.content)).height == 344
    profile = client.get(f"/api/v1/versions/{d['version_id']}/profile")
    assert profile.status_code == 200 and profile.json()["table"]["rows"] == 344


def test_clean_page_pii_links_are_valid_recipe_steps(client: httpx.Client) -> None:
    from urllib.parse import parse_qs, urlparse

    from narrate.core.recipes.model import Recipe

    d = _upload(client, "customers.csv", _customers_csv()).json()
    page = client.get("/stages/clean", params={"dataset": d["id"]})
    assert page.status_code == 200, page.text[:500]
    hrefs = re.findall(r'class="pii-fix" data-action="(\w+)" href="([^"]+)"', page.text)
    assert [action for action, _ in hrefs] == ["mask", "hash", "drop"]
    for action, href in hrefs:
        [added] = parse_qs(urlparse(html.unescape(href)).query)["add"]
        step = json.loads(added)
        Recipe.parse({"steps": [step]})  # raises if the step's parameters are wrong
        assert step.get("method", "drop") == action
