"""Domain errors and gRPC status codes: one table, read in both directions.

Servers answer an error with its status (:func:`status_for`); clients turn a
failed call back into the error it stands for (:func:`error_for`).
"""

from __future__ import annotations

import grpc

from swapline.errors import (
    FailedPreconditionError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SwaplineError,
    UnauthenticatedError,
    UnavailableError,
)

STATUS_BY_ERROR: tuple[tuple[type[SwaplineError], grpc.StatusCode], ...] = (
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
)
_ERROR_BY_STATUS = {code: kind for kind, code in STATUS_BY_ERROR}
# Codes whose details speak for themselves: the caller's own mistake.
_CALLER_ERRORS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.FAILED_PRECONDITION,
}


def status_for(error: BaseException) -> grpc.StatusCode:
    """The status a server answers ``error`` with; INTERNAL for anything
    that is not a domain error."""
    for kind, code in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def error_for(error: grpc.RpcError, what: str = "stage call") -> SwaplineError:
    """The domain error a failed call's status stands for. Errors the caller
    made carry the server's words; others also name the call and the code.
    A deadline passed is the server being unreachable or overwhelmed:
    unavailable, for a caller to retry later."""
    code, details = error.code(), error.details() or str(error)
    kind = _ERROR_BY_STATUS.get(code, SwaplineError)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        kind = UnavailableError
    if code in _CALLER_ERRORS:
        return kind(details)
    return kind(f"{what} failed: {code.name}: {details}")
