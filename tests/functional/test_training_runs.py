"""TrainModel: in this process (a real orchestrator, real training, the model
exported and then used by a swap job), and as a Kubernetes Job created with
the real kubernetes client. No Kubernetes API server runs on these machines:
the Job half talks HTTP to a small stand-in that stores Jobs and reports the
status the test sets, and the Job it receives is validated against the
Kubernetes schemas with kubernetes-validate."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import kubernetes_validate
import pytest
import yaml

from swapline.errors import UnavailableError
from swapline.jobs import JobState, KubernetesTraining, TrainingRequest, new_run
from swapline.v1 import orchestrator_pb2 as opb
from swapline.v1 import orchestrator_pb2_grpc
from tests.conftest import ServerProcess, start_server, stop_server


def extract(source: Path, out: Path, consent: str) -> Path:
    args = ["extract", str(source), "--out", str(out), "--size", "96", "--frames", "0:40"]
    args += ["--every", "2", "-q", "--identity", source.stem]
    if consent:
        args += ["--consent", consent]
    result = subprocess.run(
        [sys.executable, "-m", "swapline.cli", *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def facesets(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("facesets")
    return {
        "a": extract(data / "d12.mp4", root / "a", "test: d12"),
        "b": extract(data / "d10.mp4", root / "b", "test: d10"),
        "unconsented": extract(data / "d6.mp4", root / "unconsented", ""),
    }


@contextlib.contextmanager
def orchestrator(tmp: Path, roots: list[Path]) -> Iterator[ServerProcess]:
    server = start_server(
        "orchestrator",
        tmp,
        {
            "SWAPLINE_MODEL_REPOSITORY": str(tmp / "repository"),
            "SWAPLINE_WORK_DIR": str(tmp / "work"),
            "SWAPLINE_STORAGE_ROOTS": ":".join(str(r) for r in roots),
        },
    )
    try:
        yield server
    finally:
        stop_server(server)


def wait_for(stub: orchestrator_pb2_grpc.OrchestratorStub, run_id: str) -> opb.TrainingRun:
    deadline = time.monotonic() + 600
    while True:
        run = stub.GetTrainingRun(opb.GetTrainingRunRequest(id=run_id))
        if run.state in (opb.JOB_STATE_SUCCEEDED, opb.JOB_STATE_FAILED):
            return run
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(1)


@pytest.mark.slow
def test_train_model_in_process_then_swap_with_it(
    facesets: dict[str, Path], tmp_path: Path, data: Path
) -> None:
    roots = [facesets["a"].parent, data]
    with orchestrator(tmp_path, roots) as server, server.channel("admin") as channel:
        stub = orchestrator_pb2_grpc.OrchestratorStub(channel)

        def request(source: Path, **extra: Any) -> opb.TrainModelRequest:
            return opb.TrainModelRequest(
                name="d12_to_d10",
                source_faceset_uri=source.as_uri(),
                target_faceset_uri=facesets["b"].as_uri(),
                resolution=64,
                steps=30,
                **extra,
            )

        with pytest.raises(grpc.RpcError) as error:
            stub.TrainModel(request(facesets["unconsented"]))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "consent" in (error.value.details() or "")
        with pytest.raises(grpc.RpcError) as error:
            stub.TrainModel(request(tmp_path / "elsewhere"))
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as error:
            stub.GetTrainingRun(opb.GetTrainingRunRequest(id="nope"))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND

        started = stub.TrainModel(request(facesets["a"]))
        assert started.state in (opb.JOB_STATE_QUEUED, opb.JOB_STATE_RUNNING)
        assert started.kubernetes_job == ""  # no cluster configured: trained here
        run = wait_for(stub, started.id)
        assert run.state == opb.JOB_STATE_SUCCEEDED, run.error
        assert run.steps_done == run.steps_total == 30 and run.loss > 0
        entry = tmp_path / "repository" / "d12_to_d10"
        metadata = json.loads((entry / "swapline.json").read_text())
        assert metadata["resolution"] == 64 and (entry / "1" / "model.onnx").is_file()
        # and its int8 variant for CPUs, calibrated on the target's faceset
        assert metadata["cpu_int8"]["calibration_faces"] == 10
        assert (entry / "1" / metadata["cpu_int8"]["file"]).is_file()

        # The exported model serves a swap job right away.
        spec = opb.JobSpec(model="d12_to_d10", input_uri=(data / "two_people.jpg").as_uri())
        job = stub.SubmitJob(iter([opb.SubmitJobRequest(spec=spec)]))
        for update in stub.WatchJob(opb.GetJobRequest(id=job.id)):
            job = update
        assert job.state == opb.JOB_STATE_SUCCEEDED, job.error
        assert job.progress.faces_swapped == 2


# --- a Job on a cluster ----------------------------------------------------

TEMPLATE = """
apiVersion: batch/v1
kind: Job
metadata:
  generateName: swapline-train-
  labels: {app.kubernetes.io/name: swapline, app.kubernetes.io/component: training}
spec:
  backoffLimit: 1
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels: {app.kubernetes.io/name: swapline, app.kubernetes.io/component: training}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: train
          image: ghcr.io/swapline/swapline-train:0.1.0
          args: [train]
          resources:
            limits: {nvidia.com/gpu: 1}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: media, mountPath: /media}
            - {name: models, mountPath: /models}
      volumes:
        - name: media
          persistentVolumeClaim: {claimName: swapline-media}
        - name: models
          persistentVolumeClaim: {claimName: swapline-models}
"""


class StandInApiServer:
    """Just enough of the Kubernetes API for batch/v1 Jobs: create, read
    status; a Job's status is whatever the test sets."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.status: dict[str, dict[str, Any]] = {}
        jobs, status = self.jobs, self.status

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if parts[:3] != ["apis", "batch", "v1"] or parts[5:] != ["jobs"]:
                    return self.reply(404, {"kind": "Status", "code": 404})
                job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                name = job["metadata"]["name"]
                if name in jobs:
                    return self.reply(409, {"kind": "Status", "code": 409, "reason": "Conflict"})
                job["metadata"].update(namespace=parts[4], uid=f"uid-{name}")
                job["status"] = {}
                jobs[name] = job
                return self.reply(201, job)

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                name = parts[6] if len(parts) > 6 else ""
                if parts[:3] != ["apis", "batch", "v1"] or name not in jobs:
                    return self.reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                return self.reply(200, {**jobs[name], "status": status.get(name, {})})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def batch_api(url: str) -> Any:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    configuration.retries = 0
    return client.BatchV1Api(client.ApiClient(configuration))


def test_train_model_on_a_cluster_creates_a_valid_job_and_follows_it(
    facesets: dict[str, Path], tmp_path: Path
) -> None:
    api_server = StandInApiServer()
    try:
        launcher = KubernetesTraining(
            yaml.safe_load(TEMPLATE),
            "swapline",
            Path("/media/training"),
            Path("/models"),
            api=batch_api(api_server.url),
        )
        request = TrainingRequest(
            name="d12_to_d10",
            source=facesets["a"],
            target=facesets["b"],
            steps=20000,
            identities=(("source", "Ann", "release-17"), ("target", "Bo", "release-18")),
        )
        request.validate()
        run = launcher.launch(new_run(request), request)
        job = api_server.jobs[run.kubernetes_job]
        kubernetes_validate.validate(job, "1.30", strict=True)
        assert job["metadata"]["labels"]["swapline.io/training-run"] == run.id
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "train" and args[args.index("--export-to") + 1] == "/models"
        assert args[args.index("--steps") + 1] == "20000"
        assert args[args.index("--src-consent") + 1] == "release-17"
        # The template's security and GPU settings survive.
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"

        assert launcher.refresh(run).state == JobState.QUEUED  # no pod yet
        api_server.status[run.kubernetes_job] = {"active": 1}
        assert launcher.refresh(run).state == JobState.RUNNING
        api_server.status[run.kubernetes_job] = {
            "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
        }
        finished = launcher.refresh(run)
        assert finished.state == JobState.SUCCEEDED and finished.steps_done == 20000

        failing = launcher.launch(new_run(request), request)
        api_server.status[failing.kubernetes_job] = {
            "failed": 2,
            "conditions": [{"type": "Failed", "status": "True"}],
        }
        assert launcher.refresh(failing).state == JobState.FAILED
        del api_server.jobs[failing.kubernetes_job]
    finally:
        api_server.close()
    # The API server gone: UNAVAILABLE, not a crash.
    with pytest.raises(UnavailableError):
        launcher.launch(new_run(request), request)
