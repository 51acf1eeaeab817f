"""Exports of call records and reports, CSV and XLSX, in constant memory.

`formats`: the two file formats (a CSV streamed in chunks, an XLSX written in xlsxwriter's
constant-memory mode to an anonymous temporary file and served from it), the formula guard
and the attachment headers. `calls`: call records as export rows, the measured fast read.
`reports`: a report's dict (reporting.reports) as tables. Views are in reporting.views
(calls) and reporting.report_exports (reports).
"""
