"""Domain errors. The gRPC runtime maps each class to a status code."""


class SwaplineError(Exception):
    """Base class of every error swapline reports to a user."""


class InvalidInputError(SwaplineError):
    """The input is malformed, unsupported or outside the limits."""


class MediaError(InvalidInputError):
    """A media file or buffer cannot be read."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class NotFoundError(SwaplineError):
    """A named thing (model, job, file) does not exist."""


class UnauthenticatedError(SwaplineError):
    """The call carries no valid credentials."""


class PermissionDeniedError(SwaplineError):
    """A path or resource is outside what the caller may use."""


class FailedPreconditionError(SwaplineError):
    """The system is not in a state to do this (a capability this server was
    deployed without)."""


class ResourceExhaustedError(SwaplineError):
    """The server is at capacity; retry later (after ``retry_after_seconds``,
    when the server says)."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class UnavailableError(SwaplineError):
    """A service this call depends on (the Kubernetes API) did not answer."""
