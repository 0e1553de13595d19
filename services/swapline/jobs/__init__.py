"""Jobs: persistent records (SQLite), the runner that executes swap jobs, and
training runs (in this process or as Kubernetes Jobs)."""

from swapline.jobs._runner import JobRunner
from swapline.jobs._store import TERMINAL, JobRecord, JobState, JobStore
from swapline.jobs._training import (
    InProcessTraining,
    KubernetesTraining,
    TrainingLauncher,
    TrainingRequest,
    TrainingRun,
    TrainingStore,
    new_run,
)

__all__ = [
    "TERMINAL",
    "InProcessTraining",
    "JobRecord",
    "JobRunner",
    "JobState",
    "JobStore",
    "KubernetesTraining",
    "TrainingLauncher",
    "TrainingRequest",
    "TrainingRun",
    "TrainingStore",
    "new_run",
]
