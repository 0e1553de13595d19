"""Prometheus metrics shared by every stage server."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

RPC_REQUESTS = Counter(
    "swapline_rpc_requests_total",
    "Finished RPCs by service, method and status code.",
    ["service", "method", "code"],
)
RPC_ERRORS = Counter(
    "swapline_rpc_errors_total",
    "RPCs that ended with a status other than OK.",
    ["service", "method", "code"],
)
RPC_LATENCY = Histogram(
    "swapline_rpc_latency_seconds",
    "Time from an RPC's arrival to its end.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
RPC_IN_FLIGHT = Gauge(
    "swapline_rpc_in_flight",
    "RPCs being handled now.",
    ["service", "method"],
)
STAGE_QUEUE_DEPTH = Gauge(
    "swapline_stage_queue_depth",
    "Requests waiting for a stage worker thread.",
    ["service"],
)
STAGE_BUSY_WORKERS = Gauge(
    "swapline_stage_busy_workers",
    "Stage worker threads doing work now.",
    ["service"],
)
STAGE_ITEMS = Counter(
    "swapline_stage_items_total",
    "Frames or faces a stage has processed.",
    ["service", "item"],
)
STAGE_BATCH_SIZE = Histogram(
    "swapline_stage_batch_size",
    "Frames or faces per request.",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
STAGE_SECONDS = Histogram(
    "swapline_stage_work_seconds",
    "Time a worker spends on one request's stage work.",
    ["service"],
    buckets=LATENCY_BUCKETS,
)

# The orchestrator's jobs.
JOB_FRAMES = Counter("swapline_job_frames_total", "Frames finished by swap jobs.")
JOB_FRAMES_PER_SECOND = Gauge(
    "swapline_job_frames_per_second",
    "Throughput of each running job since it started.",
    ["job_id"],
)
JOBS_FINISHED = Counter(
    "swapline_jobs_finished_total", "Jobs that ended, by final state.", ["state"]
)


class JobStateCollector(Collector):
    """``swapline_jobs{state}``: jobs by state, read from the job store at
    every scrape, so restarts and other replicas' writes are counted."""

    def __init__(self, counts: Callable[[], Mapping[str, int]], states: list[str]) -> None:
        self.counts = counts
        self.states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("swapline_jobs", "Jobs by state.", labels=["state"])
        counts = self.counts()
        for state in self.states:
            family.add_metric([state], counts.get(state, 0))
        yield family


_job_states: list[JobStateCollector] = []


def register_job_states(counts: Callable[[], Mapping[str, int]], states: list[str]) -> None:
    """Exports ``swapline_jobs`` from ``counts`` (the latest store wins)."""
    while _job_states:
        REGISTRY.unregister(_job_states.pop())
    _job_states.append(JobStateCollector(counts, states))
    REGISTRY.register(_job_states[-1])


LIVE_LATENCY = Histogram(
    "swapline_live_frame_latency_seconds",
    "Live streams: from a frame's capture to its swapped frame's leaving for the output.",
    buckets=(0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2),
)
LIVE_FRAMES = Counter(
    "swapline_live_frames_total",
    "Live streams: frames sent on, or dropped because processing was behind.",
    ["outcome"],
)


class LiveMetrics:
    """A live stream's per-frame figures into the two metrics above
    (:class:`swapline.pipeline.live.LiveObserver`)."""

    def sent(self, latency: float) -> None:
        LIVE_LATENCY.observe(latency)
        LIVE_FRAMES.labels("sent").inc()

    def dropped(self) -> None:
        LIVE_FRAMES.labels("dropped").inc()
