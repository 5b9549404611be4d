"""Domain errors. Pure code raises these; the gRPC interceptor maps them to status codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base of errors a caller can act on; the message is safe to show them."""


class InvalidArgument(DomainError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(DomainError):
    pass


class AlreadyExists(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unavailable(DomainError):
    """Transient: the caller should retry shortly (e.g. data moving between workers)."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that do not verify."""
