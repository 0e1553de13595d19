"""swapline: a face-swap video pipeline built as gRPC services.

Packages, lowest layer first (a module imports only from its own layer or
below; ``tests/unit/test_layering.py`` holds the order):

* ``errors``, ``commands``, ``v1`` (generated protobuf code): domain errors,
  how a swapline command line is started;
* ``concurrency``, ``media``: bounded parallel maps, streaming decode;
* ``stages``: each stage's logic as plain code, no gRPC;
* ``config``, ``protocol``, ``train``: typed configuration per process role;
  the wire protocol below servers and clients; training;
* ``pipeline``, ``model``: the frame driver and its embedded and remote
  stages; export, quantization, Triton, facesets;
* ``runtime``, ``jobs``, ``evaluation``: what every server shares; swap jobs
  and training runs; quality and capacity measures;
* ``protocol.jobs``: the Orchestrator's job messages;
* ``servers``, ``client``: thin gRPC adapters; the Orchestrator's client;
* ``devtools``: the local stack and the benchmarks;
* ``cli``: the command line.
"""

__version__ = "0.1.0"
