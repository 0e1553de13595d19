"""Typed configuration per process role: read once from SWAPLINE_*
variables, validated, and a bad value is one line naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from swapline.config import (
    ClientConfig,
    ConfigError,
    OrchestratorConfig,
    RemoteStagesConfig,
    ServerConfig,
    StageAddresses,
)
from swapline.errors import InvalidInputError

ADDRESSES = {
    f"SWAPLINE_{name}_ADDR": f"127.0.0.1:{port}"
    for name, port in (
        ("DETECTOR", 1),
        ("ALIGNER", 2),
        ("SWAPPER", 3),
        ("BLENDER", 4),
        ("ENCODER", 5),
    )
}


def test_server_config_takes_a_services_own_variable_before_the_shared_one() -> None:
    env = {
        "SWAPLINE_WORKERS": "3",
        "SWAPLINE_SWAPPER_WORKERS": "5",
        "SWAPLINE_CPU_INT8": "0",
        "SWAPLINE_SWAPPER_PORT": "6000",
        "SWAPLINE_STORAGE_ROOTS": "/data",
        "SWAPLINE_INSECURE": "1",
    }
    swapper = ServerConfig.from_env("swapper", env)
    detector = ServerConfig.from_env("detector", env)
    assert (swapper.workers, detector.workers) == (5, 3)
    assert (swapper.port, detector.port) == (6000, 50051)  # detector: its default port
    assert swapper.cpu_int8 is False and swapper.storage_roots == "/data"
    insecure = {"SWAPLINE_INSECURE": "1"}
    assert ServerConfig.from_env("encoder", insecure).storage_roots == os.getcwd()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SWAPLINE_WORKERS": "two"}, "SWAPLINE_WORKERS='two' is not a valid whole number"),
        ({"SWAPLINE_ALIGNER_DRAIN_SECONDS": "soon"}, "SWAPLINE_ALIGNER_DRAIN_SECONDS='soon'"),
        ({"SWAPLINE_CPU_INT8": "maybe"}, "is not a valid flag"),
        ({"SWAPLINE_WORKERS": "0"}, "workers must be at least 1"),
    ],
)
def test_a_bad_server_value_is_one_line_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        ServerConfig.from_env("aligner", env)
    assert "\n" not in str(error.value)
    assert isinstance(error.value, InvalidInputError)


def test_distributed_mode_needs_every_stage_address() -> None:
    assert StageAddresses.from_env({}) is None
    assert RemoteStagesConfig.from_env({}) is None
    partial = {k: v for k, v in ADDRESSES.items() if "ENCODER" not in k}
    with pytest.raises(ConfigError, match=r"missing.*SWAPLINE_ENCODER_ADDR"):
        StageAddresses.from_env(partial)
    config = RemoteStagesConfig.from_env({**ADDRESSES, "SWAPLINE_PIXEL_ENCODING": "png"})
    assert config is not None
    assert config.addresses.blender == "127.0.0.1:4" and config.pixel_encoding == "png"


def test_orchestrator_config_defaults_and_limits(tmp_path: Path) -> None:
    config = OrchestratorConfig.from_env({"SWAPLINE_WORK_DIR": str(tmp_path)})
    assert config.work_dir == tmp_path and config.jobs_db == str(tmp_path / "jobs.sqlite3")
    assert config.job_concurrency == 1 and config.stages is None
    assert config.training_job_template == "" and config.namespace == "default"
    distributed = OrchestratorConfig.from_env({**ADDRESSES, "SWAPLINE_JOB_CONCURRENCY": "2"})
    assert distributed.stages is not None and distributed.job_concurrency == 2
    with pytest.raises(ConfigError, match="SWAPLINE_JOB_CONCURRENCY must be at least 1"):
        OrchestratorConfig.from_env({"SWAPLINE_JOB_CONCURRENCY": "0"})


def test_client_config() -> None:
    assert ClientConfig.from_env({}) == ClientConfig(cpu_int8=True, background_nice=10)
    assert ClientConfig.from_env({"SWAPLINE_CPU_INT8": "false"}).cpu_int8 is False
    with pytest.raises(ConfigError, match=r"SWAPLINE_BACKGROUND_NICE must be in 0\.\.19"):
        ClientConfig.from_env({"SWAPLINE_BACKGROUND_NICE": "40"})


def test_metrics_listen_where_the_server_does() -> None:
    def address(**env: str) -> str:
        settings = {"SWAPLINE_INSECURE": "1", **{f"SWAPLINE_{k}": v for k, v in env.items()}}
        return ServerConfig.from_env("detector", settings).metrics_address

    assert address() == "0.0.0.0"  # every interface, as the gRPC port's [::]
    assert address(HOST="127.0.0.1") == "127.0.0.1"
    assert address(HOST="127.0.0.1", METRICS_HOST="[::1]") == "::1"
