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
        if status == 503:
            self._database_unavailable(record)
            return True
        if record.exc_info and isinstance(status, int) and status < 500:
            exception = record.exc_info[1]
            reason = str(exception) if exception is not None else ""
            message = record.getMessage()
            record.msg = f"{message} ({reason})" if reason and reason not in message else message
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True

    @staticmethod
    def _database_unavailable(record: logging.LogRecord) -> None:
        """The database out of reach (voiso_byob.db_outage): one warning line with the reason.

        Every request during a restart meets it; a traceback each says nothing the reason does not.
        """
        from voiso_byob.db_outage import is_database_unavailable, reason

        request = getattr(record, "request", None)
        why = getattr(request, "database_unavailable", None)
        exception = record.exc_info[1] if record.exc_info else None
        if why is None and is_database_unavailable(exception):
            assert exception is not None
            why = reason(exception)
        if why is None or getattr(record, "database_unavailable", False):
            return  # not this outage, or rewritten already (a record passes every handler's filter)
        record.database_unavailable = True
        record.msg = f"{record.getMessage()} (database unavailable: {why})"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
