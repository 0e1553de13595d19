"""A process whose configuration does not hold stops at start, before
anything listens, with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_config import ADDRESSES


@pytest.mark.parametrize(
    ("service", "env", "message"),
    [
        ("detector", {"SWAPLINE_WORKERS": "two"}, "SWAPLINE_WORKERS='two'"),
        ("orchestrator", {"SWAPLINE_DETECTOR_ADDR": "127.0.0.1:1"}, "missing"),
        ("orchestrator", {"SWAPLINE_PIXEL_ENCODING": "gif", **ADDRESSES}, "raw or png"),
    ],
)
def test_a_server_with_bad_config_exits_with_one_line(
    service: str, env: dict[str, str], message: str, tmp_path: Path
) -> None:
    """Read at start, before anything listens: one line on stderr, exit 1."""
    result = subprocess.run(
        [sys.executable, "-m", "swapline.cli", "serve", service, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "SWAPLINE_WORK_DIR": str(tmp_path), "SWAPLINE_INSECURE": "1", **env},
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("swapline: error:") and message in lines[0]
