"""Jobs: persistent, leased records (SQLite), the runner that claims and runs
swap jobs, and training runs (in this process or as Kubernetes Jobs)."""

from swapline.jobs._database import is_server_url
from swapline.jobs._runner import JobRunner
from swapline.jobs._store import (
    MAX_ATTEMPTS,
    TERMINAL,
    JobRecord,
    JobState,
    JobStore,
    LeaseLostError,
)
from swapline.jobs._training import (
    InProcessTraining,
    KubernetesTraining,
    NoTraining,
    ProgressFile,
    TrainingLauncher,
    TrainingRequest,
    TrainingRun,
    TrainingStore,
    new_run,
)

__all__ = [
    "MAX_ATTEMPTS",
    "TERMINAL",
    "InProcessTraining",
    "JobRecord",
    "JobRunner",
    "JobState",
    "JobStore",
    "KubernetesTraining",
    "LeaseLostError",
    "NoTraining",
    "ProgressFile",
    "TrainingLauncher",
    "TrainingRequest",
    "TrainingRun",
    "TrainingStore",
    "is_server_url",
    "new_run",
]
