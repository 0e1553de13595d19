"""Client channels to swapline's services: retries, deadlines, round-robin
over every address a name resolves to, and byte counting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from swapline.protocol.status import error_for

T = TypeVar("T")
MAX_MESSAGE = 256 * 1024 * 1024


def service_config(timeout_s: float = 120.0) -> str:
    retry = {
        "maxAttempts": 5,
        "initialBackoff": "0.25s",
        "maxBackoff": "4s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    return json.dumps(
        {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [
                {
                    "name": [
                        {"service": "swapline.v1.Detector"},
                        {"service": "swapline.v1.Aligner", "method": "Align"},
                        {"service": "swapline.v1.Swapper"},
                        {"service": "swapline.v1.Blender"},
                    ],
                    "timeout": f"{timeout_s:.0f}s",
                    "waitForReady": True,
                    "retryPolicy": retry,
                }
            ],
        }
    )


def channel(address: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    """A client channel with retries, round-robin over every address that
    ``dns:///`` resolves (new pods get traffic after a scale-up); TLS (and
    whatever else ``credentials`` carry) unless they are None."""
    options = [
        ("grpc.service_config", service_config()),
        ("grpc.enable_retries", 1),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    if credentials is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, credentials, options=options)


RETRY_BUDGET_S = 60.0


def with_retries(
    call: Callable[[], T], what: str = "stage call", budget_s: float = RETRY_BUDGET_S
) -> T:
    """Runs ``call``, retrying UNAVAILABLE (a stage server restarting, a pod
    being replaced) with exponential backoff for up to ``budget_s`` seconds;
    other errors become domain errors at once, naming ``what`` was called."""
    deadline = time.monotonic() + budget_s
    delay = 0.2
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise error_for(error, what) from None
        time.sleep(delay)
        delay = min(delay * 2, 3.0)


class CountingChannel:
    """A channel whose calls report the bytes they send and receive, as
    serialized for the wire (protobuf's ByteSize() would serialize large
    messages a second time)."""

    def __init__(self, channel: grpc.Channel, count: Callable[[int], None]) -> None:
        self._channel = channel
        self._count = count
        self.unary_unary = self._counted(channel.unary_unary)
        self.unary_stream = self._counted(channel.unary_stream)
        self.stream_unary = self._counted(channel.stream_unary)
        self.stream_stream = self._counted(channel.stream_stream)

    def _counted(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        count = self._count

        def make(
            method: str,
            request_serializer: Callable[[Any], bytes] | None = None,
            response_deserializer: Callable[[bytes], Any] | None = None,
            **kwargs: Any,
        ) -> Any:
            def serialize(message: Any) -> bytes:
                data = request_serializer(message) if request_serializer else message
                count(len(data))
                return data

            def deserialize(data: bytes) -> Any:
                count(len(data))
                return response_deserializer(data) if response_deserializer else data

            return factory(
                method, request_serializer=serialize, response_deserializer=deserialize, **kwargs
            )

        return make

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)
