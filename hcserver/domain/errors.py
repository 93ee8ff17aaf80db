"""Domain errors. Each carries the HTTP status the web layer answers with, and the reference's words."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `status` is the HTTP status, `message` the text clients see."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404

    def __init__(self, message: str = "not found") -> None:
        super().__init__(message)


class Conflict(DomainError):
    status = 409
