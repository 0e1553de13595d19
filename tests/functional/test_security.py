"""Who gets in: bearer tokens on the orchestrator, jobs that belong to their
owner, mutual TLS between services, and no server that listens without
authentication unless told to."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swapline.protocol.security import TlsFiles, api_credentials
from swapline.runtime.pki import LocalSecurity, shared_security
from swapline.v1 import common_pb2 as pb
from swapline.v1 import detector_pb2, detector_pb2_grpc, orchestrator_pb2_grpc
from swapline.v1 import orchestrator_pb2 as opb
from tests.conftest import ServerProcess, start_server, stop_server
from tests.functional.test_faults import submit, wait_for
from tests.functional.test_orchestrator import MODEL, orchestrator_env

CLIP = "carphone_pristine.mp4"


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("secure")
    env = {**orchestrator_env(tmp, [data]), "SWAPLINE_MAX_JOBS_PER_OWNER": "1"}
    server = start_server("orchestrator", tmp, env)
    yield server
    stop_server(server)


def every_call(stub: orchestrator_pb2_grpc.OrchestratorStub) -> dict[str, Callable[[], Any]]:
    job = opb.GetJobRequest(id="0123456789abcdef")
    spec = opb.SubmitJobRequest(spec=opb.JobSpec(model=MODEL, input_name="x.mp4"))
    stream = opb.SwapStreamRequest(config=opb.SwapStreamConfig(model=MODEL))
    return {
        "SubmitJob": lambda: stub.SubmitJob(iter([spec]), timeout=30),
        "GetJob": lambda: stub.GetJob(job, timeout=30),
        "WatchJob": lambda: list(stub.WatchJob(job, timeout=30)),
        "CancelJob": lambda: stub.CancelJob(job, timeout=30),
        "ListJobs": lambda: stub.ListJobs(opb.ListJobsRequest(), timeout=30),
        "DownloadResult": lambda: list(stub.DownloadResult(job, timeout=30)),
        "SwapStream": lambda: list(stub.SwapStream(iter([stream]), timeout=30)),
        "TrainModel": lambda: stub.TrainModel(opb.TrainModelRequest(name="x"), timeout=30),
        "GetTrainingRun": lambda: stub.GetTrainingRun(
            opb.GetTrainingRunRequest(id="x"), timeout=30
        ),
    }


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_every_orchestrator_call_needs_a_valid_token(orchestrator: ServerProcess) -> None:
    security = orchestrator.security
    assert security is not None
    no_token = grpc.ssl_channel_credentials(root_certificates=security.tls.ca.read_bytes())
    wrong_token = api_credentials(security.tls.ca, "swl_not-a-token")
    for credentials in (no_token, wrong_token):
        with orchestrator.channel(credentials=credentials) as channel:
            stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
            codes = {name: code_of(call) for name, call in every_call(stub).items()}
            assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, codes
            # Probes and tooling still see it alive.
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with orchestrator.plain_channel() as channel:  # no TLS at all: no connection
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
        assert code_of(every_call(stub)["ListJobs"]) == grpc.StatusCode.UNAVAILABLE


def test_a_job_belongs_to_its_owner(orchestrator: ServerProcess, data: Path) -> None:
    job_id = submit(orchestrator, data / "d10.mp4")  # as alice; runs a while
    request = opb.GetJobRequest(id=job_id)
    with orchestrator.channel("bob") as channel:
        bob = orchestrator_pb2_grpc.OrchestratorStub(channel)
        for name, call in {
            "GetJob": lambda: bob.GetJob(request, timeout=30),
            "WatchJob": lambda: list(bob.WatchJob(request, timeout=30)),
            "CancelJob": lambda: bob.CancelJob(request, timeout=30),
            "DownloadResult": lambda: list(bob.DownloadResult(request, timeout=30)),
        }.items():
            assert code_of(call) == grpc.StatusCode.NOT_FOUND, name
        assert job_id not in {j.id for j in bob.ListJobs(opb.ListJobsRequest(), timeout=30).jobs}
        # Training changes what every job may be swapped with: admins only.
        training = opb.TrainModelRequest(name="x", source_faceset_uri=str(data))
        assert code_of(lambda: bob.TrainModel(training, timeout=30)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        # One job at a time per owner here: bob's first is taken, alice's
        # second is refused with a hint to retry.
        bobs = submit_as(bob, data / CLIP)
    with orchestrator.channel("alice") as channel, pytest.raises(grpc.RpcError) as busy:
        submit_as(orchestrator_pb2_grpc.OrchestratorStub(channel), data / CLIP)
    assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "retry-after-ms" in dict(busy.value.trailing_metadata() or ())
    with orchestrator.channel("admin") as channel:
        admin = orchestrator_pb2_grpc.OrchestratorStub(channel)
        listed = {j.id for j in admin.ListJobs(opb.ListJobsRequest(), timeout=30).jobs}
        assert {job_id, bobs} <= listed
        assert admin.GetJob(request, timeout=30).id == job_id
    with orchestrator.channel("alice") as channel:
        orchestrator_pb2_grpc.OrchestratorStub(channel).CancelJob(request, timeout=30)
    assert wait_for(orchestrator, job_id).state == opb.JOB_STATE_CANCELLED


def submit_as(stub: orchestrator_pb2_grpc.OrchestratorStub, clip: Path) -> str:
    request = opb.SubmitJobRequest(spec=opb.JobSpec(model=MODEL, input_uri=clip.as_uri()))
    return str(stub.SubmitJob(iter([request]), timeout=60).id)


def detect_call(channel: grpc.Channel) -> Any:
    request = detector_pb2.DetectRequest(
        frames=[detector_pb2.DetectFrame(frame=pb.FrameRef(index=0))]
    )
    return detector_pb2_grpc.DetectorStub(channel).Detect(request, timeout=10)


def test_stage_services_take_only_callers_with_the_service_certificate(
    detector_server: ServerProcess, tmp_path: Path
) -> None:
    security = detector_server.security
    assert security is not None
    stranger = LocalSecurity.create(tmp_path / "other-ca")  # a certificate, wrong CA
    ca = security.tls.ca.read_bytes()
    for credentials in (
        grpc.ssl_channel_credentials(root_certificates=ca),  # no client certificate
        grpc.ssl_channel_credentials(
            root_certificates=ca,
            private_key=stranger.tls.key.read_bytes(),
            certificate_chain=stranger.tls.cert.read_bytes(),
        ),
        security.api_credentials("admin"),  # a job client's token is no certificate
    ):
        with detector_server.channel(credentials=credentials) as channel:
            assert code_of(lambda channel=channel: detect_call(channel)) == (
                grpc.StatusCode.UNAVAILABLE
            )
    with detector_server.plain_channel() as channel:
        assert code_of(lambda: detect_call(channel)) == grpc.StatusCode.UNAVAILABLE
    with detector_server.channel() as channel:  # the service certificate
        assert code_of(lambda: detect_call(channel)) == grpc.StatusCode.INVALID_ARGUMENT


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWAPLINE_")}
    return subprocess.run(
        [sys.executable, "-m", "swapline.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        cwd=tmp_path,
    )


def test_nothing_listens_without_authentication_unless_asked(tmp_path: Path) -> None:
    for service in ("detector", "orchestrator"):
        result = serve(tmp_path, service, "--port", "0")
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "SWAPLINE_INSECURE=1" in lines[0], result.stderr
    security = shared_security()
    result = serve(
        tmp_path,
        "orchestrator",
        "--port",
        "0",
        SWAPLINE_TLS_CERT=str(security.tls.cert),
        SWAPLINE_TLS_KEY=str(security.tls.key),
        SWAPLINE_TLS_CA=str(security.tls.ca),
    )
    assert result.returncode != 0 and "SWAPLINE_API_TOKENS" in result.stderr


def test_insecure_mode_is_loud_and_servers_bind_where_told(tmp_path: Path) -> None:
    server = start_server("detector", tmp_path, {"SWAPLINE_INSECURE": "1"})
    try:
        assert server.security is None
        assert "WITHOUT TLS OR AUTHENTICATION" in server.output()
        listening = {
            (c.laddr.ip.removeprefix("::ffff:"), c.laddr.port)
            for c in psutil.Process(server.process.pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        }
        assert listening == {
            ("127.0.0.1", server.port),
            ("127.0.0.1", server.metrics_port),
        }, listening
    finally:
        stop_server(server)


def test_the_certs_and_token_commands_set_up_a_secure_orchestrator(
    tmp_path: Path, data: Path
) -> None:
    from tests.conftest import cli

    made = cli("certs", "--out", tmp_path / "pki", "--name", "swapline-orchestrator")
    assert made.returncode == 0, made.stderr
    issued = cli("token", "--owner", "carol")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.split("shown once): ")[1].split()[0]
    line = issued.stdout.split("(SWAPLINE_API_TOKENS): ")[1].strip()
    assert token not in line  # the file keeps a digest, never the token
    (tmp_path / "tokens").write_text(line + "\n")
    pki = tmp_path / "pki"
    files = TlsFiles(pki / "service.pem", pki / "service-key.pem", pki / "ca.pem")
    security = LocalSecurity(pki, files, tmp_path / "tokens", {"carol": token})
    server = start_server(
        "orchestrator", tmp_path, orchestrator_env(tmp_path, [data]), security=security
    )
    try:
        with server.channel("carol") as channel:
            stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
            assert list(stub.ListJobs(opb.ListJobsRequest(), timeout=30).jobs) == []
    finally:
        stop_server(server)
