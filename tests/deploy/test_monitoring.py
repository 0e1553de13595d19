"""Prometheus rules and the Grafana dashboard: promtool on the rules, and
every shipped PromQL expression against a real Prometheus scraping the
local stack after a real job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from swapline.devtools import stack
from swapline.protocol.security import api_credentials
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc
from tests.conftest import REPO
from tests.deploy.promql import (
    DASHBOARD,
    GPU_ONLY,
    RULES,
    has_values,
    query_range,
    shipped_expressions,
)

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is installed by `make setup` (Debian's prometheus package)"
    return subprocess.run(
        [binary, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
    )


def test_rules_pass_promtool_check_and_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 14 rules found" in checked.stdout
    tested = promtool("test", "rules", "tests/swapline_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_unit_tests_catch_a_wrong_expectation(tmp_path: Path) -> None:
    wrong = (PROMETHEUS_DIR / "tests" / "swapline_test.yml").read_text()
    wrong = wrong.replace("../rules/swapline.rules.yml", str(RULES))
    wrong = wrong.replace("value: 0.5\n", "value: 0.4\n", 1)
    (tmp_path / "wrong.yml").write_text(wrong)
    assert promtool("test", "rules", str(tmp_path / "wrong.yml")).returncode != 0


def test_dashboard_covers_what_operators_watch() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "swapline_rpc_requests_total",
        "swapline_rpc_latency_seconds_bucket",
        "swapline_rpc_errors_total",
        "swapline_stage_queue_depth",
        "swapline_job_frames_per_second",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
        "swapline_jobs",
    ):
        assert metric in exprs, metric


@pytest.mark.slow
def test_every_shipped_expression_has_data_after_a_job(tmp_path: Path, data: Path) -> None:
    repository = REPO / "models" / "repository"
    with stack.running(tmp_path / "stack", repository, [data, tmp_path], "d6_to_d10") as up:
        pki = tmp_path / "stack" / "pki"  # the stack's CA and users' tokens
        client_env = {
            "SWAPLINE_TOKEN_FILE": str(pki / "alice.token"),
            "SWAPLINE_TLS_CA": str(pki / "ca.pem"),
        }
        start = time.time()
        # Two jobs a few scrapes apart: a rate needs a counter seen to grow
        # between two scrapes, and one short job's few Triton batches can
        # all fall between the same two.
        for attempt in range(2):
            if attempt:
                time.sleep(5)
            swap = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "swapline.cli",
                    "swap",
                    "--remote",
                    up.orchestrator,
                    "--model",
                    "d6_to_d10",
                    "--input",
                    str(data / "d10.mp4"),
                    "--output",
                    str(tmp_path / f"out{attempt}.mp4"),
                    "-q",
                ],
                capture_output=True,
                text=True,
                timeout=600,
                env={**os.environ, **client_env},
            )
            assert swap.returncode == 0, swap.stderr
        # A caller's mistake, as happens in production: an unknown model.
        token = (pki / "alice.token").read_text()
        with grpc.secure_channel(
            up.orchestrator, api_credentials(pki / "ca.pem", token)
        ) as channel:
            stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
            spec = opb.JobSpec(model="nobody", input_uri=f"file://{data / 'd10.mp4'}")
            with pytest.raises(grpc.RpcError) as error:
                stub.SubmitJob(iter([opb.SubmitJobRequest(spec=spec)]))
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
        time.sleep(20)  # scrapes every 2 s, recording rules every 15 s
        end = time.time()
        missing, gpu_only = [], []
        for name, expr in shipped_expressions().items():
            if has_values(query_range(up.prometheus, expr, start, end)):
                continue
            (gpu_only if GPU_ONLY.search(expr) else missing).append(name)
    assert missing == [], f"no data for: {missing}"
    # Only GPU series may be absent, and only because this machine has none.
    assert len(gpu_only) <= 4, gpu_only
