"""Server interceptor: per-RPC metrics, request size limit, and the mapping
from domain errors to gRPC status codes."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from swapline.errors import InvalidInputError, ResourceExhaustedError, UnauthenticatedError
from swapline.protocol.security import CALLER, TokenTable, bearer_token
from swapline.protocol.status import status_for
from swapline.runtime import metrics

log = logging.getLogger(__name__)

# Never refused for capacity: Kubernetes probes and tooling must get through
# however many user calls are open (a busy server is not a dead one).
UNLIMITED_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.")
RETRY_AFTER_KEY = "retry-after-ms"


class _Call:
    """Bookkeeping for one RPC: metrics and the status it ended with."""

    def __init__(self, service: str, method: str) -> None:
        self.service = service
        self.method = method
        self.code = grpc.StatusCode.OK
        self.start = time.perf_counter()
        metrics.RPC_IN_FLIGHT.labels(service, method).inc()

    def finish(self, context: grpc.aio.ServicerContext) -> None:
        code = context.code() if self.code is grpc.StatusCode.OK else self.code
        if isinstance(code, int) or code is None:
            code = grpc.StatusCode.OK if not code else grpc.StatusCode.UNKNOWN
        name = code.name
        metrics.RPC_IN_FLIGHT.labels(self.service, self.method).dec()
        metrics.RPC_REQUESTS.labels(self.service, self.method, name).inc()
        if code is not grpc.StatusCode.OK:
            metrics.RPC_ERRORS.labels(self.service, self.method, name).inc()
        metrics.RPC_LATENCY.labels(self.service, self.method).observe(
            time.perf_counter() - self.start
        )


@dataclass(frozen=True)
class _Sized:
    """A request and the size it had on the wire."""

    message: Any
    size: int


def _sized(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], _Sized]:
    """Keeps each request's wire size: asking a large message for its
    ByteSize() afterwards costs about as much as serializing it again."""

    def deserialize(data: bytes) -> _Sized:
        return _Sized(deserializer(data) if deserializer else data, len(data))

    return deserialize


class StageInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps every handler of a server.

    * counts requests, errors and in-flight calls, times each call;
    * refuses requests larger than ``max_message_bytes`` with INVALID_ARGUMENT;
    * with ``tokens``, refuses a call without a known bearer token with
      UNAUTHENTICATED, and makes the token's principal the call's
      :func:`~swapline.protocol.security.caller`;
    * refuses a user call beyond ``max_calls`` open ones with
      RESOURCE_EXHAUSTED and a retry hint (health and reflection are never
      counted nor refused);
    * turns SwaplineError subclasses into their status codes and any other
      exception into INTERNAL (logged with its traceback), so the server
      never dies of a bad request.
    """

    def __init__(
        self,
        service: str,
        max_message_bytes: int,
        max_calls: int = 64,
        tokens: TokenTable | None = None,
    ) -> None:
        self.service = service
        self.max_message_bytes = max_message_bytes
        self.max_calls = max_calls
        self.tokens = tokens
        self.open_calls = 0  # only touched on the event loop

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.lstrip("/").startswith(UNLIMITED_SERVICES):
            return handler
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, streaming_request=False),
                request_deserializer=_sized(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, streaming_request=True),
                request_deserializer=_sized(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method, streaming_request=False),
                request_deserializer=_sized(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, method, streaming_request=True),
            request_deserializer=_sized(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def _checked(self, request: _Sized) -> Any:
        if request.size > self.max_message_bytes:
            raise InvalidInputError(
                f"request of {request.size} bytes exceeds the limit of "
                f"{self.max_message_bytes} bytes"
            )
        return request.message

    def _checked_stream(self, requests: AsyncIterator[_Sized]) -> AsyncIterator[Any]:
        async def checked() -> AsyncIterator[Any]:
            async for request in requests:
                yield self._checked(request)

        return checked()

    async def _fail(
        self, call: _Call, context: grpc.aio.ServicerContext, error: BaseException
    ) -> None:
        call.code = status_for(error)
        retry_after = getattr(error, "retry_after_seconds", None)
        if retry_after is not None:
            context.set_trailing_metadata(((RETRY_AFTER_KEY, str(round(retry_after * 1000))),))
        if call.code is grpc.StatusCode.INTERNAL:
            log.error("%s/%s failed", self.service, call.method, exc_info=error)
            await context.abort(call.code, "internal error")
        log.info("%s/%s: %s: %s", self.service, call.method, call.code.name, error)
        await context.abort(call.code, str(error))

    @contextlib.asynccontextmanager
    async def _handled(
        self, method: str, request: Any, context: grpc.aio.ServicerContext, streaming: bool
    ) -> AsyncIterator[Any]:
        """Times the call, checks request sizes, and turns exceptions into
        status codes; yields the request (or the checked request stream)."""
        call = _Call(self.service, method)
        self.open_calls += 1
        try:
            if self.tokens is not None:
                token = bearer_token(context.invocation_metadata())
                principal = self.tokens.lookup(token) if token else None
                if principal is None:
                    raise UnauthenticatedError(
                        "this server needs a valid bearer token (authorization: Bearer ...)"
                    )
                CALLER.set(principal)
            if self.open_calls > self.max_calls:
                raise ResourceExhaustedError(
                    f"{self.service} has {self.max_calls} calls open, its limit; retry shortly",
                    retry_after_seconds=1.0,
                )
            if streaming:
                yield self._checked_stream(request)
            else:
                yield self._checked(request)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await self._fail(call, context, exc)
        finally:
            self.open_calls -= 1
            call.finish(context)

    def _unary(self, behavior: Any, method: str, streaming_request: bool) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self._handled(method, request, context, streaming_request) as checked:
                return await behavior(checked, context)

        return wrapper

    def _streaming(self, behavior: Any, method: str, streaming_request: bool) -> Any:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with self._handled(method, request, context, streaming_request) as checked:
                async for response in behavior(checked, context):
                    yield response

        return wrapper
