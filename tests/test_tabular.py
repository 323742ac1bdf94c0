"""The one table reader: encodings, CSV dialects, .xlsx, and clear errors; used by thread and suppression imports."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from agent.errors import InvalidInput
from agent.imports import tabular
from agent.imports.tabular import read_table
from agent.suppressions.service import emails_from_csv
from agent.threads import bulk

RUSSIAN = ("email;name;company\nivan@example.ru;Иван Петров;ООО «Ромашка»\n"
           "olga@example.ru;Ольга Смирнова;Рога и копыта\n")
LATIN = "email,name,company\njose@example.es,José García,Café Müller\nmm@example.de,Jürgen Müller,Straße AG\n"


def cells(data: bytes, filename: str | None = "list.csv") -> list[list[str]]:
    table = read_table(data, filename=filename)
    return [table.header, *(r.cells for r in table.rows)]


@pytest.mark.parametrize(("text", "codec", "label"), [
    (LATIN, "utf-8", "UTF-8"), (LATIN, "utf-8-sig", "UTF-8 (with BOM)"), (RUSSIAN, "utf-8-sig", "UTF-8 (with BOM)"),
    (RUSSIAN, "cp1251", "Windows-1251"), (LATIN, "cp1252", "Windows-1252"),
    (RUSSIAN, "utf-16", "UTF-16"), (LATIN, "utf-16", "UTF-16"),
])
def test_encodings_are_detected_and_named(text: str, codec: str, label: str) -> None:
    table = read_table(text.encode(codec), filename="list.csv")
    assert table.encoding_label == label and table.kind == "csv"
    expected = [line.split(";" if ";" in text else ",") for line in text.splitlines()]
    assert [table.header, *(r.cells for r in table.rows)] == expected


def test_short_files_in_single_byte_code_pages() -> None:
    assert cells("email,name\nivan@example.ru,Пётр\n".encode("cp1251"))[1] == ["ivan@example.ru", "Пётр"]
    assert cells("email,name\njose@example.es,José\n".encode("cp1252"))[1] == ["jose@example.es", "José"]
    table = read_table("email,name\nm@example.de,Müller\n".encode("cp1252"), filename=None)
    assert table.encoding_label == "Windows-1252"


@pytest.mark.parametrize(("text", "name"), [
    ("email;name;note\na@example.com;Ann;likes, commas\nb@example.com;Bo;\n", "semicolon"),
    ("email\tname\tnote\na@example.com\tAnn\tlikes, commas; and semicolons\nb@example.com\tBo\t\n", "tab"),
    ('email,name,note\na@example.com,Ann,"likes; semicolons"\nb@example.com,Bo,\n', "comma"),
])
def test_dialects_are_sniffed(text: str, name: str) -> None:
    table = read_table(text.encode(), filename="list.csv")
    assert table.delimiter_name == name
    assert table.header == ["email", "name", "note"] and table.rows[0].cells[:2] == ["a@example.com", "Ann"]
    assert len(table.rows[0].cells) == 3 and table.rows[1].cells == ["b@example.com", "Bo", ""]


def test_single_column_and_row_numbers_skip_blank_lines() -> None:
    table = read_table(b"email\n\na@example.com\n\n\nb@example.com\n", filename=None)
    assert [(r.number, r.cells) for r in table.rows] == [(3, ["a@example.com"]), (6, ["b@example.com"])]


def workbook(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.create_sheet("Second").append(["not", "read"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_first_sheet_values() -> None:
    from datetime import datetime

    data = workbook([["Email", "Name", "Phone", "Since"],
                     ["ivan@example.ru", "Иван", 79161234567, datetime(2026, 1, 5)],
                     [None, None, None, None], ["jose@example.es", "José", 1.5, "=1+1"]])
    table = read_table(data, filename="people.xlsx")
    assert table.kind == "xlsx" and table.header == ["Email", "Name", "Phone", "Since"]
    assert [(r.number, r.cells) for r in table.rows] == [(2, ["ivan@example.ru", "Иван", "79161234567", "2026-01-05"]),
                                                          (4, ["jose@example.es", "José", "1.5", ""])]  # no formulas
    assert read_table(data, filename=None).kind == "xlsx", "recognised by its content too"


@pytest.mark.parametrize(("data", "filename", "message"), [
    (b"", "a.csv", "The file is empty"),
    (b"  \n\r\n ", "a.csv", "The file is empty"),
    (b",,,\n,,\n", "a.csv", "The file is empty"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls", "old Excel .xls file"),
    (b"email\na@example.com\n", "old.xls", "Save As"),
    (b"PK\x03\x04 this is not a workbook", "book.xlsx", "cannot be read as an Excel workbook"),
    (b"email,note\na@example.com,\"" + b"x" * (tabular.MAX_FIELD_CHARS + 10) + b"\n", "a.csv", "never closed"),
    (b"\xef\xbb\xbfemail\n\xff\xfe\xfd\n", "a.csv", "not valid UTF-8"),
])
def test_unusable_files_say_what_to_do(data: bytes, filename: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_table(data, filename=filename)


def test_big_fields_under_the_limit_and_too_many_rows() -> None:
    note = "y" * 200_000  # above the csv module's default 131,072-character limit
    assert read_table(f'email,note\na@example.com,"{note}"\n'.encode(), filename=None).rows[0].cells[1] == note
    rows = "".join(f"p{i}@example.com\n" for i in range(11))
    assert len(read_table(f"email\n{rows}".encode(), filename=None, max_rows=11).rows) == 11
    with pytest.raises(InvalidInput, match="more than 10 rows"):
        read_table(f"email\n{rows}".encode(), filename=None, max_rows=10)


def test_nul_bytes_are_removed_and_reported() -> None:
    table = read_table(b"email,name\r\na@example.com,An\x00n\r\n", filename=None)
    assert table.nul_removed and table.rows[0].cells == ["a@example.com", "Ann"]
    assert not read_table(b"email\na@example.com\n", filename=None).nul_removed


def test_bare_carriage_returns_end_rows_and_never_break_the_reader() -> None:
    assert cells(b"email,name\rann@example.com,Ann\r") == [["email", "name"], ["ann@example.com", "Ann"]]  # old Mac
    assert cells(b'"E-mail\r",name\r\nann@example.com,Ann\r\n')[0] == ["E-mail", "name"]
    assert cells(b'"Email\raddress";name\nann@example.com;Ann\n')[0] == ["Email address", "name"]
    assert emails_from_csv(b'"Email\r\naddress"\nann@example.com\n') == [(2, "ann@example.com")]
    assert cells(b"email\rname\n") == [["email"], ["name"]]
    with pytest.raises(InvalidInput, match="email column"):
        bulk.rows_from_csv(b"em\rail,name\nann@example.com,Ann\n")
    with pytest.raises(InvalidInput, match="The file is empty"):
        read_table(b'"\r', filename="a.csv")


def test_nul_bytes_anywhere() -> None:
    table = read_table(b"em\x00ail,na\x00me\x00\nann@example.com\x00,Ann\n", filename="a.csv")
    assert table.nul_removed and [table.header, table.rows[0].cells] == [["email", "name"], ["ann@example.com", "Ann"]]
    with pytest.raises(InvalidInput, match="The file is empty"):
        read_table(b"\x00" * 1000, filename="a.csv")


def test_fields_beyond_the_csv_modules_128_kb_limit() -> None:
    big = "z" * 200_000
    assert cells(f"email,note\nann@example.com,{big}\n".encode())[1] == ["ann@example.com", big]  # unquoted
    assert cells(f"email,{big}\nann@example.com,x\n".encode())[0] == ["email", big]  # in the header
    with pytest.raises(InvalidInput, match="Row 2 has a cell longer than 1,000,000 characters"):
        read_table(b"email,note\nann@example.com," + b"z" * (tabular.MAX_FIELD_CHARS + 1) + b"\n", filename=None)


def _damaged(part: str, old: bytes | None, new: bytes) -> bytes:
    """A good workbook with one part replaced (old None) or one piece of it changed."""
    with zipfile.ZipFile(io.BytesIO(workbook([["email"], ["ann@example.com"]]))) as good:
        parts = {name: good.read(name) for name in good.namelist()}
    assert old is None or old in parts[part], "the piece to change is there"
    parts[part] = new if old is None else parts[part].replace(old, new)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as damaged:
        for name, data in parts.items():
            damaged.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(("part", "old", "new"), [
    ("[Content_Types].xml", None, b"<<<"), ("xl/workbook.xml", None, b"garbage"), ("xl/styles.xml", None, b"<x"),
    ("xl/worksheets/sheet1.xml", b"</sheetData>", b"<row><c"),  # read-only mode parses the sheet while iterating
    ("xl/worksheets/sheet1.xml", b'r="A2"', b'r="2"'),  # a cell reference without a column
    ("xl/workbook.xml", b"autoFilterDateGrouping", b"autterDateGrouping"),  # an attribute openpyxl does not know
])
def test_damaged_workbooks_say_what_to_do(part: str, old: bytes | None, new: bytes) -> None:
    with pytest.raises(InvalidInput, match="cannot be read as an Excel workbook"):
        read_table(_damaged(part, old, new), filename="book.xlsx")


CSV_PIECES = st.sampled_from(["\r", "\n", '"', ",", ";", "\t", "\x00", " ", "a", "@", "email", "name", "\ufeff", "é",
                              "\u2028", "\x85", "\x1c", "Ж"])


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=80),
                 st.tuples(st.lists(CSV_PIECES, max_size=40).map("".join),
                           st.sampled_from(["utf-8", "utf-16", "cp1251", "utf-8-sig"]))
                 .map(lambda t: t[0].encode(t[1], errors="ignore"))))
def test_any_upload_is_a_table_or_a_message(data: bytes) -> None:
    try:
        table = read_table(data, filename="a.csv")
    except InvalidInput as exc:
        assert exc.message.strip()
    else:
        assert table.header and all("\x00" not in c for c in table.header)


def test_thread_import_reads_real_files() -> None:
    rows = bulk.rows_from_csv(RUSSIAN.encode("cp1251"))
    assert rows[0] == {"email": "ivan@example.ru", "name": "Иван Петров", "company": "ООО «Ромашка»"}
    valid, errors = bulk.to_thread_creates("00000000-0000-0000-0000-000000000001", rows)
    assert errors == [] and [d.recipient_name for _n, d in valid] == ["Иван Петров", "Ольга Смирнова"]
    xlsx = bulk.rows_from_csv(workbook([["E-mail", "Name"], ["jose@example.es", "José"]]), filename="a.xlsx")
    assert xlsx == [{"e-mail": "jose@example.es", "name": "José"}]
    table = read_table(LATIN.encode("cp1252"), filename=None)
    mapped = bulk.rows_with_mapping(table, bulk.guess_mapping(table.header))
    assert mapped[1]["name"] == "Jürgen Müller" and mapped[1]["company"] == "Straße AG"
    with pytest.raises(InvalidInput, match="email column"):
        bulk.rows_from_csv("имя\nИван\n".encode("cp1251"))
    assert bulk.guess_mapping(["Эл. почта", "ФИО", "Компания", "Примечание"]) == {
        "email": "Эл. почта", "name": "ФИО", "company": "Компания", "context": "Примечание", "timezone": "",
        "language": ""}


def test_suppression_import_reads_real_files() -> None:
    data = "Имя;E-mail\nИван;ivan@example.ru\n;\nОльга;olga@example.ru\n".encode("cp1251")
    assert emails_from_csv(data) == [(2, "ivan@example.ru"), (4, "olga@example.ru")]
    assert emails_from_csv("email\r\nx@example.com\r\n".encode("utf-16")) == [(2, "x@example.com")]
    assert emails_from_csv(workbook([["Email"], ["k@example.com"]]), filename="s.xlsx") == [(2, "k@example.com")]
    with pytest.raises(InvalidInput, match="email column"):
        emails_from_csv(b"name\nKim\n")
