"""Training runs started by the orchestrator's TrainModel call.

Two launchers, one record: on a Kubernetes cluster a training Job is created
from the chart's template (GPU node, the `swapline train --export-to` command);
elsewhere the run trains in a thread of this process. Either way the finished
model is exported into the model repository, where Triton (polling) and the
embedded engine pick it up.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from swapline.errors import (
    FailedPreconditionError,
    InvalidInputError,
    NotFoundError,
    SwaplineError,
    UnavailableError,
)
from swapline.jobs._database import Database
from swapline.jobs._store import JobState
from swapline.model.extract import MANIFEST

log = logging.getLogger(__name__)

RUN_LABEL = "swapline.io/training-run"


@dataclass(frozen=True)
class TrainingRequest:
    name: str
    source: Path  # faceset of identity A
    target: Path  # faceset of identity B
    resolution: int = 64
    architecture: str = "df"
    steps: int = 5000
    # (role, name, consent reference); empty = the facesets' own records.
    identities: tuple[tuple[str, str, str], ...] = ()

    def validate(self) -> None:
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise InvalidInputError(f"model name {self.name!r}: use letters, digits, '-' and '_'")
        if self.architecture not in ("df", "liae"):
            raise InvalidInputError(f"architecture must be df or liae, got {self.architecture!r}")
        if not 1 <= self.steps <= 10_000_000:
            raise InvalidInputError(f"steps must be in 1..10000000, got {self.steps}")
        roles = {role for role, _, _ in self.identities}
        if self.identities and roles != {"source", "target"}:
            raise InvalidInputError("identities must name one source and one target")
        given = {role: consent for role, _, consent in self.identities}
        for role, faceset in (("source", self.source), ("target", self.target)):
            manifest = faceset / MANIFEST
            if not manifest.is_file():
                raise InvalidInputError(f"{faceset}: not a faceset (`swapline extract` makes one)")
            recorded = json.loads(manifest.read_text()).get("consent_reference") or ""
            if not str(given.get(role, recorded)).strip():
                raise InvalidInputError(
                    f"no consent reference for the {role} face ({faceset.name}): record who "
                    "agreed to this use (TrainModelRequest.identities or `extract --consent`)"
                )

    def train_arguments(
        self, work_dir: Path, repository: Path, progress: Path | None = None
    ) -> list[str]:
        """``swapline`` arguments that train this run and export the model
        (and report its steps and loss to ``progress``)."""
        args = [
            "train",
            "--src",
            str(self.source),
            "--dst",
            str(self.target),
            "--out",
            str(work_dir / self.name),
            "--res",
            str(self.resolution),
            "--arch",
            self.architecture,
            "--steps",
            str(self.steps),
            "--export-to",
            str(repository),
            "-q",
        ]
        for role, name, consent in self.identities:
            flag = "src" if role == "source" else "dst"
            args += [f"--{flag}-name", name, f"--{flag}-consent", consent]
        if progress is not None:
            args += ["--progress-file", str(progress)]
        return args


class ProgressFile:
    """A training process's steps and loss in a small JSON file, rewritten
    whole (at most every ``interval`` seconds), so that the orchestrator can
    report a run that trains in another pod."""

    def __init__(self, path: Path, interval: float = 2.0) -> None:
        self.path = path
        self.interval = interval
        self._written = 0.0

    def write(self, steps_done: int, steps_total: int, loss: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.interval:
            return
        self._written = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"steps_done": steps_done, "steps_total": steps_total, "loss": loss}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.path)

    def read(self) -> tuple[int, int, float] | None:
        """(steps done, steps in all, loss), or None before the first write."""
        try:
            record = json.loads(self.path.read_text())
            return int(record["steps_done"]), int(record["steps_total"]), float(record["loss"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass
class TrainingRun:
    id: str
    name: str
    state: JobState = JobState.QUEUED
    steps_done: int = 0
    steps_total: int = 0
    loss: float = 0.0
    error: str = ""
    kubernetes_job: str = ""
    created: float = field(default_factory=time.time)


class TrainingStore:
    """Training runs in the orchestrator's job database."""

    def __init__(self, target: str | Path) -> None:
        self._db = Database(str(target))
        self._lock = self._db.lock
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS training_runs (id TEXT PRIMARY KEY, run TEXT)"
            )

    def save(self, run: TrainingRun) -> TrainingRun:
        with self._lock:
            self._db.execute(
                "INSERT INTO training_runs VALUES (?, ?) "
                "ON CONFLICT (id) DO UPDATE SET run = excluded.run",
                (run.id, json.dumps(asdict(run))),
            )
        return run

    def get(self, run_id: str) -> TrainingRun:
        with self._lock:
            row = self._db.execute(
                "SELECT run FROM training_runs WHERE id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no training run {run_id!r}")
        fields = json.loads(row[0])
        fields["state"] = JobState(fields["state"])
        return TrainingRun(**fields)

    def close(self) -> None:
        self._db.close()


class TrainingLauncher(Protocol):
    def launch(self, run: TrainingRun, request: TrainingRequest) -> TrainingRun: ...

    def refresh(self, run: TrainingRun) -> TrainingRun:
        """The run with its current state (a cluster Job's status)."""
        ...


class InProcessTraining:
    """Trains in a thread of this process, then exports into the repository."""

    def __init__(self, store: TrainingStore, work_dir: Path, repository: Path) -> None:
        self.store = store
        self.work_dir = work_dir
        self.repository = repository

    def launch(self, run: TrainingRun, request: TrainingRequest) -> TrainingRun:
        thread = threading.Thread(
            target=self._train, args=(run, request), name=f"train-{run.id}", daemon=True
        )
        thread.start()
        return run

    def refresh(self, run: TrainingRun) -> TrainingRun:
        return run

    def _train(self, run: TrainingRun, request: TrainingRequest) -> None:
        from swapline.model.export import export_model
        from swapline.model.quantize import add_cpu_int8_from_faceset
        from swapline.train.model import ModelConfig
        from swapline.train.trainer import Identity, TrainOptions, train

        store = self.store
        identities = None
        if request.identities:
            by_role = {role: Identity(role, name, c) for role, name, c in request.identities}
            identities = (by_role["source"], by_role["target"])
        options = TrainOptions(
            src=request.source,
            dst=request.target,
            out=self.work_dir / request.name,
            model=ModelConfig(resolution=request.resolution, architecture=request.architecture),
            steps=request.steps,
            identities=identities,
            checkpoint_every=max(100, request.steps // 10),
            preview_every=max(100, request.steps // 10),
        )

        class Progress:
            """What ``train`` reports to, in the shape of a progress bar."""

            def __init__(self, total: int | None, initial: int) -> None:
                run.steps_total, run.steps_done = total or 0, initial

            def update(self, steps: int) -> None:
                run.steps_done += steps
                if run.steps_done % 10 == 0:
                    store.save(run)

            def set_postfix(self, loss: str, refresh: bool = False) -> None:
                run.loss = float(loss)

            def close(self) -> None:
                pass

        try:
            run.state = JobState.RUNNING
            store.save(run)
            result = train(options, Progress)
            run.loss = result.loss
            exported = export_model(result.out, self.repository, name=request.name)
            try:
                add_cpu_int8_from_faceset(exported.entry, request.target)
            except InvalidInputError as exc:  # the float model serves everywhere
                log.info("training run %s: no int8 variant: %s", run.id, exc)
            run.state = JobState.SUCCEEDED
        except SwaplineError as exc:
            run.state, run.error = JobState.FAILED, str(exc)
        except Exception as exc:  # the run fails, the orchestrator lives on
            log.exception("training run %s failed", run.id)
            run.state, run.error = JobState.FAILED, f"internal error: {exc}"
        store.save(run)


class NoTraining:
    """An orchestrator that cannot train: TrainModel fails at once, saying
    why (the runtime image has no torch; on a cluster, training runs as a
    Job from the training image)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def refuse(self) -> NoReturn:
        raise FailedPreconditionError(f"this orchestrator cannot train: {self.reason}")

    def launch(self, run: TrainingRun, request: TrainingRequest) -> TrainingRun:
        self.refuse()

    def refresh(self, run: TrainingRun) -> TrainingRun:
        return run


class KubernetesTraining:
    """Creates one Kubernetes Job per run from the chart's Job template."""

    def __init__(
        self,
        template: dict[str, Any],
        namespace: str,
        work_dir: Path,
        repository: Path,
        api: Any = None,
    ) -> None:
        self.template = template
        self.namespace = namespace
        self.work_dir = work_dir
        self.repository = repository
        self.api = api or _batch_api()

    @classmethod
    def from_file(
        cls, template: Path, namespace: str, work_dir: Path, repository: Path
    ) -> KubernetesTraining:
        import yaml

        return cls(yaml.safe_load(template.read_text()), namespace, work_dir, repository)

    def job_manifest(self, run: TrainingRun, request: TrainingRequest) -> dict[str, Any]:
        job = copy.deepcopy(self.template)
        metadata = job.setdefault("metadata", {})
        metadata.pop("generateName", None)
        metadata["name"] = f"swapline-train-{run.id}"
        metadata.setdefault("labels", {})[RUN_LABEL] = run.id
        metadata.setdefault("annotations", {})["swapline.io/model"] = request.name
        pod = job["spec"]["template"]
        pod.setdefault("metadata", {}).setdefault("labels", {})[RUN_LABEL] = run.id
        container = pod["spec"]["containers"][0]
        container["args"] = request.train_arguments(
            self.work_dir, self.repository, self.progress_path(run)
        )
        for quantities in container.get("resources", {}).values():
            # YAML gives `nvidia.com/gpu: 1` as a number; the API's type is a
            # quantity string, which the client checks.
            for key, value in quantities.items():
                quantities[key] = str(value)
        return job

    def progress_path(self, run: TrainingRun) -> Path:
        """The run's progress file, on the volume the Job and the
        orchestrator share (the work folder)."""
        return self.work_dir / ".runs" / f"{run.id}.json"

    def launch(self, run: TrainingRun, request: TrainingRequest) -> TrainingRun:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        manifest = self.job_manifest(run, request)
        try:
            created = self.api.create_namespaced_job(self.namespace, manifest)
        except HTTPError as exc:
            raise UnavailableError(f"the Kubernetes API did not answer: {exc}") from None
        except ApiException as exc:
            raise UnavailableError(
                f"cannot create the training Job: {exc.status} {exc.reason}"
            ) from None
        run.kubernetes_job = created.metadata.name
        run.steps_total = request.steps
        return run

    def refresh(self, run: TrainingRun) -> TrainingRun:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        if run.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
            return run
        try:
            job = self.api.read_namespaced_job_status(run.kubernetes_job, self.namespace)
        except HTTPError as exc:
            raise UnavailableError(f"the Kubernetes API did not answer: {exc}") from None
        except ApiException as exc:
            if exc.status == 404:
                run.state, run.error = JobState.FAILED, "the training Job was deleted"
                return run
            raise UnavailableError(
                f"cannot read the training Job: {exc.status} {exc.reason}"
            ) from None
        status = job.status
        conditions = {c.type: c.status for c in status.conditions or []}
        if conditions.get("Complete") == "True" or (status.succeeded or 0) > 0:
            run.state, run.steps_done = JobState.SUCCEEDED, run.steps_total
        elif conditions.get("Failed") == "True":
            run.state, run.error = JobState.FAILED, "the training Job failed (see its pod's log)"
        elif (status.active or 0) > 0:
            run.state = JobState.RUNNING
        progress = ProgressFile(self.progress_path(run)).read()
        if progress is not None:
            done, total, run.loss = progress
            if run.state != JobState.SUCCEEDED:
                run.steps_done = done
            run.steps_total = total or run.steps_total
        return run


def _batch_api() -> Any:
    """BatchV1Api from the in-cluster service account, else ~/.kube/config."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.BatchV1Api()


def new_run(request: TrainingRequest) -> TrainingRun:
    return TrainingRun(id=uuid.uuid4().hex[:16], name=request.name, steps_total=request.steps)
