"""CSV and XLSX writers that hold one chunk of rows at a time, whatever the number of rows.

CSV: `csv_chunks` turns rows into byte chunks of a few hundred rows each, for a
StreamingHttpResponse: the header leaves first, then rows as they are read. A server writes
each chunk it is given with a system call: rows are batched, so a call carries a few hundred
rows, not one.

XLSX: an XLSX is a zip whose directory comes last and whose sheet has to be complete before it
is compressed, so it cannot leave the server before the last row is written. xlsxwriter in
`constant_memory` mode writes each row's XML to a temporary file as it comes (memory stays at
one row) and zips the parts on `close()`; the zip goes to an anonymous temporary file (no name
on disk: it vanishes when closed, at the end of the response or if the process dies), which
FileResponse sends in blocks (sendfile under gunicorn). xlsxwriter's own part files go to a
temporary directory removed when the workbook is done, written or not. Memory is flat; disk
holds the sheet's XML (about 0.4 KB a call record) until the zip is made, then the zip. The
price: nothing is sent until the file is complete (354 s for 1 M call records on a 2-core
machine at load 12, bench/exports.py; xlsxwriter alone writes ~10,000 rows/s when the machine
is quiet), so the server's request timeout must allow it (README: gunicorn --timeout 600).

Why xlsxwriter rather than openpyxl's write-only mode: both keep memory flat; on 100,000
call-record rows xlsxwriter wrote 10,300 rows/s (21 MiB peak RSS), openpyxl 4,300 rows/s
(24 MiB), same machine, same rows.

Excel's sheet holds 1,048,576 rows: a longer export continues on further sheets ("Calls",
"Calls 2", …), each with the header, so nothing is cut and every sheet opens in Excel.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import xlsxwriter
from django.http import FileResponse, StreamingHttpResponse

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROWS_PER_CHUNK = 500
# Excel's limit, the header row included.
SHEET_ROWS = 1_048_576

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection);
# callers' numbers, end reasons and names all come from outside.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """The cell as text, with a leading quote when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def csv_chunks(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """The header, then the rows in chunks of ROWS_PER_CHUNK, as UTF-8 CSV.

    Cells are written as given: text that comes from outside must already be `csv_safe`.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield _drain(buffer)
    batch: list[Sequence[object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == ROWS_PER_CHUNK:
            writer.writerows(batch)
            batch.clear()
            yield _drain(buffer)
    if batch:
        writer.writerows(batch)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def csv_response(chunks: Iterable[bytes], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@dataclass
class Sheet:
    """One table of a workbook. `number_format` by column name, e.g. {"bot_seconds": "0.0"}."""

    title: str
    header: Sequence[str]
    rows: Iterable[Sequence[Any]]
    number_format: dict[str, str] = field(default_factory=dict)


def write_xlsx(sheets: Iterable[Sheet], target: Any) -> None:
    """The sheets as an XLSX into `target` (a binary file object), in constant memory.

    Text cells are written as strings, which Excel never evaluates: the CSV formula guard is
    not needed (and would show its quote). None and "" leave the cell empty.
    """
    with tempfile.TemporaryDirectory(prefix="xlsx-") as parts:
        book = xlsxwriter.Workbook(target, {"constant_memory": True, "tmpdir": parts})
        try:
            bold = book.add_format({"bold": True})
            for sheet in sheets:
                _write_sheet(book, sheet, bold)
        finally:
            book.close()


def _write_sheet(book: Any, sheet: Sheet, bold: Any) -> None:
    formats = [
        book.add_format({"num_format": sheet.number_format[name]}) if name in sheet.number_format else None
        for name in sheet.header
    ]
    part = 1
    page = _new_page(book, sheet, part, bold)
    row_number = 0
    for row in sheet.rows:
        row_number += 1
        if row_number == SHEET_ROWS:
            part += 1
            page = _new_page(book, sheet, part, bold)
            row_number = 1
        for column, value in enumerate(row):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                page.write_string(row_number, column, value)
            else:
                page.write_number(row_number, column, value, formats[column])


def _new_page(book: Any, sheet: Sheet, part: int, bold: Any) -> Any:
    page = book.add_worksheet(sheet.title if part == 1 else f"{sheet.title} {part}")
    page.write_row(0, 0, list(sheet.header), bold)
    page.freeze_panes(1, 0)
    return page


def xlsx_response(sheets: Iterable[Sheet], filename: str) -> FileResponse:
    """The workbook written to an anonymous temporary file, then served from it (module docstring)."""
    # Closed by the response once sent (or here, if writing fails).
    target = tempfile.TemporaryFile(prefix="export-", suffix=".xlsx")  # noqa: SIM115
    try:
        write_xlsx(sheets, target)
        target.seek(0)
    except BaseException:
        target.close()
        raise
    response = FileResponse(target, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
