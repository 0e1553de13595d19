"""Swappers spread their calls over every Triton replica a name resolves to:
two real Triton servers behind one address list, as a headless Service's DNS
name gives after the HPA adds a pod."""

from __future__ import annotations

import contextlib
import re
import urllib.request
from pathlib import Path

import numpy as np
import tritonclient.grpc as triton_grpc

from swapline.model.triton import launched
from swapline.stages.swap import ModelRepository, TritonEngine
from tests.conftest import REPO, free_port

REPOSITORY = REPO / "models" / "repository"
MODEL = "d6_to_d10"
CALLS = 24


def served(metrics_port: int) -> int:
    """Successful inference requests a Triton server has answered."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    counts = re.findall(rf'^nv_inference_request_success{{model="{MODEL}".*}} (\S+)$', text, re.M)
    return int(sum(float(c) for c in counts))


def test_calls_are_balanced_over_every_triton_replica(tmp_path: Path) -> None:
    entry = ModelRepository(REPOSITORY).get(MODEL)
    size = entry.resolution
    faces = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), np.uint8)
    metrics = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(
                launched(
                    REPOSITORY,
                    tmp_path / f"triton-{i}.log",
                    free_port(),
                    free_port(),
                    metrics[i],
                    model=MODEL,
                )
            )
            for i in range(2)
        ]
        both = "ipv4:" + ",".join(urls)

        # tritonclient's default channel: every call to the first address.
        plain = triton_grpc.InferenceServerClient(both)
        request = triton_grpc.InferInput("faces", list(faces.shape), "UINT8")
        request.set_data_from_numpy(faces)
        for _ in range(CALLS):
            plain.infer(MODEL, [request])
        plain.close()
        pinned = [served(port) for port in metrics]
        assert sorted(pinned) == [0, CALLS], pinned

        engine = TritonEngine(both, ModelRepository(REPOSITORY))
        for _ in range(CALLS):
            swapped, _ = engine.infer(MODEL, faces)
            assert swapped.shape == faces.shape
        engine.close()
        balanced = [served(port) - before for port, before in zip(metrics, pinned, strict=True)]
    assert sum(balanced) == CALLS and min(balanced) >= CALLS // 3, balanced
