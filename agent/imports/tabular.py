"""One reader for uploaded tables: CSV in any common encoding and dialect, or the first sheet of an .xlsx workbook."""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from xml.etree.ElementTree import ParseError

from charset_normalizer import from_bytes

from agent.errors import InvalidInput

MAX_ROWS = 5000
MAX_FIELD_CHARS = 1_000_000
SNIFF_CHARS = 64_000
DELIMITERS = ",;\t"
# Single-byte code pages charset-normalizer chooses among, in the order a tie is broken.
CODEPAGES = ("cp1251", "cp1252", "koi8_r", "cp1250", "cp866", "mac_cyrillic", "iso8859_15", "cp1257")
ENCODING_LABELS = {
    "utf_8": "UTF-8", "utf_8_sig": "UTF-8 (with BOM)", "utf_16": "UTF-16", "utf_16_le": "UTF-16 LE",
    "utf_16_be": "UTF-16 BE", "utf_32": "UTF-32", "cp1251": "Windows-1251", "cp1252": "Windows-1252",
    "cp1250": "Windows-1250", "cp1257": "Windows-1257", "koi8_r": "KOI8-R", "cp866": "DOS-866 (cp866)",
    "mac_cyrillic": "Mac Cyrillic", "iso8859_15": "ISO-8859-15",
}
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
DAMAGED_XLSX = (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, ParseError)
"""What openpyxl raises on a damaged workbook (with its InvalidFileException): a broken zip, malformed XML,
attributes it does not know, cell references without a column."""
_WORD = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class Row:
    """One data row: its row number in the file (the header is row 1) and its cells, stripped."""

    number: int
    cells: list[str]


@dataclass
class Table:
    """The header and data rows of an upload, and how it was read (for the page to say so)."""

    header: list[str]
    rows: list[Row]
    kind: str  # "csv" or "xlsx"
    encoding: str | None = None  # Python codec name; None for .xlsx
    delimiter: str | None = None
    nul_removed: bool = False

    @property
    def encoding_label(self) -> str:
        """The encoding as people know it, e.g. "Windows-1251"."""
        return ENCODING_LABELS.get(self.encoding or "", (self.encoding or "").upper().replace("_", "-"))

    @property
    def delimiter_name(self) -> str:
        """comma, semicolon or tab."""
        return DELIMITER_NAMES.get(self.delimiter or "", repr(self.delimiter))

    def column(self, names: tuple[str, ...]) -> int | None:
        """Index of the first header (case-insensitive) among names, in the order of names."""
        lowered = [h.lower() for h in self.header]
        return next((lowered.index(n) for n in names if n in lowered), None)

    def to_csv(self) -> str:
        """The table as UTF-8-ready comma-separated text (to carry it between pages)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(r.cells for r in self.rows)
        return out.getvalue()


def read_table(data: bytes, *, filename: str | None, max_rows: int = MAX_ROWS) -> Table:
    """Header and rows of an uploaded CSV or .xlsx file; InvalidInput saying what to do when it is unusable.

    NUL characters (left by some exporters) are removed, and the result says so.
    """
    name = (filename or "").lower()
    if not data.strip():
        raise InvalidInput("The file is empty. It needs a header row and one row per person.")
    if name.endswith(".xls") or data.startswith(OLE_MAGIC):
        raise InvalidInput("This is an old Excel .xls file (or a password-protected workbook), which cannot be read. "
                           "In Excel choose File → Save As → Excel Workbook (.xlsx) or CSV, and upload that.")
    if name.endswith((".xlsx", ".xlsm")) or data.startswith(ZIP_MAGIC):
        return _read_xlsx(data, max_rows=max_rows)
    text, encoding = decode(data)
    nul_removed = "\x00" in text or (b"\x00" in data and not encoding.startswith(("utf_16", "utf_32")))
    text = text.replace("\x00", "")
    delimiter = sniff_delimiter(text)
    records = _parse_csv(text, delimiter)
    table = _table(records, kind="csv", max_rows=max_rows)
    table.encoding, table.delimiter, table.nul_removed = encoding, delimiter, nul_removed
    return table


def decode(data: bytes) -> tuple[str, str]:
    """The text and the codec it was read with: a BOM, UTF-16 without one, strict UTF-8, else charset-normalizer.

    Stray NUL bytes are dropped before guessing a single-byte encoding.
    """
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf_32"), (codecs.BOM_UTF32_BE, "utf_32"),
                       (codecs.BOM_UTF8, "utf_8_sig"), (codecs.BOM_UTF16_LE, "utf_16"),
                       (codecs.BOM_UTF16_BE, "utf_16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"The file starts like {ENCODING_LABELS[codec]} text but is not valid "
                                   f"{ENCODING_LABELS[codec]} (byte {exc.start}). Save it again as CSV UTF-8.") from exc
    if codec := _utf16_without_bom(data):
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError:
            pass
    data = data.replace(b"\x00", b"")
    try:
        return data.decode("utf_8"), "utf_8"
    except UnicodeDecodeError:
        pass
    matches = list(from_bytes(data, cp_isolation=list(CODEPAGES)))
    if not matches:
        raise InvalidInput("The file is not readable text in a known encoding. Save it as CSV UTF-8 "
                           "(Excel: File → Save As → CSV UTF-8) or as .xlsx, and upload it again.")
    order = {c: i for i, c in enumerate(CODEPAGES)}
    def rank(codec: str) -> int:
        return order.get(codec, len(order))

    best = min(matches, key=lambda m: (_implausible_words(str(m)), round(m.chaos, 2),
                                       min(rank(c) for c in [m.encoding, *m.could_be_from_charset])))
    # Code pages that give the very same text are folded into one match: name the most common of them.
    return str(best), min([best.encoding, *best.could_be_from_charset], key=rank)


def _utf16_without_bom(data: bytes) -> str | None:
    """utf_16_le/utf_16_be when NUL bytes fill one byte of most pairs, as in mostly-ASCII UTF-16 text."""
    sample = data[:SNIFF_CHARS - SNIFF_CHARS % 2]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.6 * pairs and even < 0.1 * pairs:
        return "utf_16_le"
    if even > 0.6 * pairs and odd < 0.1 * pairs:
        return "utf_16_be"
    return None


def _implausible_words(text: str) -> int:
    """Words that betray a wrong code page: Cyrillic mixed with Latin, or a word made only of accented letters."""
    bad = 0
    for word in _WORD.findall(text[:SNIFF_CHARS]):
        cyrillic = sum("\u0400" <= c <= "\u04ff" for c in word)
        ascii_letters = sum(c.isascii() for c in word)
        other = len(word) - cyrillic - ascii_letters
        if (cyrillic and (ascii_letters or other)) or (other and not ascii_letters and not cyrillic):
            bad += 1
        elif any(a.islower() and b.isupper() for a, b in zip(word, word[1:], strict=False)) and not word.isascii():
            bad += 1
    return bad


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab: csv.Sniffer on the first lines, else the one the header row uses most."""
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter and delimiter in DELIMITERS:
        return delimiter
    header = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _parse_csv(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every record; csv errors become InvalidInput naming the line."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, doublequote=True, quotechar='"',
                        strict=False)
    records: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for cells in reader:
            number += 1
            records.append((number, cells))
    except csv.Error as exc:
        line = number + 1
        if "field larger than field limit" in str(exc):
            raise InvalidInput(f"Row {line} has a cell longer than {MAX_FIELD_CHARS:,} characters. This usually "
                               f"means a quote (\") that is never closed; fix that row and upload again.") from exc
        raise InvalidInput(f"Row {line} cannot be read as CSV: {exc}.") from exc
    return records


def _read_xlsx(data: bytes, *, max_rows: int) -> Table:
    """The first sheet of a workbook (values, not formulas), read in openpyxl's read-only mode."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    damaged = (*DAMAGED_XLSX, InvalidFileException)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except damaged as exc:
        raise _unreadable_workbook() from exc
    try:
        if not workbook.worksheets:
            raise InvalidInput("The workbook has no sheet.")
        records: list[tuple[int, list[str]]] = []
        for number, values in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if any(cells):
                records.append((number, cells))
                if len(records) > max_rows + 1:
                    break
    except damaged as exc:  # read-only mode parses the sheet while iterating
        raise _unreadable_workbook() from exc
    finally:
        workbook.close()
    return _table(records, kind="xlsx", max_rows=max_rows)


def _unreadable_workbook() -> InvalidInput:
    return InvalidInput("The file cannot be read as an Excel workbook (.xlsx). Open it in Excel and save it "
                        "again as .xlsx or as CSV UTF-8.")


def _cell_text(value: Any) -> str:
    """A spreadsheet value as the text a person sees (1.0 → "1", dates in ISO form)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).replace("\x00", "").strip()


def _table(records: list[tuple[int, list[str]]], *, kind: str, max_rows: int) -> Table:
    """Drop blank rows, take the first as the header (whitespace runs made one space) and refuse too many rows."""
    rows = [(n, [c.strip() for c in cells]) for n, cells in records if any(c.strip() for c in cells)]
    if not rows:
        raise InvalidInput("The file is empty. It needs a header row and one row per person.")
    header, data = [" ".join(h.split()) for h in rows[0][1]], rows[1:]  # a line break inside a heading is a space
    if len(data) > max_rows:
        raise InvalidInput(f"The file has more than {max_rows:,} rows; at most {max_rows:,} rows per upload. "
                           "Split it into smaller files.")
    return Table(header=header, rows=[Row(number=n, cells=c) for n, c in data], kind=kind)
