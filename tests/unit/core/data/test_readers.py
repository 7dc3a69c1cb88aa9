"""read_table: formats, sniffing, encodings and every user-facing read error."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest

import narrate
from narrate.core.data.excel import find_header_row
from narrate.core.data.readers import ReadOptions, read_table
from narrate.errors import DataProblem, InvalidInput, UnsupportedMediaType

SAMPLES = Path(narrate.__file__).parent / "samples"


def _write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize(
    ("sample", "rows", "columns"),
    [("penguins", 344, 8), ("credit_data", 4454, 14), ("hitters", 263, 20)],
    ids=["penguins", "credit_data", "hitters"],
)
def test_read_table_reads_bundled_samples(sample: str, rows: int, columns: int) -> None:
    result = read_table(SAMPLES / f"{sample}.csv", filename=f"{sample}.csv")
    assert result.frame.shape == (rows, columns)
    assert (result.format, result.delimiter, result.encoding) == ("csv", ",", "utf-8")
    assert result.warnings == []


@pytest.mark.parametrize(
    ("name", "content", "delimiter", "fmt"),
    [
        ("a.csv", "a;b\n1;x\n2;y\n", ";", "csv"),
        ("a.csv", "a|b\n1|x\n2|y\n", "|", "csv"),
        ("a.tsv", "a\tb\n1\tx,y\n2\tz\n", "\t", "tsv"),
        ("a.txt", "a\tb\n1\tx\n2\ty\n", "\t", "tsv"),
        ("a.csv", 'a,b\n1,"x;y;z"\n2,"p;q"\n', ",", "csv"),
    ],
    ids=["semicolon", "pipe", "tsv-with-commas-in-values", "txt-tab", "quoted-semicolons"],
)
def test_read_table_sniffs_delimiter(
    tmp_path: Path, name: str, content: str, delimiter: str, fmt: str
) -> None:
    result = read_table(_write(tmp_path, name, content), filename=name)
    assert result.delimiter == delimiter
    assert result.format == fmt
    assert result.frame.columns == ["a", "b"]
    assert result.frame.height == 2


def test_read_table_keeps_quoted_newlines_inside_fields(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", 'id,note\n1,"line one\nline two"\n2,plain\n')
    frame = read_table(path, filename="a.csv").frame
    assert frame.get_column("note").to_list() == ["line one\nline two", "plain"]


def test_read_table_names_columns_when_first_row_is_data(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", "1,2.5,x\n2,3.5,y\n3,4.5,z\n")
    result = read_table(path, filename="a.csv")
    assert result.frame.columns == ["column_1", "column_2", "column_3"]
    assert result.frame.height == 3
    assert any("looks like data" in warning for warning in result.warnings)


def test_read_table_renames_duplicate_and_empty_headers(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", "name,name,,age\nx,y,z,1\n")
    result = read_table(path, filename="a.csv")
    assert result.frame.columns == ["name", "name_2", "column_3", "age"]
    assert result.renamed_columns == {"name_2": "name", "column_3": ""}
    assert any("renamed" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("content", "encoding", "expected"),
    [
        ("name,city\nJosé,München\n".encode("utf-8-sig"), "utf-8-sig", "José"),
        ("name,city\nJosé,München\n".encode("utf-16"), "utf-16", "José"),
        ("name,city\nJosé,München\nRenée,Zürich\n".encode("latin-1"), "cp1252", "José"),
        ("name,city\nJosé,€uro\n".encode("cp1252"), "cp1252", "José"),
    ],
    ids=["utf8-bom", "utf16-bom", "latin1", "cp1252-euro"],
)
def test_read_table_detects_encoding(
    tmp_path: Path, content: bytes, encoding: str, expected: str
) -> None:
    result = read_table(_write(tmp_path, "a.csv", content), filename="a.csv")
    assert result.encoding == encoding
    assert result.frame.columns == ["name", "city"]
    assert result.frame.get_column("name")[0] == expected
    if encoding != "utf-8-sig":
        assert any(encoding in warning for warning in result.warnings)


def test_read_table_falls_back_to_cp1252_when_bad_bytes_come_late(tmp_path: Path) -> None:
    body = "a,b\n" + "x,1\n" * 100_000 + "café,2\n"
    path = _write(tmp_path, "a.csv", body.encode("cp1252"))
    result = read_table(path, filename="a.csv")
    assert result.encoding == "cp1252"
    assert result.frame.get_column("a")[-1] == "café"


def test_read_table_honours_forced_encoding_and_delimiter(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", "a:b\nÅ:1\n".encode("latin-1"))
    options = ReadOptions(encoding="latin-1", delimiter=":")
    frame = read_table(path, filename="a.csv", options=options).frame
    assert frame.rows() == [("Å", "1")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("item;price\na;1,5\nb;1.234,75\nc;2\n", [1.5, 1234.75, 2.0]),
        ('item,price\na,"1,234.5"\nb,"12"\nc,"1,000,000"\n', [1234.5, 12.0, 1_000_000.0]),
        ("item\tprice\na\t1.234,5\nb\t0,25\n", [1234.5, 0.25]),
    ],
    ids=["decimal-comma", "thousands-comma", "tab-decimal-comma"],
)
def test_read_table_reads_formatted_numbers(
    tmp_path: Path, content: str, expected: list[float]
) -> None:
    result = read_table(_write(tmp_path, "a.csv", content), filename="a.csv")
    assert result.frame.get_column("price").to_list() == expected
    assert any("read as numbers" in warning for warning in result.warnings)


def test_read_table_keeps_ambiguous_thousands_in_comma_file_as_text(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", 'a,b\n"1,2",x\n"3,4",y\n')
    assert read_table(path, filename="a.csv").frame.get_column("a").to_list() == ["1,2", "3,4"]


def test_read_table_ignores_blank_lines(tmp_path: Path) -> None:
    result = read_table(_write(tmp_path, "a.csv", "a,b\n1,2\n\n3,4\n"), filename="a.csv")
    assert result.frame.rows() == [("1", "2"), ("3", "4")]
    assert any("empty row" in warning for warning in result.warnings)


def test_read_table_accepts_empty_last_values(tmp_path: Path) -> None:
    frame = read_table(_write(tmp_path, "a.csv", "a,b,c\n1,2,\n3,4,5\n"), filename="a.csv").frame
    assert frame.get_column("c").to_list() == [None, "5"]


RAGGED = [
    ("a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n", 3, 4),
    ("a,b,c\n1,2,3\n4,5\n8,9,10\n", 3, 2),
    ('a,b,c\n1,"x\ny",3\n4,5\n8,9,10\n', 4, 2),
    ("a,b,c\n1,2,3\n8,9,10\n11,12\n", 4, 2),
]
RAGGED_IDS = ["too-many-fields", "too-few-fields", "after-multiline-field", "last-line"]


@pytest.mark.parametrize(("content", "line", "found"), RAGGED, ids=RAGGED_IDS)
def test_read_table_rejects_ragged_rows_naming_line(
    tmp_path: Path, content: str, line: int, found: int
) -> None:
    with pytest.raises(DataProblem) as caught:
        read_table(_write(tmp_path, "r.csv", content), filename="r.csv")
    error = caught.value
    assert error.code == "data_problem"
    assert f"line {line} has {found} field(s)" in error.message
    assert "header has 3" in error.message
    assert error.details["file"] == "r.csv"
    assert (error.details["line"], error.details["expected"]) == (line, 3)


@pytest.mark.parametrize(("content", "line", "found"), RAGGED, ids=RAGGED_IDS)
def test_read_table_skips_ragged_rows_when_asked(
    tmp_path: Path, content: str, line: int, found: int
) -> None:
    del line, found
    options = ReadOptions(skip_bad_lines=True)
    result = read_table(_write(tmp_path, "r.csv", content), filename="r.csv", options=options)
    assert result.skipped_lines == 1
    assert result.frame.width == 3
    assert result.frame.height == 2
    assert any("skipped" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('a,b,c\n1,"2,3\n4,5,6\n', 2),
        ("a,b\n1,x\n2,5'11\"\n", 3),
        ('a,b\n1,"abc"x\n2,y\n', 2),
    ],
    ids=["unclosed-quote", "quote-inside-unquoted-field", "text-after-closing-quote"],
)
def test_read_table_rejects_malformed_quoting_naming_line(
    tmp_path: Path, content: str, line: int
) -> None:
    with pytest.raises(DataProblem) as caught:
        read_table(_write(tmp_path, "q.csv", content), filename="q.csv")
    assert caught.value.code == "data_problem"
    assert "broken quoting" in caught.value.message
    assert caught.value.details == {"file": "q.csv", "line": line, "problem": "malformed_quoting"}


@pytest.mark.parametrize(
    ("name", "content", "words", "problem"),
    [
        ("e.csv", b"", "is empty", "empty"),
        ("e.csv", b"\xef\xbb\xbf\n\n", "is empty", "empty"),
        ("h.csv", b"a,b,c\n", "no data rows", "no_data_rows"),
        ("h.json", b"[]", "no columns", "empty"),
        ("h.jsonl", b'{"a": 1}\n{"a": 2,\n', "line 2", "bad_json"),
        ("h.json", b'[{"a": 1},\n {"a": }]', "line 2", "bad_json"),
        ("h.parquet", b"PAR1 not really parquet", "Parquet", "bad_parquet"),
    ],
    ids=["empty", "only-bom", "header-only", "empty-json", "bad-jsonl", "bad-json", "bad-parquet"],
)
def test_read_table_reports_unusable_content(
    tmp_path: Path, name: str, content: bytes, words: str, problem: str
) -> None:
    with pytest.raises(DataProblem) as caught:
        read_table(_write(tmp_path, name, content), filename=name)
    assert caught.value.code == "data_problem"
    assert words in caught.value.message
    assert caught.value.details["problem"] == problem
    assert caught.value.details["file"] == name


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("data.xls", b"anything", "'.xls'"),
        ("data.pdf", b"%PDF-1.4", "'.pdf'"),
        ("data", b"a,b\n1,2\n", "no extension"),
    ],
    ids=["xls", "pdf", "no-extension"],
)
def test_read_table_rejects_unsupported_extension_listing_allowed(
    tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        read_table(_write(tmp_path, "upload", content), filename=name)
    error = caught.value
    assert (error.code, error.status) == ("unsupported_media_type", 415)
    assert words in error.message
    assert ".csv" in error.message and ".parquet" in error.message
    assert ".xlsx" in error.details["allowed"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("junk.csv", bytes(range(256)) * 8, "binary data"),
        ("old.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "old Excel"),
        ("fake.xlsx", b"a,b\n1,2\n", "content is not one"),
        ("fake.parquet", b"a,b\n1,2\n", "content is not one"),
        ("broken.xlsx", b"PK\x03\x04garbage", "could not be opened"),
    ],
    ids=["binary-junk", "xls-content", "csv-named-xlsx", "csv-named-parquet", "corrupt-xlsx"],
)
def test_read_table_rejects_content_it_cannot_read(
    tmp_path: Path, name: str, content: bytes, words: str
) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        read_table(_write(tmp_path, name, content), filename=name)
    assert caught.value.code == "unsupported_media_type"
    assert words in caught.value.message


def test_read_table_reads_parquet_sent_with_csv_name(tmp_path: Path) -> None:
    path = tmp_path / "p.bin"
    pl.DataFrame({"a": [1, 2]}).write_parquet(path)
    result = read_table(path, filename="data.csv")
    assert result.format == "parquet"
    assert result.frame.get_column("a").to_list() == [1, 2]
    assert "read as Parquet" in result.warnings[0]


def test_read_table_reads_excel_first_sheet_by_default(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "b.xlsx",
        {
            "Sales": [["region", "amount", "day"], ["north", 1.5, dt.date(2024, 1, 2)]],
            "Other": [["x"], [1]],
        },
    )
    result = read_table(path, filename="b.xlsx")
    assert (result.format, result.sheet, result.sheets) == ("xlsx", "Sales", ["Sales", "Other"])
    assert result.frame.row(0) == ("north", 1.5, dt.date(2024, 1, 2))
    assert any("2 sheets" in w and "'Other'" in w for w in result.warnings), result.warnings
    chosen = read_table(path, filename="b.xlsx", options=ReadOptions(sheet="Sales"))
    assert not any("sheets" in w for w in chosen.warnings)


def test_read_table_reads_named_excel_sheet_and_fills_empty_names(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "b.xlsx", {"A": [["x"], [1]], "B": [["k", None], ["v", 2]]})
    result = read_table(path, filename="b.xlsx", options=ReadOptions(sheet="B"))
    assert result.sheet == "B"
    assert result.frame.columns == ["k", "column_2"]


def test_read_table_finds_an_excel_header_below_a_report_title(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["Quarterly sales report"],
        ["Generated for the board", None, None],
        [],
        ["region", "units", "price"],
        ["north", 3, 1.5],
        ["south", 4, 2.0],
    ]
    result = read_table(_workbook(tmp_path / "r.xlsx", {"Q3": rows}), filename="r.xlsx")
    assert result.frame.columns == ["region", "units", "price"]
    assert result.frame.rows() == [("north", 3, 1.5), ("south", 4, 2.0)]
    assert any("on row 4" in warning and "3 row(s)" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    "rows",
    [
        [["region", "2023", "2024"], ["north", 1, 2]],  # years as column names
        [[1, 2, 3], [4, 5, 6]],  # no header at all
        [["k", None], ["v", 2]],  # a half-filled first row in a narrow sheet
    ],
    ids=["numeric-names", "no-header", "narrow"],
)
def test_read_table_keeps_the_first_excel_row_as_header_otherwise(
    tmp_path: Path, rows: list[list[object]]
) -> None:
    path = _workbook(tmp_path / "b.xlsx", {"S": rows})
    assert find_header_row(path, "S") == 0
    assert not read_table(path, filename="b.xlsx").warnings


def test_read_table_rejects_unknown_sheet_naming_available(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "b.xlsx", {"Sales": [["x"], [1]], "Costs": [["y"], [2]]})
    with pytest.raises(InvalidInput) as caught:
        read_table(path, filename="b.xlsx", options=ReadOptions(sheet="Budget"))
    error = caught.value
    assert error.code == "invalid_input"
    assert "no sheet named 'Budget'" in error.message
    assert "'Sales', 'Costs'" in error.message
    assert error.details["sheets"] == ["Sales", "Costs"]


def test_read_table_rejects_empty_excel_sheet(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "b.xlsx", {"Blank": []})
    with pytest.raises(DataProblem) as caught:
        read_table(path, filename="b.xlsx")
    assert caught.value.code == "data_problem"
    assert "Sheet 'Blank'" in caught.value.message and "empty" in caught.value.message


def test_read_table_reads_parquet(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}).write_parquet(path)
    result = read_table(path, filename="t.parquet")
    assert result.format == "parquet"
    assert result.frame.schema == pl.Schema({"a": pl.Int64, "b": pl.String})


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("t.json", json.dumps([{"a": 1, "tags": ["x", "y"], "meta": {"k": 1}}, {"a": 2}])),
        ("t.jsonl", '{"a": 1, "tags": ["x", "y"], "meta": {"k": 1}}\n{"a": 2}\n'),
        ("t.ndjson", '{"a": 1, "tags": ["x", "y"], "meta": {"k": 1}}\n\n{"a": 2}\n'),
        ("t.json", '{"a": 1, "tags": ["x", "y"], "meta": {"k": 1}}\n{"a": 2}\n'),
    ],
    ids=["array", "jsonl", "ndjson-with-blank-line", "jsonl-named-json"],
)
def test_read_table_reads_json_and_stringifies_nested_values(
    tmp_path: Path, name: str, content: str
) -> None:
    result = read_table(_write(tmp_path, name, content), filename=name)
    frame = result.frame
    assert frame.get_column("a").to_list() == [1, 2]
    assert frame.get_column("tags").to_list() == ['["x","y"]', None]
    assert frame.get_column("meta").to_list() == ['{"k":1}', None]
    assert any("nested" in warning for warning in result.warnings)
