"""Jobs: persistent records (SQLite) and the runner that executes them."""

from swapline.jobs._runner import JobRunner
from swapline.jobs._store import TERMINAL, JobRecord, JobState, JobStore

__all__ = ["TERMINAL", "JobRecord", "JobRunner", "JobState", "JobStore"]
