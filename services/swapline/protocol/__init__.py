"""The v1 wire protocol, below both the servers and their clients.

* :mod:`~swapline.protocol.wire`: pixels and geometry (images, boxes,
  landmarks, affine matrices) to and from messages, with the checks a server
  applies to what it receives;
* :mod:`~swapline.protocol.options`: each stage's options, face types and
  the other message ⇄ domain mappings, each written once in both directions;
* :mod:`~swapline.protocol.status`: domain errors ⇄ gRPC status codes, the
  one table servers and clients share;
* :mod:`~swapline.protocol.channel`: client channels with retries and byte
  counting;
* :mod:`~swapline.protocol.jobs`: the Orchestrator's jobs, job specs and
  training runs.
"""
