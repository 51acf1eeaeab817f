"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging


class RefusedRequestOneLine(logging.Filter):
    """A refused request (4xx) is logged as one line, without the traceback of its exception.

    Django logs a PermissionDenied, Http404 or BadRequest that a view raised with the exception
    attached, so every expected 403 printed a traceback. Those are answers, not faults: the line
    keeps the path and the exception's message; a 5xx keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and status < 500:
            exception = record.exc_info[1]
            reason = str(exception) if exception is not None else ""
            message = record.getMessage()
            record.msg = f"{message} ({reason})" if reason and reason not in message else message
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True
