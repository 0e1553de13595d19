"""TrainModel: in this process (a real orchestrator, real training, the model
exported and then used by a swap job), and as a Kubernetes Job made from the
chart's own Job template, created with the real kubernetes client.

No Kubernetes API server or kubelet runs on these machines. The Job half
talks HTTP to a small stand-in API server that stores Jobs, and a stand-in
kubelet runs each Job's container command as the pod's user (uid 10001),
with the chart's mount paths mapped into a node folder whose root only root
may write (the read-only root filesystem) and whose volumes belong to the
pod's group; the Job's status comes from that process. Every Job is
validated against the Kubernetes schemas with kubernetes-validate."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
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

POD_USER = 10001  # the chart's runAsUser, runAsGroup and fsGroup


def chart_objects() -> list[dict[str, Any]]:
    from tests.deploy.test_chart import rendered

    return rendered()


def chart_training_template(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (config,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "swapline-training-job"
    ]
    return dict(yaml.safe_load(config["data"]["training-job.yaml"]))


def chart_orchestrator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "swapline-orchestrator"
    ]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


class Kubelet:
    """Runs a Job's container command the way a node would, and reports the
    Job's status from the process: active while it runs, then Complete or
    Failed.

    The process runs as the pod's user and group with no other groups. It
    keeps one capability, reading and searching any folder
    (CAP_DAC_READ_SEARCH): the checkout and its virtualenv stand in for the
    image's files and may lie in a folder only root can enter; every write
    still obeys the permissions, which is what the test is about."""

    def __init__(self, node: Path) -> None:
        self.node = node
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, job: dict[str, Any]) -> None:
        pod = job["spec"]["template"]["spec"]
        user = int(pod["securityContext"]["runAsUser"])
        group = int(pod["securityContext"].get("runAsGroup", user))
        container = pod["containers"][0]
        name = job["metadata"]["name"]
        log = self.node / "tmp" / f"{name}.log"
        self.logs[name] = log
        privileges = ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups"]
        privileges += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
        tmp = str(self.node / "tmp")
        self.processes[name] = subprocess.Popen(
            [*privileges, sys.executable, "-m", "swapline.cli", *container["args"]],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "PYTHONUNBUFFERED": "1"},
        )

    def status(self, name: str) -> dict[str, Any]:
        process = self.processes.get(name)
        if process is None:
            return {}
        code = process.poll()
        if code is None:
            return {"active": 1}
        if code == 0:
            return {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        return {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


class StandInApiServer:
    """Just enough of the Kubernetes API for batch/v1 Jobs: create, read
    status. A Job's status is the kubelet's, or whatever the test sets."""

    def __init__(self, kubelet: Kubelet | None = None) -> None:
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
                if kubelet is not None:
                    kubelet.start(job)
                return self.reply(201, job)

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                name = parts[6] if len(parts) > 6 else ""
                if parts[:3] != ["apis", "batch", "v1"] or name not in jobs:
                    return self.reply(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                current = kubelet.status(name) if kubelet is not None else status.get(name, {})
                return self.reply(200, {**jobs[name], "status": current})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "orchestrator", "user": {"token": "stand-in"}}],
            "contexts": [
                {"name": "stand-in", "context": {"cluster": "stand-in", "user": "orchestrator"}}
            ],
            "current-context": "stand-in",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def batch_api(url: str) -> Any:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    configuration.retries = 0
    return client.BatchV1Api(client.ApiClient(configuration))


def test_the_chart_s_job_is_valid_and_its_states_followed(facesets: dict[str, Path]) -> None:
    objects = chart_objects()
    settings = chart_orchestrator_env(objects)
    api_server = StandInApiServer()
    try:
        launcher = KubernetesTraining(
            chart_training_template(objects),
            "swapline",
            Path(settings["SWAPLINE_WORK_DIR"]) / "training",
            Path(settings["SWAPLINE_MODEL_REPOSITORY"]),
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
        for version in ("1.27", "1.30", "1.33", "1.37"):
            kubernetes_validate.validate(job, version, strict=True)
        assert job["metadata"]["labels"]["swapline.io/training-run"] == run.id
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "train" and args[args.index("--export-to") + 1] == "/models/repository"
        assert args[args.index("--steps") + 1] == "20000"
        assert args[args.index("--src-consent") + 1] == "release-17"
        assert args[args.index("--progress-file") + 1].startswith("/media/jobs/training/")
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


@contextlib.contextmanager
def node_folder() -> Iterator[Path]:
    """A node's view: a root only root may write, and the pod's volumes
    (the models and media claims, an emptyDir for /tmp) owned by its user,
    as fsGroup makes them."""
    node = Path(tempfile.mkdtemp(prefix="swapline-node-"))
    try:
        node.chmod(0o755)
        for volume in ("models", "media", "tmp"):
            (node / volume).mkdir()
            os.chown(node / volume, POD_USER, POD_USER)
        yield node
    finally:
        shutil.rmtree(node, ignore_errors=True)


def under(node: Path, path: str) -> Path:
    """A pod's absolute path, in the node folder."""
    return node / path.lstrip("/")


@pytest.mark.slow
def test_a_training_job_from_the_chart_exports_into_the_volume_and_reports_while_it_runs(
    facesets: dict[str, Path], tmp_path: Path
) -> None:
    objects = chart_objects()
    template = chart_training_template(objects)
    chart_env = chart_orchestrator_env(objects)
    container = template["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert not mounts["/models"].get("readOnly") and not mounts["/media"].get("readOnly")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    with node_folder() as node:
        media = under(node, "/media")
        for name in ("a", "b"):
            shutil.copytree(facesets[name], media / name)
        repository = under(node, chart_env["SWAPLINE_MODEL_REPOSITORY"])
        template_file = tmp_path / "training-job.yaml"
        template_file.write_text(yaml.safe_dump(template))
        kubelet = Kubelet(node)
        api_server = StandInApiServer(kubelet)
        server = start_server(
            "orchestrator",
            tmp_path,
            {
                "SWAPLINE_MODEL_REPOSITORY": str(repository),
                "SWAPLINE_WORK_DIR": str(under(node, chart_env["SWAPLINE_WORK_DIR"])),
                "SWAPLINE_STORAGE_ROOTS": str(media),
                "SWAPLINE_TRAINING_JOB_TEMPLATE": str(template_file),
                "SWAPLINE_NAMESPACE": "swapline",
                "KUBECONFIG": str(api_server.kubeconfig(tmp_path / "kubeconfig")),
            },
        )
        # The orchestrator's pod runs as the same user: what it made on the
        # media volume (its work folders) is that user's.
        for folder, subfolders, files in os.walk(media):
            for name in [".", *subfolders, *files]:
                os.chown(Path(folder) / name, POD_USER, POD_USER)
        try:
            with server.channel("admin") as channel:
                stub = orchestrator_pb2_grpc.OrchestratorStub(channel)
                steps = 160
                started = stub.TrainModel(
                    opb.TrainModelRequest(
                        name="d12_to_d10",
                        source_faceset_uri=(media / "a").as_uri(),
                        target_faceset_uri=(media / "b").as_uri(),
                        steps=steps,
                    )
                )
                assert started.kubernetes_job in api_server.jobs
                seen = []
                deadline = time.monotonic() + 600
                while True:
                    run = stub.GetTrainingRun(opb.GetTrainingRunRequest(id=started.id))
                    seen.append((run.state, run.steps_done, run.loss))
                    if run.state in (opb.JOB_STATE_SUCCEEDED, opb.JOB_STATE_FAILED):
                        break
                    assert time.monotonic() < deadline, "training did not finish"
                    time.sleep(0.25)
            log = kubelet.logs[started.kubernetes_job].read_text()
            assert run.state == opb.JOB_STATE_SUCCEEDED, (run.error, log)
            # While it ran, GetTrainingRun reported its steps and its loss.
            running = [(s, loss) for state, s, loss in seen if state == opb.JOB_STATE_RUNNING]
            assert any(0 < s < steps and loss > 0 for s, loss in running), seen
            assert run.steps_done == steps and run.loss > 0
        finally:
            stop_server(server)
            kubelet.stop()
            api_server.close()

        # The entry landed in the volume, written by the pod's user; nothing
        # was left staged beside it, and the root was never written.
        entry = repository / "d12_to_d10"
        assert (entry / "1" / "model.onnx").stat().st_uid == POD_USER
        assert json.loads((entry / "swapline.json").read_text())["training_steps"] == steps
        assert sorted(p.name for p in repository.parent.iterdir()) == ["repository"]
        assert sorted(p.name for p in node.iterdir()) == ["media", "models", "tmp"]

        # A repository at the volume's root (where the chart used to point):
        # the Job fails in seconds, before training, saying why.
        refused = subprocess.run(
            [
                "setpriv",
                f"--reuid={POD_USER}",
                f"--regid={POD_USER}",
                "--clear-groups",
                "--inh-caps=+dac_read_search",
                "--ambient-caps=+dac_read_search",
                sys.executable,
                "-m",
                "swapline.cli",
                "train",
                "--src",
                str(media / "a"),
                "--dst",
                str(media / "b"),
                "--out",
                str(media / "jobs" / "training" / "again"),
                "--steps",
                "5",
                "--export-to",
                str(under(node, "/models")),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 1
        assert f"{node} is not writable" in refused.stderr
        assert not (media / "jobs" / "training" / "again").exists()  # never trained
