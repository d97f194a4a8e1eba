"""Domain errors: what a use case says went wrong, without knowing about HTTP.

The HTTP edge turns each into a problem+json response with the status named here.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, detail: str = "", **extra: object) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    status, title = 404, "Not Found"


class Conflict(DomainError):
    status, title = 409, "Conflict"


class Unauthorized(DomainError):
    status, title = 401, "Unauthorized"


class Invalid(DomainError):
    """Input that passed the schema but breaks a rule; `errors` maps field to messages."""

    status, title = 422, "Unprocessable Content"

    def __init__(self, errors: dict[str, list[str]], detail: str = "Invalid input") -> None:
        super().__init__(detail, errors=errors)


class TooManyRequests(DomainError):
    status, title = 429, "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
