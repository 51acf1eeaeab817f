"""The one exception services raise for a rule the caller broke.

Views turn it into a form error, the API into `{"error": {"code", "message", "fields"}}`.
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(
        self, code: str, message: str, *, field: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        if status is not None:
            self.status_code = status

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.message!r}, field={self.field!r})"
