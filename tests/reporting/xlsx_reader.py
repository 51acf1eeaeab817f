"""Reading back an XLSX the exports wrote: sheets by name, rows as lists, and any formula cell.

A small reader (zip + the sheet XML) rather than another library: the tests check what is in
the file — inline strings, numbers, and that no cell is a formula.
"""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


class Book(dict[str, list[list[object]]]):
    formulas: int = 0


def _column(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)  # type: ignore[union-attr]
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    return index - 1


def read_xlsx(data: bytes) -> Book:
    book = Book()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        targets = {rel.get("Id"): rel.get("Target") for rel in rels}
        shared = []
        if "xl/sharedStrings.xml" in archive.namelist():
            strings = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{MAIN}t")) for si in strings]
        for sheet in workbook.iter(f"{MAIN}sheet"):
            xml = ElementTree.fromstring(archive.read("xl/" + targets[sheet.get(REL)]))
            rows: list[list[object]] = []
            for row in xml.iter(f"{MAIN}row"):
                cells: dict[int, object] = {}
                for cell in row.iter(f"{MAIN}c"):
                    if cell.find(f"{MAIN}f") is not None:
                        book.formulas += 1
                    kind = cell.get("t")
                    if kind == "inlineStr":
                        value: object = "".join(t.text or "" for t in cell.iter(f"{MAIN}t"))
                    elif kind == "s":
                        value = shared[int(cell.find(f"{MAIN}v").text)]  # type: ignore[union-attr,arg-type]
                    else:
                        found = cell.find(f"{MAIN}v")
                        value = None if found is None else float(found.text)  # type: ignore[arg-type]
                    cells[_column(cell.get("r"))] = value  # type: ignore[arg-type]
                width = max(cells) + 1 if cells else 0
                rows.append([cells.get(i) for i in range(width)])
            book[sheet.get("name")] = rows  # type: ignore[index]
    return book
