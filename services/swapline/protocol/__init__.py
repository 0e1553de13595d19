"""The v1 wire protocol, below both the servers and their clients.

* :mod:`~swapline.protocol.wire`: pixels and geometry (images, boxes,
  landmarks, affine matrices) to and from messages, with the checks a server
  applies to what it receives;
* :mod:`~swapline.protocol.options`: each stage's options and enumerations
  (face types, detector models, colour transfers, codecs);
* :mod:`~swapline.protocol.results`: what stages take and answer (face
  regions, detections, aligned faces, blend items, patches, model
  descriptions); each mapping here is written once, both directions side
  by side;
* :mod:`~swapline.protocol.status`: domain errors ⇄ gRPC status codes, the
  one table servers and clients share;
* :mod:`~swapline.protocol.channel`: client channels with retries and byte
  counting;
* :mod:`~swapline.protocol.security`: mutual TLS between services, bearer
  tokens on the public API, and who the caller is;
* :mod:`~swapline.protocol.jobs`: the Orchestrator's jobs, job specs and
  training runs.
"""
